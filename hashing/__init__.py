"""The engine: streaming copy+hash pipeline and the content-addressed evidence store."""

from hashing.store import EvidenceStore, fsync_dir

__all__ = ["EvidenceStore", "fsync_dir"]
