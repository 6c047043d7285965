"""The content-addressed evidence store: committed files named by their SHA-256.

Layout under the store root::

    objects/ab/cd/abcd...  committed evidence, mode 0444, never modified in place
    staging/               partial copies and resume journals; never evidence

A file becomes evidence only by an atomic rename from ``staging/`` into ``objects/``
after it was written, fsynced and checked; the ``objects/`` directory is fsynced after
the rename so that the name survives a power cut.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from hashing.diskio import rename_noreplace

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class EvidenceStore:
    """Where evidence lives on the station's disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects_dir = root / "objects"
        self.staging_dir = root / "staging"

    def create(self) -> EvidenceStore:
        """Make the store's folders (idempotent) and return self."""
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        return self

    def path_for(self, sha256: str) -> Path:
        if not _SHA256_HEX.match(sha256):
            raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
        return self.objects_dir / sha256[:2] / sha256[2:4] / sha256

    def contains(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def commit(self, staged: Path, sha256: str) -> tuple[Path, bool]:
        """Make a fsynced, checked staging file the evidence object ``sha256``.

        Returns (object path, deduplicated). The rename never replaces an existing
        object: if the store already holds ``sha256``, the staged copy is removed.
        The new name, and any new subfolder, is fsynced before this returns.
        """
        target = self.path_for(sha256)
        new_dirs = [d for d in (target.parent.parent, target.parent) if not d.is_dir()]
        target.parent.mkdir(parents=True, exist_ok=True)
        if not rename_noreplace(staged, target):
            staged.unlink()
            return target, True
        fsync_dir(target.parent)
        for folder in reversed(new_dirs):
            fsync_dir(folder.parent)
        return target, False

    def iter_objects(self) -> Iterator[tuple[str, Path]]:
        """Every file under ``objects/`` as (file name, path), whatever its name.

        Files that do not belong (wrong name, wrong folder) are yielded too, so an
        audit can report them as extra or moved.
        """
        if not self.objects_dir.is_dir():
            return
        for dirpath, _dirnames, filenames in os.walk(self.objects_dir):
            for name in sorted(filenames):
                yield name, Path(dirpath) / name


def fsync_dir(path: Path) -> None:
    """Make a rename or a new name in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
