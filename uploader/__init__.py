"""The road out: durable upload queue with claims, the ``Target`` protocol, a folder target."""

from uploader.errors import (
    ConfirmationMismatch,
    DeliveryError,
    SourceIntegrityError,
    TargetUnavailable,
    UploadStopped,
)
from uploader.folder import FolderTarget
from uploader.queue import (
    FAILURE_LOCAL,
    FAILURE_TARGET,
    FAILURE_UNAVAILABLE,
    LEASE,
    ClaimLost,
    UploadJob,
    UploadQueue,
)
from uploader.target import (
    Confirmation,
    Digest,
    Hasher,
    PutProgress,
    Target,
    UploadedPart,
    UploadState,
)

__all__ = [
    "FAILURE_LOCAL",
    "FAILURE_TARGET",
    "FAILURE_UNAVAILABLE",
    "LEASE",
    "ClaimLost",
    "Confirmation",
    "ConfirmationMismatch",
    "DeliveryError",
    "Digest",
    "FolderTarget",
    "Hasher",
    "PutProgress",
    "SourceIntegrityError",
    "Target",
    "TargetUnavailable",
    "UploadJob",
    "UploadQueue",
    "UploadState",
    "UploadStopped",
    "UploadedPart",
]
