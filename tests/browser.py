"""Headless Chromium for the tests: screenshot or print a local file, read the result.

The browser runs as the station's PDF printer runs it (``ledger.custody_pdf``: a fresh
profile, no sandbox, no network services, its own process group ended with it). Tests
that need it skip only when /usr/bin/chromium is missing; ``scripts/setup.sh --test``
installs it (and a CJK font), so CI runs them.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger.custody_pdf import CHROMIUM, print_pdf, run_chromium

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: sh scripts/setup.sh --test"
)


def screenshot(page: Path, png: Path, *, width: int = 1000, height: int = 1400) -> Path:
    """A PNG of the top ``width`` x ``height`` pixels of ``page`` as a screen shows it."""
    run_chromium(
        CHROMIUM,
        [
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            page.absolute().as_uri(),
        ],
    )
    return png


def print_to_pdf(page: Path, pdf: Path) -> Path:
    print_pdf(page, pdf, chromium=CHROMIUM)
    return pdf


def pdf_pages(pdf: Path) -> int:
    """The page count of a PDF Chromium wrote (its page tree's /Count)."""
    counts = [
        int(n) for n in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", pdf.read_bytes())
    ]
    if not counts:
        counts = [len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))]
    return max(counts)


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    rows: list[bytes]  # RGB(A) bytes per row
    channels: int

    def pixel(self, x: int, y: int) -> tuple[int, ...]:
        start = x * self.channels
        return tuple(self.rows[y][start : start + 3])

    def share_not_white(self) -> float:
        """The share of pixels that are not (nearly) white."""
        dark = 0
        for row in self.rows:
            for x in range(0, len(row), self.channels):
                if min(row[x : x + 3]) < 200:
                    dark += 1
        return dark / (self.width * self.height)

    def band_has_ink(self, top: int, bottom: int) -> bool:
        return any(
            min(row[x : x + 3]) < 128
            for row in self.rows[top:bottom]
            for x in range(0, len(row), self.channels)
        )


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(path: Path) -> Image:
    """Decode an 8-bit RGB or RGBA PNG (what Chromium writes) without an image library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, chunk = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), f"unexpected PNG format {depth}/{color}"
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                line[i] = (line[i] + _paeth(a, b, c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return Image(width, height, rows, channels)
