"""The vault: append-only ledger, Merkle log, checkpoints, proofs, verifier, export.

The public surface; the modules behind it are private to the room.
"""

from ledger.anchor import Anchor, StoredCheckpoint, make_checkpoint, origin_for
from ledger.audit import ClipRecord, EvidenceFiles
from ledger.checkpoint import Checkpoint, SignedNote, open_checkpoint, sign_checkpoint
from ledger.errors import (
    CheckpointError,
    InconsistentCheckpointError,
    LeafFormatError,
    LedgerError,
    LedgerStateError,
    PackageError,
    ProofError,
    StationKeyError,
)
from ledger.export import ExportIntegrityError, ExportResult, case_clips, export_case
from ledger.keyring import Keyring, rotate_key
from ledger.keys import PublicKeyFile, StationKey, VerifierKey, read_public_key
from ledger.leaf import KINDS, Leaf, encode_leaf, leaf_hash, parse_leaf
from ledger.log import Ledger
from ledger.membership import case_members, case_members_of
from ledger.package import PackageReport, verify_package
from ledger.receipt import ReceiptReport, TlogProof, check_receipt, clip_receipt, verify_proof
from ledger.report import VerifyReport
from ledger.rules import LeafRules
from ledger.verify import verify_station

__all__ = [
    "KINDS",
    "Anchor",
    "Checkpoint",
    "CheckpointError",
    "ClipRecord",
    "EvidenceFiles",
    "ExportIntegrityError",
    "ExportResult",
    "InconsistentCheckpointError",
    "Keyring",
    "Leaf",
    "LeafFormatError",
    "LeafRules",
    "Ledger",
    "LedgerError",
    "LedgerStateError",
    "PackageError",
    "PackageReport",
    "ProofError",
    "PublicKeyFile",
    "ReceiptReport",
    "SignedNote",
    "StationKey",
    "StationKeyError",
    "StoredCheckpoint",
    "TlogProof",
    "VerifierKey",
    "VerifyReport",
    "case_clips",
    "case_members",
    "case_members_of",
    "check_receipt",
    "clip_receipt",
    "encode_leaf",
    "export_case",
    "leaf_hash",
    "make_checkpoint",
    "open_checkpoint",
    "origin_for",
    "parse_leaf",
    "read_public_key",
    "rotate_key",
    "sign_checkpoint",
    "verify_package",
    "verify_proof",
    "verify_station",
]
