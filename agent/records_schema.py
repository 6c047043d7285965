"""Schema migrations of the records room: cases, their numbers and what links clips to them
(append-only; see agent.database). Every row that states a fact about evidence is written
in the same transaction as the ledger leaf that states it (``leaf_index``)."""

MIGRATIONS: tuple[str, ...] = ()
