"""Delivery errors.

::

    DeliveryError                 base
    ├── TargetUnavailable         retryable: the target cannot be reached or written now
    └── ConfirmationMismatch      integrity: the target holds other bytes; never retried blindly
"""


class DeliveryError(Exception):
    """A clip or anchor could not be delivered."""


class TargetUnavailable(DeliveryError):
    """The target cannot be reached or written right now; the job is retried later."""


class ConfirmationMismatch(DeliveryError):
    """The target holds bytes that differ from the evidence; the clip is not marked uploaded."""
