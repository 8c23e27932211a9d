"""Audit: verify records, sign and checkpoint them, report on them, export bundles.

``verify`` checks a store or a bundle end to end; ``bundle`` writes and reads
the self-contained folder or zip an auditor takes away; ``report`` computes the
figures; ``html`` renders them as a self-contained page, SVG charts and CSV.
"""
