"""The append-only ledger: one place that appends leaves (STYLE: one ledger append)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from config.common import iso_utc, transaction, utc_now
from ledger.errors import LedgerStateError
from ledger.leaf import ZERO_HASH_HEX, Leaf, check_body, encode_leaf, leaf_hash, parse_leaf
from ledger.tree import StoredTree

Clock = Callable[[], datetime]

_READ_BATCH = 2048


def format_at(moment: datetime) -> str:
    """A leaf's ``at``: the station's ISO form of a UTC time; never a naive datetime."""
    try:
        return iso_utc(moment)
    except ValueError:
        raise LedgerStateError(
            "the ledger clock returned a naive datetime: give it a UTC one"
        ) from None


def writing(
    conn: sqlite3.Connection, name: str = "ledger_write"
) -> AbstractContextManager[sqlite3.Connection]:
    """``config.common.transaction``, under the name the ledger's modules know it by.

    Joins the caller's transaction through a savepoint, or runs one of our own with
    ``BEGIN IMMEDIATE``, so that the read of the tree's size and the insert that follows
    happen under the one write lock. ``name`` is not needed any more (savepoint names are
    unique) and is ignored.
    """
    del name
    return transaction(conn)


def _lookup_columns(body: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        value if isinstance(value, str) else None
        for value in (
            body.get("clip_id"),
            body.get("session_id"),
            body.get("case_number"),
            body.get("sha256"),
        )
    )


class Ledger:
    """The station's ledger in the station database behind ``conn``."""

    def __init__(self, conn: sqlite3.Connection, station_id: str, clock: Clock = utc_now) -> None:
        if not station_id:
            raise LedgerStateError("the ledger needs a station id: set station.id in the config")
        self.conn = conn
        self.station_id = station_id
        self.clock = clock
        self.tree = StoredTree(conn)

    def append(self, kind: str, body: dict[str, Any]) -> Leaf:
        """Append one leaf, inside the caller's transaction if one is open."""
        return self.append_many([(kind, body)])[0]

    def append_many(self, events: Iterable[tuple[str, dict[str, Any]]]) -> list[Leaf]:
        """Append leaves in order, all or none, in one transaction (or the caller's)."""
        pending = list(events)
        for kind, body in pending:
            check_body(kind, body)
        leaves: list[Leaf] = []
        with transaction(self.conn):
            first = self.size()
            prev = ZERO_HASH_HEX if first == 0 else self.tree.node(0, first - 1).hex()
            rows: list[tuple[Any, ...]] = []
            hashes: list[bytes] = []
            at = format_at(self.clock())
            for offset, (kind, body) in enumerate(pending):
                index = first + offset
                data = encode_leaf(
                    index=index, at=at, kind=kind, station=self.station_id, prev=prev, body=body
                )
                digest = leaf_hash(data)
                leaf = parse_leaf(data)
                leaves.append(leaf)
                rows.append((index, kind, data, *_lookup_columns(leaf.body)))
                hashes.append(digest)
                prev = digest.hex()
            self.conn.executemany(
                "INSERT INTO ledger_leaves (idx, kind, data, clip_id, session_id, case_number,"
                " sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self.tree.extend(first, hashes)
        return leaves

    def size(self) -> int:
        row = self.conn.execute("SELECT max(idx) FROM ledger_leaves").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def leaf(self, index: int) -> Leaf:
        row = self.conn.execute("SELECT data FROM ledger_leaves WHERE idx = ?", (index,)).fetchone()
        if row is None:
            raise LedgerStateError(f"the ledger has no leaf {index} (size {self.size()})")
        return parse_leaf(bytes(row[0]))

    def leaves(self, start: int = 0, stop: int | None = None) -> Iterator[Leaf]:
        """Leaves with start <= index < stop, in index order, read in batches."""
        end = self.size() if stop is None else stop
        position = start
        while position < end:
            rows = self.conn.execute(
                "SELECT data FROM ledger_leaves WHERE idx >= ? AND idx < ? ORDER BY idx",
                (position, min(end, position + _READ_BATCH)),
            ).fetchall()
            for row in rows:
                yield parse_leaf(bytes(row[0]))
            position += _READ_BATCH

    def find(
        self,
        *,
        clip_id: str | None = None,
        session_id: str | None = None,
        case_number: str | None = None,
        sha256: str | None = None,
    ) -> list[Leaf]:
        """Leaves whose body names this clip / session / case / content, in index order."""
        column, value = next(
            (c, v)
            for c, v in (
                ("clip_id", clip_id),
                ("session_id", session_id),
                ("case_number", case_number),
                ("sha256", sha256),
                ("", ""),
            )
            if v is not None
        )
        if not column:
            raise LedgerStateError("find() needs one of clip_id, session_id, case_number, sha256")
        rows = self.conn.execute(
            f"SELECT data FROM ledger_leaves WHERE {column} = ? ORDER BY idx", (value,)
        ).fetchall()
        return [parse_leaf(bytes(row[0])) for row in rows]

    def leaves_of_kind(
        self, kind: str, *, newest_first: bool = False, limit: int | None = None
    ) -> list[Leaf]:
        """Leaves of one kind in index order (or newest first), at most ``limit`` of them."""
        order = "DESC" if newest_first else "ASC"
        rows = self.conn.execute(
            f"SELECT data FROM ledger_leaves WHERE kind = ? ORDER BY idx {order} LIMIT ?",
            (kind, -1 if limit is None else limit),
        ).fetchall()
        return [parse_leaf(bytes(row[0])) for row in rows]

    def root(self, size: int | None = None) -> bytes:
        return self.tree.root(self.size() if size is None else size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return self.tree.inclusion_proof(index, self.size() if size is None else size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return self.tree.consistency_proof(old_size, self.size() if new_size is None else new_size)
