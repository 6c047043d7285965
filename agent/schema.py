"""Schema migrations of the agent room (append-only; see agent.database).

These tables are the station's working catalogue. The ledger is the record: every row
here that states a fact about evidence was written in the same transaction as the
ledger leaf that states it (``leaf_index``), so the catalogue can always be rebuilt
from, and checked against, the ledger.
"""

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE recorders (
        serial TEXT PRIMARY KEY,
        model TEXT,
        serial_source TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    CREATE TABLE docking_sessions (
        session_id TEXT PRIMARY KEY,
        recorder TEXT NOT NULL REFERENCES recorders (serial),
        volume TEXT NOT NULL,
        officer TEXT,
        opened_at TEXT NOT NULL,
        closed_at TEXT,
        state TEXT NOT NULL CHECK (state IN ('open', 'closed', 'incomplete')),
        files INTEGER NOT NULL DEFAULT 0,
        clips_new INTEGER NOT NULL DEFAULT 0,
        clips_seen INTEGER NOT NULL DEFAULT 0,
        problems TEXT NOT NULL DEFAULT '[]',
        opened_leaf INTEGER NOT NULL,
        closed_leaf INTEGER
    );
    CREATE TABLE clips (
        clip_id TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        blake3 TEXT NOT NULL,
        sm3 TEXT,
        size INTEGER NOT NULL,
        kind TEXT NOT NULL,
        recorder TEXT NOT NULL,
        session_id TEXT NOT NULL REFERENCES docking_sessions (session_id),
        source_path TEXT NOT NULL,
        source_path_b64 TEXT,
        recorder_time TEXT,
        ingested_at TEXT NOT NULL,
        duration_ms INTEGER,
        codec TEXT,
        creation_time TEXT,
        location TEXT,
        readable INTEGER,
        media_problem TEXT,
        leaf_index INTEGER NOT NULL
    );
    CREATE INDEX clips_session ON clips (session_id);
    CREATE TABLE sightings (
        session_id TEXT NOT NULL REFERENCES docking_sessions (session_id),
        clip_id TEXT NOT NULL REFERENCES clips (clip_id),
        source_path TEXT NOT NULL,
        leaf_index INTEGER NOT NULL,
        PRIMARY KEY (session_id, clip_id, source_path)
    );
    CREATE TABLE case_links (
        id INTEGER PRIMARY KEY,
        case_number TEXT NOT NULL,
        clip_id TEXT REFERENCES clips (clip_id),
        session_id TEXT REFERENCES docking_sessions (session_id),
        officer TEXT,
        object_of_proof TEXT,
        linked INTEGER NOT NULL,
        at TEXT NOT NULL,
        leaf_index INTEGER NOT NULL,
        CHECK ((clip_id IS NULL) != (session_id IS NULL))
    );
    CREATE INDEX case_links_case ON case_links (case_number);
    """,
    # A session knows the process that holds it open (boot id, pid, process start
    # time), so any later command can tell a live session from one whose process is
    # gone (killed, crashed) and close the latter on record.
    """
    ALTER TABLE docking_sessions ADD COLUMN owner TEXT;
    """,
    # Docking as officers dock: where a session's recorder sits (slot, USB port), the
    # phase a person follows and its progress, the recorder's clock offset, where the
    # collector came from; what each file looked like on the recorder when it was copied
    # (so a wipe removes only a file that is still the one copied, and a recorder left
    # docked is recognised without reading it again); officer assignments with history;
    # the files a wipe removed.
    """
    ALTER TABLE docking_sessions ADD COLUMN slot TEXT;
    ALTER TABLE docking_sessions ADD COLUMN usb_port TEXT;
    ALTER TABLE docking_sessions ADD COLUMN phase TEXT NOT NULL DEFAULT 'copying';
    ALTER TABLE docking_sessions ADD COLUMN files_done INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE docking_sessions ADD COLUMN bytes_total INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE docking_sessions ADD COLUMN bytes_done INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE docking_sessions ADD COLUMN clock_offset_ms INTEGER;
    ALTER TABLE docking_sessions ADD COLUMN officer_source TEXT;
    ALTER TABLE docking_sessions ADD COLUMN fingerprint TEXT;
    ALTER TABLE sightings ADD COLUMN size INTEGER;
    ALTER TABLE sightings ADD COLUMN mtime_ns INTEGER;
    ALTER TABLE sightings ADD COLUMN first_window TEXT;
    ALTER TABLE sightings ADD COLUMN last_window TEXT;
    ALTER TABLE sightings ADD COLUMN source_path_b64 TEXT;
    CREATE TABLE officer_assignments (
        id INTEGER PRIMARY KEY,
        recorder TEXT NOT NULL,
        officer TEXT NOT NULL,
        valid_from TEXT NOT NULL,
        valid_to TEXT,
        set_by TEXT NOT NULL,
        source TEXT NOT NULL,
        leaf_index INTEGER NOT NULL
    );
    CREATE INDEX officer_assignments_recorder ON officer_assignments (recorder, valid_from);
    CREATE TABLE wiped_files (
        session_id TEXT NOT NULL REFERENCES docking_sessions (session_id),
        source_path TEXT NOT NULL,
        clip_id TEXT NOT NULL REFERENCES clips (clip_id),
        wiped_at TEXT NOT NULL,
        leaf_index INTEGER NOT NULL,
        PRIMARY KEY (session_id, source_path)
    );
    """,
    # Time to safe: when each step of a session happened, so an officer's wait at shift
    # change can be followed per recorder and counted per station. Docked is opened_at
    # and verified the closed_at of a closed session; delivered is when central storage
    # confirmed the last of its clips (upload_jobs.done_at), safe when the station said
    # so. Sessions already on record have none of these: times_recorded = 0 makes their
    # missing times read as unknown, never as "not yet" (or 0 s). session_times is the
    # view statistics read: each moment and the seconds from docking to it.
    """
    ALTER TABLE docking_sessions ADD COLUMN delivered_at TEXT;
    ALTER TABLE docking_sessions ADD COLUMN safe_at TEXT;
    ALTER TABLE docking_sessions ADD COLUMN times_recorded INTEGER NOT NULL DEFAULT 1;
    UPDATE docking_sessions SET times_recorded = 0;
    CREATE VIEW session_times AS
    SELECT t.*,
        round((julianday(t.verified_at) - julianday(t.docked_at)) * 86400, 3)
            AS seconds_to_verified,
        round((julianday(t.delivered_at) - julianday(t.docked_at)) * 86400, 3)
            AS seconds_to_delivered,
        round((julianday(t.safe_at) - julianday(t.docked_at)) * 86400, 3)
            AS seconds_to_safe,
        round((julianday(t.wiped_at) - julianday(t.docked_at)) * 86400, 3)
            AS seconds_to_wiped
    FROM (
        SELECT s.session_id, s.recorder, s.slot, s.state, s.phase, s.times_recorded,
            s.opened_at AS docked_at,
            CASE WHEN s.state = 'closed' THEN s.closed_at END AS verified_at,
            s.delivered_at, s.safe_at,
            (SELECT min(w.wiped_at) FROM wiped_files w WHERE w.session_id = s.session_id)
                AS wiped_at
        FROM docking_sessions s
    ) t;
    """,
    # Trusted timestamps (RFC 3161) of published checkpoints (agent.timestamping). Not
    # ledger leaves: a token is about a checkpoint, and a leaf for it would need a newer
    # checkpoint, and its token, without end. A row is queued when its anchor is
    # published; token stays null while the TSA cannot be reached (pending), and the
    # next pass asks again. tsa_ca is the CA (PEM) the token was checked against when
    # kept; published_to is where it was put beside the anchor (null: not yet).
    """
    CREATE TABLE checkpoint_timestamps (
        anchor_sha256 TEXT PRIMARY KEY,
        anchor_name TEXT NOT NULL,
        tree_size INTEGER NOT NULL,
        anchor TEXT NOT NULL,
        queued_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        token BLOB,
        gen_time TEXT,
        tsa TEXT,
        tsa_ca TEXT,
        stamped_at TEXT,
        published_to TEXT
    );
    CREATE INDEX checkpoint_timestamps_size ON checkpoint_timestamps (tree_size);
    """,
    # API bearer tokens (agent.tokens): only the SHA-256 of each token's secret is kept,
    # never the secret. Not ledger leaves: a token is access control, not a fact about
    # evidence; what a token's owner does to evidence is a leaf naming that owner.
    """
    CREATE TABLE api_tokens (
        token_id TEXT PRIMARY KEY,
        secret_sha256 TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('officer', 'clerk', 'admin', 'auditor')),
        owner TEXT NOT NULL,
        note TEXT,
        created_at TEXT NOT NULL,
        created_by TEXT,
        revoked_at TEXT,
        revoked_by TEXT
    );
    """,
)
