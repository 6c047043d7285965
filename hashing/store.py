"""The content-addressed evidence store: committed files named by their SHA-256.

Layout under the store root::

    objects/ab/cd/abcd...  committed evidence, mode 0444, never modified in place
    staging/               partial copies and resume journals; never evidence
    orphans/<sha256>       copies a crash committed without their ledger leaf; set aside

A file becomes evidence only by an atomic rename from ``staging/`` into ``objects/``
after it was written, fsynced and checked; the ``objects/`` directory is fsynced after
the rename so that the name survives a power cut.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from config.common import describe_mode
from config.common import fsync_dir as fsync_dir
from hashing.diskio import rename_noreplace
from hashing.errors import NotRegularFileError

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_ANON = re.compile(r"^anon-[0-9a-f]{32}\.part$")
_KEYED = re.compile(r"^([0-9a-f]{1,128})\.(part|journal)$")
# An anonymous staging file is locked right after it is created; the grace covers the
# instant between the two, so a sweep never takes a starting copy's file.
ANON_GRACE_SECONDS = 60.0


class EvidenceStore:
    """Where evidence lives on the station's disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects_dir = root / "objects"
        self.staging_dir = root / "staging"
        self.orphans_dir = root / "orphans"

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
        """Whether the object is there, as a regular file (a symlink to one does not count)."""
        try:
            return stat.S_ISREG(self.path_for(sha256).lstat().st_mode)
        except FileNotFoundError:
            return False

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

    def sweep_staging(self, max_age_seconds: float) -> list[Path]:
        """Remove what interrupted copies left in ``staging/``; returns what was removed.

        Anonymous copies (no resume key) can never be resumed: their files go once no
        copy holds them (and after a short grace). A keyed copy's ``.part`` and
        ``.journal`` go once no copy holds the journal's lock and neither was touched
        for ``max_age_seconds``: younger ones wait for the recorder to come back.
        Only staging names go; ``objects/`` and unknown files are never touched.
        The agent calls this at start-up; it is safe while copies run.
        """
        if max_age_seconds < 0:
            raise ValueError(f"max_age_seconds must be 0 or more, got {max_age_seconds}")
        if not self.staging_dir.is_dir():
            return []
        now = time.time()
        anon: list[Path] = []
        keyed: dict[str, list[Path]] = {}
        for entry in sorted(self.staging_dir.iterdir()):
            if _ANON.match(entry.name):
                anon.append(entry)
            elif match := _KEYED.match(entry.name):
                keyed.setdefault(match.group(1), []).append(entry)
        removed: list[Path] = []
        for path in anon:
            removed += _remove_unlocked(path, [path], now - ANON_GRACE_SECONDS)
        for key, paths in keyed.items():
            removed += _remove_unlocked(
                self.staging_dir / f"{key}.journal", paths, now - max_age_seconds
            )
        return removed

    def set_aside(self, sha256: str) -> Path | None:
        """Move an object that no ledger leaf names out of ``objects/`` into ``orphans/``.

        What a crash between the store's commit and the ledger's leaves: a verified copy
        of a file the recorder still holds (its session never closed, so nothing was
        wiped). Kept, never deleted, out of the audited evidence; docking the recorder
        again commits the file anew. Returns the new path, or None if there was nothing
        to move (or an orphan of that content is already kept, then it stays in place).
        """
        source = self.path_for(sha256)
        try:
            if not stat.S_ISREG(source.lstat().st_mode):
                return None  # not what a crash leaves: the audit reports it
        except FileNotFoundError:
            return None
        self.orphans_dir.mkdir(parents=True, exist_ok=True)
        target = self.orphans_dir / sha256
        if not rename_noreplace(source, target):
            return None
        fsync_dir(self.orphans_dir)
        fsync_dir(source.parent)
        return target

    def iter_objects(self) -> Iterator[tuple[str, Path]]:
        """Every entry under ``objects/`` but its ``ab/cd/`` folders, as (name, path),
        whatever its name or kind, in name order.

        Files that do not belong (wrong name, wrong folder, deeper down) are yielded too,
        so an audit can report them as extra or moved; so are symlinks, FIFOs, devices
        and folders where objects belong, for the audit to report as not regular files.
        Symlinks are never followed and nothing is opened; folders are walked without
        recursion, however deep.
        """
        if not self.objects_dir.is_dir():
            return
        folders = [(self.objects_dir, 0)]
        while folders:
            folder, depth = folders.pop()
            try:
                with os.scandir(folder) as scan:
                    entries = sorted(scan, key=lambda entry: entry.name)
            except FileNotFoundError:
                continue  # removed while we walked
            below = []
            for entry in entries:
                is_dir = entry.is_dir(follow_symlinks=False)
                if depth >= 2 or not is_dir:
                    yield entry.name, Path(entry.path)
                if is_dir:
                    below.append((Path(entry.path), depth + 1))
            folders.extend(reversed(below))

    def open_object(self, sha256: str) -> int:
        """A read-only descriptor of the object ``sha256``, which must be a regular file.

        Never opens anything else (a symlink, a FIFO, a device, a folder put in its place),
        and never hangs on one. Raises FileNotFoundError if the store does not hold it.
        """
        path = self.path_for(sha256)
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    mode = stat.S_IFLNK
                elif exc.errno == errno.ENXIO:
                    mode = stat.S_IFSOCK
                else:
                    raise
            else:  # the name may have been swapped between lstat and open
                mode = os.fstat(fd).st_mode
                if stat.S_ISREG(mode):
                    return fd
                os.close(fd)
        raise NotRegularFileError(
            f"{path} is {describe_mode(mode)}, not a regular file: the store's copy of "
            f"{sha256} was replaced; run `evidock verify` and restore the clip from "
            "central storage"
        )


def _remove_unlocked(lock: Path, paths: list[Path], older_than: float) -> list[Path]:
    """Unlink ``paths`` (regular files all last modified before ``older_than``) while
    holding ``lock``'s flock; nothing if a running copy holds it."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        fd = -1  # a keyed .part whose journal is gone: nothing can be resuming it
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return []
        raise
    try:
        if fd >= 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return []  # a copy is running on it
        for path in paths:
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode) or info.st_mtime >= older_than:
                return []
        removed = []
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
        return removed
    finally:
        if fd >= 0:
            os.close(fd)
