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
)
