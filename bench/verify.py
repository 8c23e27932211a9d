"""`cdss audit verify` on a large store, against the least any verifier must do.

The baseline reads the same rows from the same file, parses each event's JSON
and sha256-hashes the same bytes — no chain, schema, session or signature
checks. Both run as child processes, alternately, for ``--rounds`` rounds, so a
busy neighbour slows both alike; the ratio of the medians says what cdss's
checks cost on top of reading and hashing. Goals: at most 3x, and the verify
processes' peak memory at most 150 MB each (flat: it streams).

The store is generated once per size and cached (``--fresh`` regenerates):
sessions of a 15-item checklist, each answered, most completed and signed,
some amended, abandoned or left open — about 19 events per session.

Run: ``.venv/bin/python bench/verify.py [--events N] [--rounds R] [--fresh]`` (default 1,000,000 and 3).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cdss.catalog import content_hash
from cdss.events import GENESIS
from cdss.session import signed_payload
from cdss.store.sqlite import open_store

EXAMPLE = Path(__file__).parent.parent / "tests" / "examples" / "valid" / "example-walk" / "1.0.0.json"
ITEMS = 15
CLINICIANS = ("dr-lee", "dr-kim", "dr-okafor", "dr-silva")


def cache_folder() -> Path:
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cdss-bench"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def bench_checklist(folder: Path) -> dict[str, Any]:
    """The example checklist with 15 items and no routes, written as bench-walk@1.0.0."""
    document = json.loads(EXAMPLE.read_text())
    template = document["sections"][0]["items"][0]
    document.update(id="bench-walk", context={"routes": [], "populations": []})
    document["sections"] = [
        {
            "id": "bench",
            "title": "Benchmark",
            "items": [{**template, "id": f"item-{n}"} for n in range(ITEMS)],
        }
    ]
    target = folder / "checklists" / "bench-walk" / "1.0.0.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document))
    from cdss.catalog import load_file

    return load_file(target).to_json()


def canonical(value: dict[str, Any]) -> str:
    # The generated events hold only ASCII strings and small integers, for which
    # sorted compact JSON is exactly RFC 8785 — and ten times faster to write.
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Writer:
    """Seals events into one chain and inserts them in large transactions."""

    def __init__(self, db: sqlite3.Connection):
        self.db, self.seq, self.prev = db, 0, GENESIS
        self.batch: list[tuple[Any, ...]] = []
        self.clock = 1_700_000_000.0

    def add(
        self, session: str | None, kind: str, actor: str, data: dict[str, Any], at: str | None = None
    ) -> dict[str, Any]:
        self.seq += 1
        self.clock += 0.7
        stamp = (
            at or time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.clock)) + f".{self.seq % 1000000:06d}Z"
        )
        body: dict[str, Any] = {
            "seq": self.seq,
            "session": session,
            "type": kind,
            "at": stamp,
            "actor": actor,
            "prev": self.prev,
        }
        body["data"] = data
        if session is None:  # a store event (keys, settings) has no session
            del body["session"]
        digest = hashlib.sha256(canonical(body).encode()).hexdigest()
        event = {**body, "hash": digest}
        self.batch.append((self.seq, session or "", kind, digest, canonical(event)))
        self.prev = digest
        if len(self.batch) >= 50_000:
            self.flush()
        return event

    def flush(self) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", self.batch)
        self.db.execute("COMMIT")
        self.batch = []


def subject_code(n: int) -> str:
    """A valid opaque subject code (``cdss.subject``), distinct for each ``n``; letters only, so
    it never looks like a record number."""
    from cdss.subject import ALPHABET, check_character

    letters, body = ALPHABET[10:], ""
    for _ in range(8):
        body, n = body + letters[n % len(letters)], n // len(letters)
    return f"S-{body}{check_character(body)}"


def generate(path: Path, events: int, checklist: dict[str, Any]) -> None:
    with open_store(path):
        pass  # creates the schema, migrations and marker
    keys = {c: Ed25519PrivateKey.generate() for c in CLINICIANS}
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    writer = Writer(db)
    for clinician, key in keys.items():
        # Keys are events of the chain: each clinician's first key, registered unendorsed.
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        registered = {
            "clinician": clinician,
            "key_id": hashlib.sha256(raw).hexdigest(),
            "public_key": base64.b64encode(raw).decode(),
            "name": f"Dr {clinician[3:].title()}",
            "administrator": False,
            "endorsed_by": None,
            "endorsement": None,
        }
        writer.add(None, "key-registered", clinician, registered)
    pinned = {"id": "bench-walk", "version": "1.0.0", "hash": content_hash(checklist)}
    chance = random.Random(20240601)
    n = 0
    while writer.seq < events:
        n += 1
        clinician = CLINICIANS[n % len(CLINICIANS)]
        session = uuid.UUID(int=chance.getrandbits(128)).hex
        started = {
            "checklist": pinned,
            "subject": subject_code(n),
            "context": {"route": None, "populations": []},
        }
        writer.add(session, "session-started", clinician, {**started, "clinician": clinician})
        answers = []
        for item in range(ITEMS):
            data: dict[str, Any] = {"item": f"item-{item}", "status": "done"}
            if chance.random() < 0.05:
                data = {"item": f"item-{item}", "status": "not-done", "reason": "deferred"}
            answers.append(writer.add(session, "item-answered", clinician, data))
        if chance.random() < 0.05:
            target = answers[chance.randrange(ITEMS)]
            fix = {
                "item": target["data"]["item"],
                "status": "done",
                "corrects": target["hash"],
                "explanation": "typo",
            }
            writer.add(session, "item-amended", clinician, fix)
        ending = chance.random()
        if ending < 0.03:
            writer.add(session, "session-abandoned", clinician, {"reason": "patient left"})
            continue
        if ending < 0.05:
            continue  # left open
        completed = writer.add(session, "session-completed", clinician, {})
        name = f"Dr {clinician[3:].title()}"
        meaning = f"completed checklist bench-walk version 1.0.0 for subject {subject_code(n)}"
        payload = signed_payload(completed["hash"], name, meaning, completed["at"])
        key = keys[clinician]
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        signature = {
            "signs": completed["hash"],
            "name": name,
            "meaning": meaning,
            "key": hashlib.sha256(raw).hexdigest(),
            "signature": base64.b64encode(key.sign(payload)).decode(),
        }
        writer.add(session, "session-signed", clinician, signature, at=completed["at"])
    writer.flush()
    db.close()


BASELINE = """
import hashlib, json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
count = 0
for (text,) in db.execute("SELECT event FROM events ORDER BY seq"):
    json.loads(text)
    hashlib.sha256(text.encode()).hexdigest()
    count += 1
