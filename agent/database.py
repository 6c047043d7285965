"""The station database: one SQLite file, WAL, ``synchronous=FULL``, schema by migrations.

Each room that keeps tables declares its own ``MIGRATIONS`` (a tuple of SQL scripts,
append-only: a released script is never edited, a change is a new script). This module
is the one place that opens the database and applies them, in dependency order.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import ledger.schema
import uploader.schema
from agent import media_schema, records_schema
from agent import schema as agent_schema
from config.common import transaction as transaction  # re-exported for the rooms' callers

DB_NAME = "station.db"
WAL_WAIT_SECONDS = 30.0

ROOM_MIGRATIONS: tuple[tuple[str, Sequence[str]], ...] = (
    ("ledger", ledger.schema.MIGRATIONS),
    ("agent", agent_schema.MIGRATIONS),
    ("media", media_schema.MIGRATIONS),
    ("records", records_schema.MIGRATIONS),
    ("uploader", uploader.schema.MIGRATIONS),
)


class DatabaseError(Exception):
    """The station database cannot be opened or is from a newer evidock."""


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    if readonly:
        uri = f"file:{path}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def open_station_db(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the station database at ``path`` and migrate it.

    The connection is in autocommit mode (``isolation_level=None``): callers group
    writes with :func:`config.common.transaction` (``BEGIN IMMEDIATE``; re-exported here).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(path, readonly=False)
        _use_wal(conn)
        conn.execute("PRAGMA synchronous = FULL")
    except (OSError, sqlite3.Error) as exc:
        raise DatabaseError(
            f"cannot open the station database {path}: {exc}; check that the data dir "
            "exists and is writable by the evidock user"
        ) from None
    migrate(conn)
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    # Switching a new database to WAL needs a moment of exclusive access, and SQLite
    # answers "database is locked" there without waiting on busy_timeout: retry a while.
    deadline = time.monotonic() + WAL_WAIT_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open an existing station database without changing it (the auditor's view).

    A WAL database opened read-only still needs its ``-shm`` index beside it; on
    read-only media (a copy on a DVD, a write-protected share) the database and its
    WAL are copied to a private temporary folder and opened there, so that what was
    committed in the WAL is seen too (``immutable=1`` would silently skip it).
    """
    if not path.is_file():
        raise DatabaseError(f"no station database at {path}: give the station's data dir")
    if os.access(path.parent, os.W_OK) and not _readonly_fs(path.parent):
        return _connect(path, readonly=True)
    scratch = Path(tempfile.mkdtemp(prefix="evidock-verify-"))
    for suffix in ("", "-wal"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            shutil.copyfile(source, scratch / (DB_NAME + suffix))
    atexit.register(shutil.rmtree, scratch, True)
    return _connect(scratch / DB_NAME, readonly=True)


def _readonly_fs(folder: Path) -> bool:
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)


def migrate(conn: sqlite3.Connection) -> None:
    """Apply every room's missing migrations, all under one write lock.

    Concurrent first opens (the daemon and a CLI command started together) must not both
    see a table missing and both create it: the check and the scripts run in one
    ``BEGIN IMMEDIATE`` transaction, so the second opener waits and then finds them done.
    """
    if _up_to_date(conn):
        return  # the common case: no write lock taken just to open the database
    try:
        with transaction(conn):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " room TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (room, version))"
            )
            for room, scripts in ROOM_MIGRATIONS:
                done = _versions(conn, room)
                _refuse_newer(room, done, scripts)
                for version, script in enumerate(scripts, start=1):
                    if version in done:
                        continue
                    for statement in _statements(script):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (room, version) VALUES (?, ?)",
                        (room, version),
                    )
    except sqlite3.OperationalError as exc:
        raise DatabaseError(
            f"cannot update the station database's schema: {exc}; check that the data dir "
            "is writable by the evidock user and has free space"
        ) from None


def _versions(conn: sqlite3.Connection, room: str) -> set[int]:
    rows = conn.execute("SELECT version FROM schema_migrations WHERE room = ?", (room,))
    return {int(row[0]) for row in rows}


def _refuse_newer(room: str, done: set[int], scripts: Sequence[str]) -> None:
    newer = [v for v in done if v > len(scripts)]
    if newer:
        raise DatabaseError(
            f"the database has {room} schema version {max(newer)}, newer than this "
            f"evidock knows ({len(scripts)}): upgrade evidock"
        )


def _up_to_date(conn: sqlite3.Connection) -> bool:
    try:
        for room, scripts in ROOM_MIGRATIONS:
            done = _versions(conn, room)
            _refuse_newer(room, done, scripts)
            if len(done) < len(scripts):
                return False
    except sqlite3.OperationalError:
        return False  # no schema_migrations table yet: a new database
    return True


def _statements(script: str) -> list[str]:
    # executescript() would commit the open transaction; split instead (no ';' in our DDL
    # except as terminators, which sqlite3.complete_statement tracks).
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
