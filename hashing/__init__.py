"""The engine: streaming copy+hash pipeline and the content-addressed evidence store.

One read of each recorder file feeds SHA-256, BLAKE3, per-window BLAKE3 (and SM3 when
configured), hashed in the station's shared pool, and the staging file; the copy is
fsynced, re-read from disk, compared (BLAKE3), and only then renamed into the store.
``EvidenceStore.sweep_staging`` clears what interrupted copies left behind.
"""

from hashing.budget import BufferBudget
from hashing.digests import Digests
from hashing.engine import CopyEngine, CopyResult, StagedCopy
from hashing.errors import (
    CopyVerificationError,
    HashingError,
    NotRegularFileError,
    SourceChangedError,
    SourceReadError,
    StoreFullError,
)
from hashing.options import HashOptions
from hashing.pool import HashPool
from hashing.reading import hash_file
from hashing.source import FileSource, SourceFile, SourceOpener, open_source
from hashing.store import EvidenceStore, fsync_dir

__all__ = [
    "BufferBudget",
    "CopyEngine",
    "CopyResult",
    "CopyVerificationError",
    "Digests",
    "EvidenceStore",
    "FileSource",
    "HashOptions",
    "HashPool",
    "HashingError",
    "NotRegularFileError",
    "SourceChangedError",
    "SourceFile",
    "SourceOpener",
    "SourceReadError",
    "StagedCopy",
    "StoreFullError",
    "fsync_dir",
    "hash_file",
    "open_source",
]
