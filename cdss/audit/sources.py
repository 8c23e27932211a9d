"""Where verified events come from: the ``Source`` protocol, and a store as a source.

A source yields every event of a contiguous range of the chain as stored
(unparsed), looks up the events a session's amendments point at, and says
what it claims about itself (where its range starts, which store head it
recorded). A bundle is the other source (``cdss.audit.bundle``).

Sources are pickled to the other processes of a split verification, which
open them again (``__reduce__``), so they hold nothing that cannot be reopened.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cdss.audit.findings import Finding, Verification
from cdss.audit.stored import parse
from cdss.errors import NotFound
from cdss.events import GENESIS
from cdss.store.location import describe

if TYPE_CHECKING:
    from cdss.audit.bundle import Selection
    from cdss.catalog import Catalog
    from cdss.checklist import Checklist
    from cdss.store import RegisteredKey, Store

Row = tuple[Any, Any, tuple[Any, ...] | None]
"""(position, stored text, the store's own columns (seq, session, type, hash) or None)."""


class Source(Protocol):
    """Where events come from: a store or a bundle."""

    name: str
    first_seq: int
    first_prev: str
    selected: frozenset[str] | None
    """Sessions a bundle was exported for; None for a whole store."""
    recorded_head: tuple[int, str] | None
    """The store's head a bundle recorded at export; None for a store (its last event is its head)."""
    selection: Selection | None
    """What a bundle's sessions were selected by; None for a store."""

    def rows(self) -> Iterator[Row]: ...

    def lookup(self, wanted: dict[str, set[str]]) -> Iterator[dict[str, Any]]:
        """The events (parsed JSON) carrying these hashes, by the session they are filed under."""
        ...

    def hash_at(self, seq: int) -> str | None:
        """The stored hash of the event at ``seq``, when the source holds it (for ``--against``)."""
        ...

    def public_keys(self) -> list[RegisteredKey]:
        """The keys as the source lists them; those before its range (``seq`` < ``first_seq``) are trusted."""
        ...

    def checklist(self, checklist_id: str, version: str) -> Checklist:
        """The checklist version sessions were pinned to; raises ``CdssError`` when missing."""
        ...

    def after(self, result: Verification) -> Iterable[Finding]:
        """Source-specific checks once the pass is over (a bundle's manifest)."""
        ...

    def damage(self) -> list[Finding]:
        """Damage below the events (a store file's pages and indexes), which listings and reports
        would read. Runs in a thread beside the pass, so it opens its own connection."""
        ...

    def close(self) -> None: ...


def open_audited(location: str | Path) -> Store:
    """A store opened for reading only: an audit never creates, migrates or writes one."""
    from cdss.store.location import open_store

    return open_store(location, read_only=True)


class StoreSource:
    """A store, read through the store contract only (``Store.stored``), row by row in ``seq`` order.

    Rows are read as stored rather than through ``Store.events()``: that parses
    every event into models (slower) and stops at the first row it cannot
    parse, where an audit must report the row and go on.
    """

    first_seq = 1
    first_prev = GENESIS
    selected: frozenset[str] | None = None
    recorded_head: tuple[int, str] | None = None
    selection: Selection | None = None

    def __init__(self, location: str | Path, catalog: Catalog | None = None):
        self.location = location
        self.name = f"store {describe(location)}"
        self._catalog = catalog
        self.store = open_audited(location)

    def close(self) -> None:
        self.store.close()

    def __reduce__(self) -> tuple[type[StoreSource], tuple[str | Path, Catalog | None]]:
        return StoreSource, (self.location, self._catalog)

    def rows(self) -> Iterator[Row]:
        for row in self.store.stored():
            yield row[0], row[4], row

    def lookup(self, wanted: dict[str, set[str]]) -> Iterator[dict[str, Any]]:
        for session, hashes in wanted.items():
            yield from self._lookup(session, hashes)

    def _lookup(self, session: str, hashes: set[str]) -> Iterator[dict[str, Any]]:
        for row in self.store.stored(session):
            if row[3] in hashes:
                try:
                    event = parse(row[4])
                except (TypeError, ValueError):
                    continue
                if isinstance(event, dict):
                    yield event

    def hash_at(self, seq: int) -> str | None:
        for row in self.store.stored(after=seq - 1):
            return str(row[3]) if row[0] == seq else None
        return None

    def public_keys(self) -> list[RegisteredKey]:
        return self.store.keys()

    def head(self) -> tuple[int, str, str]:
        """The last event's seq, hash and time."""
        seq, hash_ = self.store.head()
        at = ""
        for row in self.store.stored(after=seq - 1):
            with suppress(TypeError, ValueError, AttributeError):
                at = str(parse(row[4]).get("at", ""))
        return seq, hash_, at

    def after(self, result: Verification) -> Iterable[Finding]:
        return ()

    def damage(self) -> list[Finding]:
        store = open_audited(self.location)
        try:
            found = store.integrity()
        finally:
            store.close()
        return [
            Finding(None, None, f"the store is damaged outside the chain: {problem}") for problem in found
        ]

    def checklist(self, checklist_id: str, version: str) -> Checklist:
        if self._catalog is None:
            raise NotFound(f"no catalog to find {checklist_id}@{version} in")
        return self._catalog.load(f"{checklist_id}@{version}")
