"""The road out: durable upload queue and delivery targets (a plain folder for now)."""

from uploader.errors import ConfirmationMismatch, DeliveryError, TargetUnavailable
from uploader.folder import Confirmation, FolderTarget
from uploader.queue import UploadJob, UploadQueue

__all__ = [
    "Confirmation",
    "ConfirmationMismatch",
    "DeliveryError",
    "FolderTarget",
    "TargetUnavailable",
    "UploadJob",
    "UploadQueue",
]
