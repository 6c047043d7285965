"""Delivery errors.

::

    DeliveryError                 base
    ├── TargetUnavailable         retryable: the target cannot be reached or written now
    ├── ConfirmationMismatch      integrity: the target holds other bytes; never retried blindly
    ├── SourceIntegrityError      integrity: the station's own copy is missing, unreadable or
    │                             not the bytes its name says; parked at once, never retried
    └── UploadStopped             not a failure: a stop was asked mid-put; resumable
"""


class DeliveryError(Exception):
    """A clip or anchor could not be delivered."""


class TargetUnavailable(DeliveryError):
    """The target cannot be reached or written right now; the job is retried later."""


class ConfirmationMismatch(DeliveryError):
    """The target holds bytes that differ from the evidence; the clip is not marked uploaded."""


class SourceIntegrityError(DeliveryError):
    """The local object handed to a put is missing, unreadable or other bytes than its
    SHA-256 names: an integrity failure of the station's store, not of the target."""


class UploadStopped(DeliveryError):
    """A put gave up between pieces because a stop was asked; what it sent is kept."""
