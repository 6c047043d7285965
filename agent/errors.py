"""Errors the agent turns into one clear line (CLI) or a JSON error (API).

::

    EvidockError                  base: the user can act on the message
    ├── DataDirError              the data dir is missing, not a folder, or not writable
    ├── SourceError               the ingest source does not exist or is not a folder
    ├── CaseError                 bad case number, unknown clip or session
    └── IngestIncomplete          some files were not ingested (the recorder keeps them)

Errors of the other rooms (``config.ConfigError``, ``hashing.HashingError``,
``ledger`` errors, ``uploader.DeliveryError``, ``agent.database.DatabaseError``) are
caught at the same boundary.
"""


class EvidockError(Exception):
    """An error with a message that says what to do."""

    exit_code = 2


class DataDirError(EvidockError):
    pass


class SourceError(EvidockError):
    pass


class CaseError(EvidockError):
    pass


class IngestIncomplete(EvidockError):
    exit_code = 1
