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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import ledger.schema
import uploader.schema
from agent import schema as agent_schema

DB_NAME = "station.db"

ROOM_MIGRATIONS: tuple[tuple[str, Sequence[str]], ...] = (
    ("ledger", ledger.schema.MIGRATIONS),
    ("agent", agent_schema.MIGRATIONS),
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
    writes with explicit ``BEGIN IMMEDIATE`` / ``COMMIT`` (see :func:`transaction`).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(path, readonly=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
    except (OSError, sqlite3.Error) as exc:
        raise DatabaseError(
            f"cannot open the station database {path}: {exc}; check that the data dir "
            "exists and is writable by the evidock user"
        ) from None
    migrate(conn)
    return conn


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
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " room TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (room, version))"
    )
    for room, scripts in ROOM_MIGRATIONS:
        done = {
            row[0]
            for row in conn.execute("SELECT version FROM schema_migrations WHERE room = ?", (room,))
        }
        newer = [v for v in done if v > len(scripts)]
        if newer:
            raise DatabaseError(
                f"the database has {room} schema version {max(newer)}, newer than this "
                f"evidock knows ({len(scripts)}): upgrade evidock"
            )
        for version, script in enumerate(scripts, start=1):
            if version in done:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (room, version) VALUES (?, ?)", (room, version)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


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


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in one ``BEGIN IMMEDIATE`` transaction, committed on success.

    Nested use joins the outer transaction (SQLite has one writer per connection).
    """
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
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
