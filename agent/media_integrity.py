"""Does a file look like media, and does its own structure say it was cut short?

Read in Python from the file's first bytes and its MP4 box headers (a few small reads,
no second process): ffprobe says *that* it cannot read a file, these say *why*: a file
with no container signature is not media at all; an MP4 whose boxes run past the end of
the file (a moov-at-end recording whose battery died before the index was written, a
stub of its first bytes) is truncated; anything else ffprobe cannot read is undecodable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# MP4/QuickTime top-level box types a file may begin with.
_MP4_FIRST = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"})
_MAX_BOXES = 4096  # a hostile file of tiny boxes is walked this far and no further


def container_of(head: bytes) -> str | None:
    """The container a file's first bytes (at least 16) announce, or None."""
    if len(head) >= 8 and head[4:8] in _MP4_FIRST:
        return "mp4"
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"WAVE", b"AVIX"):
        return head[8:12].decode().strip().lower()
    if head[:4] == b"\x1aE\xdf\xa3":
        return "matroska"
    if head[:1] == b"\x47" and (len(head) < 189 or head[188:189] == b"\x47"):
        return "mpegts"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    if head[:3] == b"FLV":
        return "flv"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:5] == b"#!AMR":
        return "amr"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "asf"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    return None


@dataclass(frozen=True)
class Structure:
    """What the file's first bytes and box headers say."""

    container: str | None  # None: no media signature
    cut: str | None = None  # why the file ends before its structure does, if it does


def read_structure(path: Path) -> Structure:
    """The container signature, and for MP4/QuickTime a walk of the top-level boxes."""
    try:
        with open(path, "rb") as f:
            head = f.read(192)
            container = container_of(head)
            if container != "mp4":
                return Structure(container)
            return Structure(container, _mp4_cut(f, os.fstat(f.fileno()).st_size))
    except OSError:
        return Structure(None)


def _mp4_cut(f: BinaryIO, size: int) -> str | None:
    """Why an MP4 ends early: a box that runs past the end of the file, or no ``moov``
    index after the ``mdat`` (the recorder writes the index last); None if whole."""
    offset, seen = 0, set[bytes]()
    for _ in range(_MAX_BOXES):
        if offset >= size:
            break
        f.seek(offset)
        header = f.read(16)
        if len(header) < 8:
            return f"the file ends inside a box header at byte {offset}"
        box_size = int.from_bytes(header[0:4], "big")
        kind = header[4:8]
        name = kind.decode("latin-1")
        if box_size == 1:
            if len(header) < 16:
                return f"the file ends inside the header of its {name!r} box"
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:  # "to the end of the file": a recorder that never closed it
            box_size = size - offset
        seen.add(kind)
        if box_size < 8:
            return None  # not a box chain we understand: leave the verdict to ffprobe
        if offset + box_size > size:
            return (
                f"the file ends inside its {name!r} box ({size} bytes; the box needs "
                f"{offset + box_size})"
            )
        offset += box_size
    if b"mdat" in seen and b"moov" not in seen:
        return "its media data has no 'moov' index (the recorder writes it last)"
    return None
