"""Moving records between stores (``cdss store copy FROM TO``): the same chain, event for event.

A copy is the same chain, not a re-recording: every event keeps its ``seq``,
time, ``prev`` and hash, so checkpoints, bundles and signatures made against
the old store still hold against the new one. Keys and settings are events,
so they come along.

Why it refuses what it refuses:

- A target holding anything but a prefix of the same chain (compared event by
  event) would end up with two histories in one chain; it is refused and left
  as it is. A target holding a prefix (an earlier copy, or one interrupted)
  receives the rest.
- Each event is checked on the way (valid, in its place, its hash over its
  content), so a damaged source is named, not spread.
- After copying, the target is read back and compared with the source, row
  for row: the copy is verified, not assumed.
- A store from before keys were events keeps them in a table no copy can
  carry; it is refused until a writing cdss has moved them into its chain.

Events go over in batches, each its own transaction under the target's write
lock, so an interruption leaves a prefix that the next copy continues.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import takewhile, zip_longest
from typing import Any, Protocol

from cdss.errors import IntegrityError, StoreError
from cdss.events import GENESIS, hash_body, parse_event
from cdss.store import RegisteredKey

BATCH = 2000

Row = tuple[Any, Any, Any, Any, Any]


class Source(Protocol):
    def keys(self) -> list[RegisteredKey]: ...

    def head(self) -> tuple[int, str]: ...

    def stored(self, session: str | None = None, *, after: int = 0) -> Iterator[Row]: ...


class Target(Source, Protocol):
    def receive(self, rows: Sequence[Row]) -> None: ...


@dataclass(frozen=True)
class Copied:
    events: int
    """Events the target holds now (the whole chain)."""
    already: int
    """Events it held before (a prefix of the same chain)."""
    head: str


@dataclass(frozen=True)
class Named:
    """A store and how messages name it (a path, or a URL without its password)."""

    store: Any
    name: str


def copy_store(source: Source, target: Target, *, source_name: str, target_name: str) -> Copied:
    """Copy what ``target`` lacks of ``source``'s chain; verify; refuse a different chain."""
    return _copy(Named(source, source_name), Named(target, target_name))


def _copy(source: Named, target: Named) -> Copied:
    if any(key.seq <= 0 for key in source.store.keys()):
        raise StoreError(
            f"{source.name} is from an older cdss and keeps its keys outside the chain, where a copy "
            "cannot take them; record once in it with this cdss (which moves them into the chain), "
            "then copy. Nothing was copied"
        )
    last, head = source.store.head()
    already, target_head = target.store.head()
    if already > last:
        raise StoreError(
            f"{target.name} holds {already} events, more than {source.name} ({last}); "
            "it is not a prefix of that chain. Nothing was copied"
        )
    if already:
        _same(source, target, upto=already, copied=False)
    batch: list[Row] = []
    for row in _checked(
        source.store.stored(after=already), already, target_head if already else GENESIS, source
    ):
        batch.append(row)
        if len(batch) >= BATCH:
            target.store.receive(batch)
            batch = []
    target.store.receive(batch)
    if target.store.head() != (last, head):
        raise IntegrityError(f"after copying, {target.name} does not end where {source.name} does")
    _same(source, target, upto=last, copied=True)
    return Copied(last, already, head)


def _same(source: Named, target: Named, *, upto: int, copied: bool) -> None:
    """Both stores hold the very same rows, and the target nothing beyond ``upto``."""
    ours = takewhile(lambda row: int(row[0]) <= upto, source.store.stored())
    for a, b in zip_longest(ours, target.store.stored()):
        if a is not None and b is not None and tuple(a) == tuple(b):
            continue
        at = (a or b or ("?",))[0]
        if copied:
            raise IntegrityError(f"the copy in {target.name} differs from {source.name} at event {at}")
        raise StoreError(
            f"{target.name} is not empty and holds a different chain from {source.name} "
            f"(they differ at event {at}); nothing was copied. Copy into an empty store"
        )


def _checked(rows: Iterable[Row], after: int, prev: str, source: Named) -> Iterator[Row]:
    """The rows, each checked: a valid event, in its place, whose hash covers its content."""
    from pydantic import ValidationError

    expected = after + 1
    for row in rows:
        seq, session, kind, hash_, text = row
        problem = None
        try:
            event = parse_event(json.loads(text))
        except (ValueError, ValidationError, RecursionError, TypeError):
            problem = "is not a valid cdss event"
        else:
            if seq != expected or event.seq != seq:
                problem = f"is out of place (expected {expected})"
            elif event.prev != prev:
                problem = "does not follow the event before it"
            elif hash_body(event.body()) != event.hash or event.hash != hash_:
                problem = "does not match its hash"
            elif event.canonical().decode() != text or event.session != session or event.type != kind:
                problem = "is not stored in its canonical form"
        if problem:
            raise IntegrityError(
                f"event {seq} in {source.name} {problem}; nothing after event {expected - 1} was copied. "
                "Run `cdss audit verify` on it"
            )
        yield row
        expected, prev = seq + 1, hash_
