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
    FAILURES,
    LEASE,
    ClaimLost,
    Ranker,
    UploadJob,
    UploadQueue,
    backoff_delay,
)
from uploader.s3 import LEGAL_HOLD, LOCK_UNTIL, ObjectLockRequired, S3Confirmation, S3Target
from uploader.s3_client import CredentialsError, S3Credentials, S3Settings, read_credentials
from uploader.target import (
    AnchorBytesTarget,
    Confirmation,
    Digest,
    Hasher,
    HeldAnchor,
    PutProgress,
    Target,
    UploadedPart,
    UploadState,
)
from uploader.throttle import RateAt, Throttle
from uploader.tsa import TimestampReply, TsaClient, TsaRefused, TsaUnavailable

__all__ = [
    "FAILURES",
    "FAILURE_LOCAL",
    "FAILURE_TARGET",
    "FAILURE_UNAVAILABLE",
    "LEASE",
    "LEGAL_HOLD",
    "LOCK_UNTIL",
    "AnchorBytesTarget",
    "BrokerSettings",
    "ClaimLost",
    "Confirmation",
    "ConfirmationMismatch",
    "CredentialsError",
    "DeliveryError",
    "Digest",
    "FolderTarget",
    "Hasher",
    "HeldAnchor",
    "ObjectLockRequired",
    "Outbox",
    "OutboxMessage",
    "Publisher",
    "PublisherState",
    "PutProgress",
    "Ranker",
    "RateAt",
    "S3Confirmation",
    "S3Credentials",
    "S3Settings",
    "S3Target",
    "SourceIntegrityError",
    "Target",
    "TargetUnavailable",
    "Throttle",
    "TimestampReply",
    "Topics",
    "TsaClient",
    "TsaRefused",
    "TsaUnavailable",
    "UploadJob",
    "UploadQueue",
    "UploadState",
    "UploadStopped",
    "UploadedPart",
    "backoff_delay",
    "broker_settings",
    "read_credentials",
    "read_password",
    "will_payload",
]
