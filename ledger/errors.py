"""The ledger's exceptions; each message says what to do.

::

    LedgerError
    ├── LeafFormatError            bytes that are not a canonical leaf, or a body missing keys
    ├── LedgerStateError           the stored ledger cannot take this append or checkpoint
    │   └── InconsistentCheckpointError   refusing to sign a checkpoint that forks the last one
    ├── ProofError                 a Merkle proof that is malformed or does not verify
    ├── CheckpointError            a signed note that is malformed or carries no valid signature
    ├── StationKeyError            the station key is missing, unreadable or of the wrong kind
    └── PackageError               an evidence package that cannot be written or read
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error raised by the ledger room."""


class LeafFormatError(LedgerError):
    """Leaf bytes are not in the canonical form, or a body lacks the keys of its kind."""


class LedgerStateError(LedgerError):
    """The stored ledger is not in a state that allows the requested operation."""


class InconsistentCheckpointError(LedgerStateError):
    """The tree no longer extends the last signed checkpoint: signing would fork the log."""


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof is malformed or does not verify."""


class CheckpointError(LedgerError):
    """A checkpoint note is malformed or has no signature by a trusted key."""


class StationKeyError(LedgerError):
    """The station key files are missing, unreadable or not Ed25519."""


class PackageError(LedgerError):
    """An evidence package cannot be written, or a package folder cannot be read."""
