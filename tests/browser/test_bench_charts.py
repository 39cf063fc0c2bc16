"""``make bench`` writes PNG charts next to its JSON, drawn in Chromium (``bench.charts``)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from bench.charts import REFERENCE, THIS_RUN, write_charts


def png_rows(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered pixel rows of an 8-bit RGB/RGBA PNG (RFC 2083)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6)
    bpp = 3 if colour_type == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytes(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a, b = line[i - bpp] if i >= bpp else 0, prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pred = [
                0,
                a,
                b,
                (a + b) // 2,
                a if abs(p - a) <= min(abs(p - b), abs(p - c)) else b if abs(p - b) <= abs(p - c) else c,
            ][kind]
            line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(b for j in range(0, stride, bpp) for b in line[j : j + 3]))
        prev = bytes(line)
    return width, height, rows


def test_bench_writes_a_deliveries_and_a_p99_chart_with_this_run_drawn(tmp_path: Path) -> None:
    reference = json.loads(REFERENCE.read_text())
    run = {**reference, "time": "2026-11-28T08:00:00Z"}
    run["fanout"] = [
        {**s, "deliveries_ps": s["deliveries_ps"] / 2, "p99_ms": s["p99_ms"] * 2} for s in reference["fanout"]
    ]
    paths = write_charts(run, reference, tmp_path / "20261128T080000Z")
    assert [p.name for p in paths] == ["20261128T080000Z-deliveries.png", "20261128T080000Z-p99.png"]
    colour = bytes(int(THIS_RUN[i : i + 2], 16) for i in (1, 3, 5))
    for path in paths:
        width, height, rows = png_rows(path)
        assert (width, height) == (860, 420)
        drawn = sum(1 for row in rows for x in range(0, len(row), 3) if row[x : x + 3] == colour)
        assert drawn > 1000, f"{path.name}: this run's bars are drawn"
