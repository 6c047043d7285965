"""Small primitives every room may import, written once.

- the station clock: :func:`utc_now` and :func:`iso_utc` (``2026-11-22T08:30:15.123456Z``);
- durable files: :func:`fsync_dir`, :func:`write_atomic`, :func:`write_new`;
- one SQLite transaction helper, :func:`transaction` (``BEGIN IMMEDIATE``; nested use
  becomes a savepoint, so an inner failure rolls back only the inner block);
- :func:`printable`: a name from a recorder made safe to print on a terminal.

Only the standard library is used here, so ``docking``, ``hashing``, ``ledger`` and
``uploader`` can import this module without importing each other.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import stat
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "describe_mode",
    "fsync_dir",
    "iso_utc",
    "printable",
    "transaction",
    "utc_now",
    "write_atomic",
    "write_new",
]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """``2026-11-22T08:30:15.123456Z``: the form every stored station time takes.

    A naive datetime is refused: the station never guesses a time zone.
    """
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no time zone: give a UTC one")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fsync_dir(path: Path) -> None:
    """Make a rename, a link or a new name in folder ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_tmp_counter = itertools.count()


def _write_tmp(path: Path, data: bytes, mode: int) -> Path:
    # name.<pid>.<thread>.<n>.tmp: unique per writer, recognisable by sweepers
    tmp = path.with_name(
        f"{path.name}.{os.getpid()}.{threading.get_ident()}.{next(_tmp_counter)}.tmp"
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not change what was asked for
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write or replace ``path`` atomically and durably, with exactly ``mode``."""
    tmp = _write_tmp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_new(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Create ``path`` atomically and durably; False (nothing written) if it exists."""
    tmp = _write_tmp(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


_savepoints = itertools.count()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in one ``BEGIN IMMEDIATE`` transaction, committed on success.

    Inside an open transaction the block runs in a savepoint of it: an exception rolls
    back only what the block did and is raised on; the outer transaction decides the rest.
    The connection must be in autocommit mode (``isolation_level=None``).
    """
    if conn.in_transaction:
        name = f"sp_{next(_savepoints)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (full disk, a deferred constraint) can leave the transaction
        # open with the write lock held: end it, so the station is not locked up.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control and format characters (ESC, CR, tab,
    bidi overrides, undecodable bytes kept as surrogates, ...) become visible ``\\x1b`` /
    ``\\u202e`` escapes; every other character, Chinese included, stays as it is."""
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if not (category.startswith("C") or category in ("Zl", "Zp")):
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "".join(out)


def describe_mode(mode: int) -> str:
    """What kind of thing a ``st_mode`` is, for people ("a FIFO", "a symlink", ...)."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "of an unknown kind")