print(count)
"""


def timed(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall time, CPU time (the child and every process it waited for, e.g. verify's workers), result."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done


def cached_store(events: int, *, fresh: bool = False) -> Path:
    """The generated store of ``events`` events in the cache folder, generated first when missing
    (or ``fresh``); a run cut short leaves only a ``.partial`` file, never a short store."""
    folder = cache_folder()
    checklist = bench_checklist(folder)
    store = folder / f"verify-{events}.sqlite3"
    if fresh or not store.exists():
        began = time.perf_counter()
        partial = store.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        generate(partial, events, checklist)
        partial.rename(store)
        print(f"generated {store} in {time.perf_counter() - began:.1f} s")
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each")
    parser.add_argument("--fresh", action="store_true", help="regenerate the cached store")
    args = parser.parse_args()
    store = cached_store(args.events, fresh=args.fresh)
    folder = store.parent
    cdss = str(Path(sys.executable).parent / "cdss")
    command = [cdss, "audit", "verify", "--store", str(store), "--checklists", str(folder / "checklists")]
    baseline_runs, verify_runs, baseline_cpu, verify_cpu = [], [], [], []
    with tempfile.TemporaryDirectory() as home:
        os.environ.setdefault("XDG_STATE_HOME", home)
        for _ in range(args.rounds):
            seconds, cpu, base = timed([sys.executable, "-c", BASELINE, str(store)])
            baseline_runs.append(seconds)
            baseline_cpu.append(cpu)
            seconds, cpu, done = timed(command)
            verify_runs.append(seconds)
            verify_cpu.append(cpu)
            if done.returncode != 0:
                print(done.stdout[-3000:], done.stderr[-3000:])
                raise SystemExit("verify failed on the generated store")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    events = int(base.stdout.strip())
    print(done.stdout.strip().splitlines()[1])
    baseline_seconds, verify_seconds = statistics.median(baseline_runs), statistics.median(verify_runs)
    baseline_cpu_seconds, verify_cpu_seconds = statistics.median(baseline_cpu), statistics.median(verify_cpu)
    for label, seconds, runs, cpu in (
        ("baseline (read + json.loads + sha256)", baseline_seconds, baseline_runs, baseline_cpu_seconds),
        ("cdss audit verify", verify_seconds, verify_runs, verify_cpu_seconds),
    ):
        each = ", ".join(f"{run:.1f}" for run in runs)
        print(f"{label:<38} {seconds:7.2f} s wall, {cpu:7.2f} s CPU  "
              f"({seconds / events * 1e6:.1f} µs/event; runs: {each} s)")  # fmt: skip
    wall_ratio, cpu_ratio = verify_seconds / baseline_seconds, verify_cpu_seconds / baseline_cpu_seconds
    print(f"ratio: {wall_ratio:.2f}x wall (median of {args.rounds}; goal: at most 3x), "
          f"{cpu_ratio:.2f}x CPU (all of verify's processes)")  # fmt: skip
    print(f"verify peak memory: {peak_mb:.0f} MB per process (goal: at most 150 MB)")


if __name__ == "__main__":
    main()
