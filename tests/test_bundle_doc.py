"""docs/bundle-format.md is what a third-party verifier works from: its pinned schema hashes must be cdss's."""

from __future__ import annotations

import re
from pathlib import Path

from cdss.audit.bundle import PUBLISHED_SCHEMAS, published_schemas

DOC = Path(__file__).parent.parent / "docs" / "bundle-format.md"


def documented_schemas() -> dict[str, str]:
    rows = re.findall(
        r"\| `([a-z.]+\.json)` \| `urn:cdss:schema:[a-z]+:\d+` \| `([0-9a-f]{64})` \|", DOC.read_text()
    )
    return {sha: name for name, sha in rows}


def test_the_schemas_this_release_ships_are_published_and_documented() -> None:
    """Changing a schema file without publishing its hash would make this release's bundles fail F3."""
    assert published_schemas() == PUBLISHED_SCHEMAS


def test_the_document_pins_exactly_the_published_schema_hashes() -> None:
    assert documented_schemas() == PUBLISHED_SCHEMAS
