"""Schema migrations of the media room: what ffprobe and the recorder's own files say of
each clip beyond the ``clips`` row (append-only; see agent.database)."""

MIGRATIONS: tuple[str, ...] = ()
