"""Signature checks, run beside the main pass rather than inside it.

An Ed25519 verification costs more than everything else an event needs
together, and a clinic that requires signatures has one per session. The
checks are independent, so they go in batches to one worker process while the
pass reads on; the findings come back at the end. On a single CPU, or for a
few signatures, they run inline — the answer is the same either way.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

BATCH = 512
IN_FLIGHT = 8
"""Batches submitted but not yet answered; beyond this the pass waits, so memory stays bounded."""

Claim = tuple[int, str, bytes, str, bytes]
"""(seq, session, raw public key, base64 signature, signed payload)."""

_keys: dict[bytes, object] = {}


def _failures(batch: list[Claim]) -> list[tuple[int, str]]:
    """The (seq, session) of every claim in the batch whose signature does not verify."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    failed = []
    for seq, session, raw, signature, payload in batch:
        key = _keys.get(raw)
        if key is None:
            key = _keys[raw] = Ed25519PublicKey.from_public_bytes(raw)
        try:
            key.verify(base64.b64decode(signature), payload)  # type: ignore[attr-defined]
        except (InvalidSignature, ValueError):
            failed.append((seq, session))
    return failed


class SignatureChecks:
    """Collects signature claims during a pass; ``failures()`` once it is over."""

    def __init__(self) -> None:
        self.count = 0
        self._batch: list[Claim] = []
        self._done: list[tuple[int, str]] = []
        self._pending: list[Future[list[tuple[int, str]]]] = []
        self._pool: ProcessPoolExecutor | None = None
        self._parallel = (os.cpu_count() or 1) > 1

    def add(self, seq: int, session: str, public_key: bytes, signature: str, payload: bytes) -> None:
        self.count += 1
        self._batch.append((seq, session, public_key, signature, payload))
        if len(self._batch) >= BATCH:
            self._send()

    def _send(self) -> None:
        batch, self._batch = self._batch, []
        if not self._parallel:
            self._done += _failures(batch)
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1)
        self._pending.append(self._pool.submit(_failures, batch))
        while len(self._pending) > IN_FLIGHT:
            self._done += self._pending.pop(0).result()

    def failures(self) -> Iterator[tuple[int, str]]:
        """Every failed claim, in the order the claims were made."""
        if self._batch:
            if self._pool is None:
                self._done += _failures(self._batch)
                self._batch = []
            else:
                self._send()
        for pending in self._pending:
            self._done += pending.result()
        self._pending = []
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        yield from sorted(self._done)
