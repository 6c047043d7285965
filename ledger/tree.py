"""The Merkle tree of the ledger, stored in SQLite as complete subtree hashes.

Node (level, i) is the hash of leaves ``[i * 2**level, (i + 1) * 2**level)`` and is
written once, when its last leaf arrives. Any MTH(D[a:b]) then needs at most
O(log n) node reads, so roots and proofs are O(log n).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ledger.errors import LedgerStateError
from ledger.merkle import (
    EMPTY_ROOT,
    consistency_path,
    inclusion_path,
    node_hash,
    split_point,
)


class StoredTree:
    """Reads and extends ``ledger_nodes`` through the caller's connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def node(self, level: int, index: int) -> bytes:
        row = self.conn.execute(
            "SELECT hash FROM ledger_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if row is None:
            raise LedgerStateError(
                f"Merkle node ({level}, {index}) is missing from the station database: "
                "run `evidock verify` to see what else is damaged"
            )
        return bytes(row[0])

    def subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) from the stored complete subtrees."""
        size = end - start
        if size & (size - 1) == 0 and start % size == 0:
            level = size.bit_length() - 1
            return self.node(level, start >> level)
        k = split_point(size)
        return node_hash(self.subtree(start, start + k), self.subtree(start + k, end))

    def root(self, size: int) -> bytes:
        return EMPTY_ROOT if size == 0 else self.subtree(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return inclusion_path(index, size, self.subtree)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return consistency_path(old_size, new_size, self.subtree)

    def extend(self, first_index: int, leaf_hashes: Sequence[bytes]) -> None:
        """Store leaf hashes at ``first_index``... and every subtree they complete."""
        known: dict[tuple[int, int], bytes] = {}
        rows: list[tuple[int, int, bytes]] = []
        for offset, digest in enumerate(leaf_hashes):
            level, index, current = 0, first_index + offset, digest
            known[(level, index)] = current
            rows.append((level, index, current))
            while index & 1:
                left = known.get((level, index - 1))
                if left is None:
                    left = self.node(level, index - 1)
                current = node_hash(left, current)
                level, index = level + 1, index >> 1
                known[(level, index)] = current
                rows.append((level, index, current))
        self.conn.executemany("INSERT INTO ledger_nodes (level, idx, hash) VALUES (?, ?, ?)", rows)
