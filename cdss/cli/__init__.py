"""The terminal front end: parse arguments, call the library, render.

Nothing under ``cdss.cli`` decides anything; every command is one library call
an integrator could make from Python.
"""
