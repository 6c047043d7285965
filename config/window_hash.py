"""The hash of each window of a copied file, written once for every room that checks one.

A clip's leaf lists one hash per ``window_size`` stretch of the file (like dcfldd's
``hashwindow``): a resumed copy checks its staged prefix with them, a wipe checks that the
recorder's file is still the one copied, and an audit locates the damaged stretch of a
stored copy. Each window hash is the standard hash of that stretch alone, so anyone can
check one with standard tools::

    dd if=CLIP bs=8M skip=INDEX count=1 status=none | b3sum        # "blake3"
    dd if=CLIP bs=8M skip=INDEX count=1 status=none | sha256sum    # "sha256"

New leaves say ``"window_hash": "blake3"`` (a third of SHA-256's CPU on the station:
the whole-file SHA-256 is what courts check; the windows only have to be strong). A leaf
without the key was written before, with SHA-256 windows, and is read as ``"sha256"``.
"""

from __future__ import annotations

import hashlib
from typing import Final, Protocol

import blake3

#: The window hash of the copies this station makes now.
WINDOW_HASH: Final = "blake3"
#: Every window hash a leaf may name; a leaf without ``window_hash`` means the first.
WINDOW_HASHES: Final = ("sha256", "blake3")


class WindowHasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


def window_hash_of(body: dict[str, object]) -> str:
    """The window hash a leaf's body names (``"sha256"`` for leaves from before the key)."""
    name = body.get("window_hash", WINDOW_HASHES[0])
    return str(name)


def new_window_hasher(algorithm: str = WINDOW_HASH) -> WindowHasher:
    """A fresh hasher for one window; ``ValueError`` for a name outside WINDOW_HASHES."""
    if algorithm == "blake3":
        return blake3.blake3()
    if algorithm == "sha256":
        return hashlib.sha256()
    raise ValueError(f"unknown window hash {algorithm!r}; known: {', '.join(WINDOW_HASHES)}")


def window_digest(algorithm: str, data: bytes | memoryview) -> str:
    """The hex window hash of ``data`` under ``algorithm``."""
    hasher = new_window_hasher(algorithm)
    hasher.update(data)
    return hasher.hexdigest()
