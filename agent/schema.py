"""Schema migrations of this room (append-only; see agent.database)."""

MIGRATIONS: tuple[str, ...] = ()
