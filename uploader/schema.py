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
    # Claims: a deliverer uploads only a job it holds a live lease on (claimed_by, taken
    # with lease_until in one BEGIN IMMEDIATE); an expired lease is anyone's to take.
    # A resumable put's state (upload id, completed parts as JSON) is saved as it goes.
    # failure names what a parked or failing job's last_error is about.
    """
    ALTER TABLE upload_jobs ADD COLUMN claimed_by TEXT;
    ALTER TABLE upload_jobs ADD COLUMN lease_until TEXT;
    ALTER TABLE upload_jobs ADD COLUMN upload_id TEXT;
    ALTER TABLE upload_jobs ADD COLUMN parts TEXT;
    ALTER TABLE upload_jobs ADD COLUMN failure TEXT;
    """,
    # The MQTT outbox: what the station publishes, in seq order, each row deleted only
    # after the broker's PUBACK (uploader.mqtt_outbox). AUTOINCREMENT: a seq is never
    # reused, even after every row was sent, so a consumer de-duplicates by it.
    # mqtt_marks: how far the agent has turned its ledger into events (and the like),
    # moved in the same transaction as the rows it added.
    """
    CREATE TABLE mqtt_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        payload TEXT NOT NULL,
        retain INTEGER NOT NULL DEFAULT 0 CHECK (retain IN (0, 1)),
        created_at TEXT NOT NULL
    );
    CREATE TABLE mqtt_marks (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL
    );
    """,
)
