"""Schema migrations of the uploader room (append-only; see agent.database)."""

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE upload_jobs (
        id INTEGER PRIMARY KEY,
        clip_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        target TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done', 'parked')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        done_at TEXT,
        location TEXT,
        UNIQUE (clip_id, target)
    );
    CREATE INDEX upload_jobs_due ON upload_jobs (state, next_attempt_at);
    """,
)
