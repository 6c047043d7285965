"""Schema migrations of the records room: cases, their numbers and what links clips to them
(append-only; see agent.database). Every row that states a fact about evidence is written
in the same transaction as the ledger leaf that states it (``leaf_index``)."""

MIGRATIONS: tuple[str, ...] = (
    # Cases as first-class records: the catalogue's copy of the case.opened /
    # case.changed / case.closed leaves. ``case_number`` is the normal form (the key every
    # lookup compares, config.case_numbers); ``case_number_typed`` what was entered.
    # Links gain the typed number beside the normal form, as their leaves do; rows of
    # older links hold what was typed in ``case_number`` and no typed copy.
    """
    CREATE TABLE cases (
        case_number TEXT PRIMARY KEY,
        case_number_typed TEXT NOT NULL,
        subject TEXT NOT NULL,
        category TEXT NOT NULL,
        unit TEXT NOT NULL,
        whole_process INTEGER NOT NULL CHECK (whole_process IN (0, 1)),
        starts TEXT,
        ends TEXT,
        sensitivity TEXT NOT NULL CHECK (sensitivity IN ('normal', 'privacy', 'secret')),
        retention TEXT,
        opened_by TEXT,
        opened_at TEXT NOT NULL,
        opened_leaf INTEGER NOT NULL,
        changed_at TEXT,
        changed_leaf INTEGER,
        closed_by TEXT,
        closed_at TEXT,
        closed_reason TEXT,
        closed_leaf INTEGER
    );
    CREATE INDEX cases_open ON cases (closed_at, case_number);
    ALTER TABLE case_links ADD COLUMN case_number_typed TEXT;
    """,
    # Incident feeds: each incident of an imported feed (its incident.imported leaf is
    # ``leaf_index``), one row per incident however often the feed is imported again;
    # and the review list of matches the station will not guess (two cases overlap a
    # clip, or none overlaps but one is close), each naming the import that raised it.
    """
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        case_number TEXT NOT NULL,
        case_number_typed TEXT NOT NULL,
        officer TEXT NOT NULL,
        starts TEXT NOT NULL,
        ends TEXT NOT NULL,
        subject TEXT,
        category TEXT,
        unit TEXT,
        source TEXT NOT NULL,
        line INTEGER NOT NULL,
        leaf_index INTEGER NOT NULL,
        UNIQUE (case_number, officer, starts, ends)
    );
    CREATE INDEX incidents_officer ON incidents (officer, starts);
    CREATE TABLE link_reviews (
        id INTEGER PRIMARY KEY,
        clip_id TEXT NOT NULL REFERENCES clips (clip_id),
        reason TEXT NOT NULL CHECK (reason IN ('ambiguous', 'close')),
        candidates TEXT NOT NULL,
        at TEXT NOT NULL,
        import_leaf INTEGER NOT NULL,
        UNIQUE (clip_id, reason, candidates)
    );
    """,
    # A clip's own sensitivity (the clip.sensitivity_set leaves; no row: normal) and the
    # retention last computed for each clip (agent.retention): a derived copy for SQL
    # readers, refreshed by `evidock retention`; the purge asks retention_of() afresh.
    """
    CREATE TABLE clip_sensitivity (
        clip_id TEXT PRIMARY KEY REFERENCES clips (clip_id),
        sensitivity TEXT NOT NULL CHECK (sensitivity IN ('normal', 'privacy', 'secret')),
        set_by TEXT NOT NULL,
        reason TEXT NOT NULL,
        set_at TEXT NOT NULL,
        leaf_index INTEGER NOT NULL
    );
    CREATE TABLE clip_retention (
        clip_id TEXT PRIMARY KEY REFERENCES clips (clip_id),
        category TEXT NOT NULL,
        keep_until TEXT,
        decided_by TEXT,
        computed_at TEXT NOT NULL
    );
    """,
)
