"""The road out: durable upload queue with claims, the ``Target`` protocol, a folder target;
the MQTT outbox and its publisher."""

from uploader.errors import (
    ConfirmationMismatch,
    DeliveryError,
    SourceIntegrityError,
    TargetUnavailable,
    UploadStopped,
)
from uploader.folder import FolderTarget
from uploader.mqtt import Topics, broker_settings, read_password, will_payload
from uploader.mqtt_outbox import Outbox, OutboxMessage
from uploader.mqtt_publisher import BrokerSettings, Publisher, PublisherState
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
    "BrokerSettings",
    "ClaimLost",
    "Confirmation",
    "ConfirmationMismatch",
    "DeliveryError",
    "Digest",
    "FolderTarget",
    "Hasher",
    "Outbox",
    "OutboxMessage",
    "Publisher",
    "PublisherState",
    "PutProgress",
    "SourceIntegrityError",
    "Target",
    "TargetUnavailable",
    "Topics",
    "UploadJob",
    "UploadQueue",
    "UploadState",
    "UploadStopped",
    "UploadedPart",
    "broker_settings",
    "read_password",
    "will_payload",
]
