"""The HTML report in a real headless Chromium: the charts are in the rendered page and painted."""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

from cdss.audit.html import CHART_COLOUR
from cdss.cli.main import run
from tests.audit_records import Plan, record
from tests.conftest import CHROMIUM_FLAGS, chromium


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and unfiltered RGB(A) rows of an 8-bit truecolour PNG, with the stdlib only."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, [], b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                nearest = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[x] = (line[x] + nearest) & 0xFF
        rows.append(bytes(line if channels == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3)))
        previous = line
    return width, height, rows


def test_the_charts_render_in_chromium(store_path: Path, tmp_path: Path) -> None:
    record(store_path, [Plan(), Plan("abandoned"), Plan("open"), Plan(amend=True)])
    page = tmp_path / "report.html"
    try:
        run(["audit", "report", "--store", str(store_path), "--html", str(page)])
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    browser = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 4
    assert 'class="bar"' in dom.stdout and "Sessions by status" in dom.stdout
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [*browser, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    width, height, rows = read_png(shot)
    assert (width, height) == (1200, 1600)
    colour = bytes.fromhex(CHART_COLOUR[1:])
    painted = sum(row[x : x + 3] == colour for row in rows for x in range(0, len(row), 3))
    assert painted > 2000, f"only {painted} pixels in the chart colour"
