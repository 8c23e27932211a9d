"""``--against``: comparing what is verified with a copy the auditor kept.

A chain proves nothing about its own end: cutting events off leaves a shorter
chain that is valid in itself. A reference kept outside the clinic's control
— a checkpoint, a bundle, or a store the auditor trusts — says which event
stood at which ``seq``. Because each hash covers the one before it, two
copies of one chain that agree at a ``seq`` agree on everything before it, so
comparing a few places is enough:

- every place the reference names (a checkpoint's head; a bundle's last
  event, the event before its first, and the store head it recorded; a
  store's head) that lies inside the verified range must hold that hash;
- where the reference holds the verified range's last event, it must agree;
- a place beyond the end of a **store** means events were cut off;
- a place beyond the end of a **bundle** is compared with the store head the
  bundle recorded: equal ``seq`` must mean equal hash; before that head it
  lies outside the bundle's selection, after it the reference is newer than
  the bundle. Neither is a finding: partial and older bundles are genuine;
- a place before the verified range cannot be compared, and says so.

Written down for third-party verifiers in docs/bundle-format.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from cdss.audit.findings import Anchor, Finding, Verification

if TYPE_CHECKING:
    from cdss.audit.checkpoint import Checkpoint
    from cdss.audit.sources import Source


class Reference(Protocol):
    """A copy the auditor kept: the places it names, and the hash it holds at a ``seq``."""

    name: str

    @property
    def signer(self) -> tuple[str, str] | None:
        """Who signed it (id, key id), when it is a signed checkpoint."""
        ...

    def anchors(self) -> list[Anchor]: ...

    def hash_at(self, seq: int) -> str | None: ...

    def close(self) -> None: ...


@dataclass
class CheckpointReference:
    """A checkpoint names one place: the store's head when it was taken."""

    point: Checkpoint
    name: str

    @property
    def signer(self) -> tuple[str, str] | None:
        return self.point.signer

    def anchors(self) -> list[Anchor]:
        return [Anchor(self.point.seq, self.point.hash, self.name)]

    def hash_at(self, seq: int) -> str | None:
        return self.point.hash if seq == self.point.seq else None

    def close(self) -> None:
        pass


class SourceReference:
    """A bundle or a store as a reference: its ends, and any event it holds."""

    def __init__(self, source: Source, anchors: list[Anchor]):
        self.source, self.name, self._anchors = source, source.name, anchors

    @property
    def signer(self) -> tuple[str, str] | None:
        return None

    def anchors(self) -> list[Anchor]:
        return self._anchors

    def hash_at(self, seq: int) -> str | None:
        return self.source.hash_at(seq)

    def close(self) -> None:
        self.source.close()


def place(result: Verification, anchors: tuple[Anchor, ...], source: Source) -> list[Finding]:
    """What each anchor outside the verified range means; every anchor is described in the summary."""
    findings = []
    first = result.first_seq if result.first_seq is not None else source.first_seq
    last = result.last_seq if result.last_seq is not None else first - 1
    for anchor in sorted(anchors, key=lambda a: a.seq):
        where = f"seq {anchor.seq} must hash to {anchor.hash[:12]}… ({anchor.source})"
        if first <= anchor.seq <= last:
            result.anchors.append(f"{where}: compared")
        elif anchor.seq == first - 1:
            result.anchors.append(f"{where}: compared with the link before the first event")
            if anchor.hash != source.first_prev:
                findings.append(Finding(first, None, f"links to an event that differs from the one "
                                        f"{anchor.source} recorded at seq {anchor.seq}"))  # fmt: skip
        elif anchor.seq < first:
            result.anchors.append(f"{where}: before the range verified (from seq {first}), not compared")
        elif source.recorded_head is None:
            result.anchors.append(f"{where}: beyond the end of the chain")
            findings.append(Finding(anchor.seq, None, f"{anchor.source} recorded an event at seq "
                                    f"{anchor.seq}, but the chain ends at {last}: events were cut off "
                                    "the end"))  # fmt: skip
        else:
            findings += _beyond_bundle(result, anchor, where, source.recorded_head)
    return findings


def _beyond_bundle(
    result: Verification, anchor: Anchor, where: str, recorded_head: tuple[int, str]
) -> list[Finding]:
    head_seq, head_hash = recorded_head
    if anchor.seq == head_seq:
        result.anchors.append(f"{where}: compared with the store head the bundle recorded")
        if anchor.hash != head_hash:
            return [Finding(anchor.seq, None, f"the store head this bundle recorded at export differs "
                            f"from the event {anchor.source} recorded at this seq")]  # fmt: skip
    elif anchor.seq < head_seq:
        result.anchors.append(f"{where}: outside this bundle's selection (its store head was seq "
                              f"{head_seq}), not compared")  # fmt: skip
    else:
        result.anchors.append(f"{where}: after this bundle was exported (its store head was seq "
                              f"{head_seq}), not compared")  # fmt: skip
    return []


def ends_agree(result: Verification, source: Source, reference: Reference) -> list[Finding]:
    """Where the reference holds the range's last event (or the head a bundle recorded), they agree."""
    findings = []
    places = [(result.last_seq, result.head, "")] if result.last_seq is not None else []
    if source.recorded_head is not None and source.recorded_head[0] > 0:
        places.append((*source.recorded_head, "the store head this bundle recorded: "))
    for seq, hash_, what in places:
        assert seq is not None
        held = reference.hash_at(seq)
        if held is None:
            continue
        result.anchors.append(f"seq {seq} compared with {reference.name}")
        if held != hash_:
            findings.append(Finding(seq, None, f"{what}differs from the event {reference.name} holds at "
                                    "this seq"))  # fmt: skip
    return findings
