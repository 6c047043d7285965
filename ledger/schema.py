"""Schema migrations of this room (append-only; see agent.database).

``ledger_leaves`` holds each leaf's canonical bytes (the only thing the verifier trusts)
plus a few columns copied out of the body for lookups. ``ledger_nodes`` holds every
complete Merkle subtree hash, keyed by (level, index), so appends and proofs are
O(log n). ``ledger_checkpoints`` holds the signed notes. The triggers keep other code
from editing history by accident; they are no defence against an attacker, the
verifier is.
"""

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE ledger_leaves (
        idx INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        data BLOB NOT NULL,
        clip_id TEXT,
        session_id TEXT,
        case_number TEXT,
        sha256 TEXT
    );
    CREATE INDEX ledger_leaves_clip ON ledger_leaves (clip_id) WHERE clip_id IS NOT NULL;
    CREATE INDEX ledger_leaves_session ON ledger_leaves (session_id)
        WHERE session_id IS NOT NULL;
    CREATE INDEX ledger_leaves_case ON ledger_leaves (case_number)
        WHERE case_number IS NOT NULL;
    CREATE INDEX ledger_leaves_sha256 ON ledger_leaves (sha256) WHERE sha256 IS NOT NULL;
    CREATE TABLE ledger_nodes (
        level INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)
    ) WITHOUT ROWID;
    CREATE TABLE ledger_checkpoints (
        tree_size INTEGER PRIMARY KEY,
        root BLOB NOT NULL,
        note TEXT NOT NULL,
        signed_at TEXT NOT NULL
    );
    CREATE TRIGGER ledger_leaves_no_update BEFORE UPDATE ON ledger_leaves
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: append a new leaf instead'); END;
    CREATE TRIGGER ledger_leaves_no_delete BEFORE DELETE ON ledger_leaves
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: leaves are never deleted'); END;
    CREATE TRIGGER ledger_nodes_no_update BEFORE UPDATE ON ledger_nodes
    BEGIN SELECT RAISE(ABORT, 'Merkle nodes are written once'); END;
    CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints
    BEGIN SELECT RAISE(ABORT, 'signed checkpoints are never changed'); END;
    """,
    # Lookups by kind, newest first (the agent reads the last station.booted at start).
    """
    CREATE INDEX ledger_leaves_kind ON ledger_leaves (kind, idx);
    """,
)
