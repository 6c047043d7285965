"""The vault: append-only ledger, Merkle log, checkpoints, proofs, verifier, export.

This is the room's public surface: what the agent (and any other room) uses. The
modules behind it are the room's own; its tests may reach into them, nothing else does.
"""

from ledger.anchor import LAST_SIGNED_NAME, Anchor, origin_for, stored_checkpoints
from ledger.audit import EvidenceFiles
from ledger.errors import (
    CheckpointError,
    InconsistentCheckpointError,
    LeafFormatError,
    LedgerError,
    PackageError,
    ProofError,
    StationKeyError,
)
from ledger.export import ExportIntegrityError, ExportResult, export_case
from ledger.keyring import Keyring
from ledger.keys import PUBLIC_NAME, PublicKeyFile, StationKey, read_public_key
from ledger.leaf import Leaf
from ledger.log import Ledger
from ledger.membership import case_members
from ledger.package import PackageReport, verify_package
from ledger.receipt import ReceiptReport, check_receipt, clip_receipt, read_receipt
from ledger.report import VerifyReport, report_json, report_text
from ledger.timestamp import (
    TOKEN_SUFFIX,
    TimestampError,
    TokenCheck,
    check_token,
    der_sorted,
    read_certificates,
)
from ledger.verify import verify_station

__all__ = [
    "LAST_SIGNED_NAME",
    "PUBLIC_NAME",
    "TOKEN_SUFFIX",
    "Anchor",
    "CheckpointError",
    "EvidenceFiles",
    "ExportIntegrityError",
    "ExportResult",
    "InconsistentCheckpointError",
    "Keyring",
    "Leaf",
    "LeafFormatError",
    "Ledger",
    "LedgerError",
    "PackageError",
    "PackageReport",
    "ProofError",
    "PublicKeyFile",
    "ReceiptReport",
    "StationKey",
    "StationKeyError",
    "TimestampError",
    "TokenCheck",
    "VerifyReport",
    "case_members",
    "check_receipt",
    "check_token",
    "clip_receipt",
    "der_sorted",
    "export_case",
    "origin_for",
    "read_certificates",
    "read_public_key",
    "read_receipt",
    "report_json",
    "report_text",
    "stored_checkpoints",
    "verify_package",
    "verify_station",
]
