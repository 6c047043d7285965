"""S3-compatible object storage as central storage (Ceph RGW, MinIO, cloud).

A clip is stored once under its content hash, ``clips/<sha256[:2]>/<sha256>``, with its
facts as user metadata (``sha256``, ``blake3``, ``size``, ``case-numbers``, ``collector``,
``capture-time``, ``station``...; values are UTF-8, percent-encoded, see
``uploader.s3_client.encode_value``). A put first asks what the bucket holds under that
name: the same size and SHA-256 metadata is confirmed without sending a byte; other bytes
there are a mismatch, never overwritten. Bytes go in one PUT below the part size, else in
a resumable multipart upload (``uploader.s3_parts``).

Object Lock: with ``require_object_lock`` the bucket's lock configuration is checked
before anything is sent, and a bucket without Object Lock gets no evidence at all (every
put fails with one line, the jobs stay queued). Once stored, the version is given its
retention (the clip's keep-until from the agent, else ``lock_days``) and, for a flagged
clip, a legal hold: after completion, since RGW 16 ignores the lock headers of
CreateMultipartUpload.

Nothing counts as delivered before the confirmation: HEAD of that version (size and our
SHA-256 metadata), then three 64 KiB ranges at offsets seeded by the hash and version,
re-read and compared with the station's copy. The confirmation's location names the
version; its ETag and version id go into ``clip.uploaded``.

Anchors, and the trusted-timestamp token of each beside it, are written once under
``anchors/<station id>/<key hash>/``, locked in COMPLIANCE mode (``uploader.s3_anchors``).

Clip bytes go through a client of their own (``parts_client``): every such request
carries its Content-MD5, so its signature does not cover a SHA-256 of the body too
(``uploader.s3_client.make_client``), and its bodies report what is sent as it goes
(``uploader.s3_body``), so the bandwidth limit paces a PUT or part from within.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from config.common import iso_utc, utc_now
from uploader.errors import ConfirmationMismatch, TargetUnavailable
from uploader.s3_anchors import anchor_lock_until, check_name, read_anchors, write_once
from uploader.s3_body import watch_sending
from uploader.s3_client import (
    S3Credentials,
    S3Settings,
    error_code,
    make_client,
    object_metadata,
    s3_errors,
)
from uploader.s3_local import LocalCopy
from uploader.s3_parts import Sent, put_multipart, put_single
from uploader.target import (
    Confirmation,
    HeldAnchor,
    HeldObject,
    PutProgress,
    UploadState,
)

# Keys of a put's ``meta`` that steer Object Lock instead of becoming metadata.
LOCK_UNTIL = "lock_until"  # ISO 8601 UTC: the version stays locked at least until then
LEGAL_HOLD = "legal_hold"  # true: a legal hold on the version
_STEERING = frozenset({LOCK_UNTIL, LEGAL_HOLD})
SAMPLE_BYTES = 64 * 1024
SAMPLES = 3
_NO_LOCK = "ObjectLockConfigurationNotFoundError"


@dataclass(frozen=True)
class S3Confirmation(Confirmation):
    """A confirmation from S3: also the version's ETag and id, its lock, what was sent."""

    etag: str = ""
    version_id: str | None = None
    lock_mode: str | None = None
    lock_until: str | None = None
    legal_hold: bool = False
    parts_sent: int = 0
    parts_reused: int = 0


class ObjectLockRequired(TargetUnavailable):
    """The bucket has no Object Lock and the config requires it: nothing is uploaded."""


class S3Target:
    """Central storage in an S3 bucket (implements ``uploader.Target``)."""

    name = "s3"

    def __init__(
        self,
        settings: S3Settings,
        credentials: S3Credentials,
        *,
        anchor_prefix: Callable[[], str],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.client = make_client(settings, credentials)
        # Clip bytes only: signed with their Content-MD5, reporting as they are sent.
        self.parts_client = make_client(settings, credentials, sign_payload=False)
        watch_sending(self.parts_client)
        self._anchor_prefix = anchor_prefix
        self._clock = clock
        self._guard = threading.Lock()
        self._bucket_locked: bool | None = None  # once seen enabled, it cannot be disabled

    @staticmethod
    def object_key(sha256: str) -> str:
        return f"clips/{sha256[:2]}/{sha256}"

    def location(self, key: str, version: str | None) -> str:
        where = f"s3://{self.settings.bucket}/{key}"
        return f"{where}?versionId={version}" if version else where

    # -- Object Lock ---------------------------------------------------------------------

    def bucket_locked(self) -> bool:
        """Whether the bucket has Object Lock; ``ObjectLockRequired`` when it has none
        and the config requires it."""
        with self._guard:
            known = self._bucket_locked
        # Enabled stays enabled; without it, ask again while the config requires it.
        if known or (known is False and not self.settings.require_object_lock):
            return known
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]

        bucket = self.settings.bucket
        with s3_errors(self.settings, f"reading the Object Lock configuration of {bucket}"):
            try:
                answer = self.client.get_object_lock_configuration(Bucket=bucket)
                config = answer.get("ObjectLockConfiguration", {})
                enabled = bool(config.get("ObjectLockEnabled") == "Enabled")
            except ClientError as exc:
                if error_code(exc) != _NO_LOCK:
                    raise
                enabled = False
        if not enabled and self.settings.require_object_lock:
            raise ObjectLockRequired(
                f"bucket {bucket} at {self.settings.endpoint} has no Object Lock, and "
                "delivery.require_object_lock forbids putting evidence there: use a bucket "
                "made with Object Lock (nothing was uploaded; the jobs stay queued)"
            )
        with self._guard:
            self._bucket_locked = enabled
        return enabled

    def _lock_headers(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        mode, until, hold = self._wanted_lock(meta)
        headers: dict[str, Any] = {"ObjectLockMode": mode, "ObjectLockRetainUntilDate": until}
        if hold:
            headers["ObjectLockLegalHoldStatus"] = "ON"
        return headers

    def _wanted_lock(self, meta: Mapping[str, Any]) -> tuple[str, datetime, bool]:
        now = self._clock()
        until = now + timedelta(days=self.settings.lock_days)
        given = meta.get(LOCK_UNTIL)
        if isinstance(given, str) and given:
            # The clip's own keep-until, but never a date already gone.
            until = max(datetime.fromisoformat(given.replace("Z", "+00:00")), now + timedelta(1))
        return self.settings.lock_mode, until.replace(microsecond=0), bool(meta.get(LEGAL_HOLD))

    def _apply_lock(
        self, key: str, version: str | None, held: Mapping[str, Any], meta: Mapping[str, Any]
    ) -> tuple[str, datetime, bool]:
        """Give the stored version its retention and hold where it lacks them (never
        shortening what is there: COMPLIANCE would refuse, and rightly)."""
        mode, until, hold = self._wanted_lock(meta)
        where = {"Bucket": self.settings.bucket, "Key": key}
        if version:
            where["VersionId"] = version
        current = held.get("ObjectLockRetainUntilDate")
        current_mode = held.get("ObjectLockMode")
        if current_mode == "COMPLIANCE":
            mode = "COMPLIANCE"  # a COMPLIANCE lock cannot become a weaker one
        # An hour's slack: the same put's headers already set about this date.
        short = current is None or current < until - timedelta(hours=1)
        if short or (current_mode, mode) == ("GOVERNANCE", "COMPLIANCE"):
            until = max(until, current) if current is not None else until
            extra = {"BypassGovernanceRetention": True} if current_mode == "GOVERNANCE" else {}
            with s3_errors(self.settings, f"setting the retention of {key}"):
                self.client.put_object_retention(
                    **where, Retention={"Mode": mode, "RetainUntilDate": until}, **extra
                )
        else:
            mode, until = str(current_mode), datetime.fromisoformat(str(current))
        held_on = held.get("ObjectLockLegalHoldStatus") == "ON"
        if hold and not held_on:
            with s3_errors(self.settings, f"setting a legal hold on {key}"):
                self.client.put_object_legal_hold(**where, LegalHold={"Status": "ON"})
        return mode, until, hold or held_on

    # -- what the bucket holds -------------------------------------------------------------

    def _head(self, key: str, version: str | None = None) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        args = {"Bucket": self.settings.bucket, "Key": key}
        if version:
            args["VersionId"] = version
        with s3_errors(self.settings, f"looking up {key}"):
            try:
                return dict(self.client.head_object(**args))
            except ClientError as exc:
                if error_code(exc) in ("404", "NoSuchKey", "NoSuchVersion"):
                    return None
                raise

    def head(self, sha256: str) -> Confirmation | None:
        """What the bucket holds under ``sha256``: its size and SHA-256 metadata, or None."""
        key = self.object_key(sha256)
        held = self._head(key)
        if held is None:
            return None
        return Confirmation(
            size=int(held["ContentLength"]),
            sha256=_meta_sha256(held),
            location=self.location(key, held.get("VersionId")),
        )

    # -- put -------------------------------------------------------------------------------

    def put(
        self,
        sha256: str,
        source: Path,
        meta: Mapping[str, Any],
        *,
        state: UploadState | None = None,
        progress: PutProgress | None = None,
        stop: threading.Event | None = None,
    ) -> S3Confirmation:
        """Store ``source`` under its SHA-256, lock it, and confirm what the bucket holds."""
        locked = self.bucket_locked()
        key = self.object_key(sha256)
        with LocalCopy(source) as copy:
            held = self._head(key)
            if held is not None:
                _same_or_mismatch(self.location(key, held.get("VersionId")), held, sha256, copy)
                sent = Sent(held.get("VersionId"))
            else:
                metadata = object_metadata(meta, _STEERING)
                lock = self._lock_headers(meta) if locked else {}
                if copy.size < self.settings.part_size:
                    sent = put_single(
                        self.parts_client, self.settings, key, copy, sha256, metadata, lock,
                        progress,
                    )  # fmt: skip
                else:
                    sent = put_multipart(
                        (self.client, self.parts_client), self.settings, key, copy, sha256,
                        metadata, state, progress, stop,
                    )  # fmt: skip
            return self._confirm(key, sent, sha256, copy, meta, locked)

    def _confirm(
        self,
        key: str,
        sent: Sent,
        sha256: str,
        copy: LocalCopy,
        meta: Mapping[str, Any],
        locked: bool,
    ) -> S3Confirmation:
        """HEAD the version, lock it, re-read a sample of it: only then is it confirmed."""
        version = sent.version_id
        held = self._head(key, version)
        where = self.location(key, version)
        if held is None:
            raise TargetUnavailable(f"{where} is not there right after it was stored; retried")
        version = version or held.get("VersionId")
        where = self.location(key, version)
        _same_or_mismatch(where, held, sha256, copy)
        mode: str | None = None
        until: datetime | None = None
        hold = False
        if locked:
            mode, until, hold = self._apply_lock(key, version, held, meta)
        self._sample(key, version, sha256, copy)
        return S3Confirmation(
            size=int(held["ContentLength"]),
            sha256=_meta_sha256(held),
            location=where,
            etag=str(held.get("ETag", "")),
            version_id=version,
            lock_mode=mode,
            lock_until=iso_utc(until) if until is not None else None,
            legal_hold=hold,
            parts_sent=sent.parts_sent,
            parts_reused=sent.parts_reused,
        )

    def _sample(self, key: str, version: str | None, sha256: str, copy: LocalCopy) -> None:
        """Re-read ranges of the stored version at seeded offsets; compare with ours."""
        if copy.size == 0:
            return
        length = min(SAMPLE_BYTES, copy.size)
        seed = random.Random(f"{sha256}/{version}")
        offsets = sorted({seed.randrange(copy.size - length + 1) for _ in range(SAMPLES)})
        args = {"Bucket": self.settings.bucket, "Key": key}
        if version:
            args["VersionId"] = version
        for offset in offsets:
            span = f"bytes={offset}-{offset + length - 1}"
            with s3_errors(self.settings, f"re-reading {key} ({span})"):
                stored = self.client.get_object(**args, Range=span)["Body"].read()
            if stored != copy.read(offset, length):
                raise ConfirmationMismatch(
                    f"{self.location(key, version)} holds other bytes than the station's "
                    f"copy at {span}; the clip stays queued and local — investigate that object"
                )

    # -- anchors ---------------------------------------------------------------------------

    def put_anchor(self, name: str, text: str, *, prefix: str | None = None) -> str:
        """Publish a signed checkpoint once, locked in COMPLIANCE mode; same text again
        is a no-op; other text under the name is a fork or a second station."""
        data = text.encode("utf-8")
        return self._put_once(name, data, "text/plain; charset=utf-8", prefix)

    def put_anchor_bytes(self, name: str, data: bytes, *, prefix: str | None = None) -> str:
        """Publish bytes beside the anchors once (a checkpoint's TSA token,
        ``<anchor name>.tsr``), locked in COMPLIANCE mode like them."""
        return self._put_once(name, data, "application/timestamp-reply", prefix)

    def _put_once(self, name: str, data: bytes, content_type: str, prefix: str | None) -> str:
        check_name(name)
        locked = self.bucket_locked()
        key = f"{prefix or self._anchor_prefix()}/{name}"
        until = anchor_lock_until(self.settings, self._clock()) if locked else None
        version = write_once(
            self.client, self.settings, key, data, until=until, content_type=content_type
        )
        return self.location(key, version)

    def anchors(self, station_id: str | None = None) -> list[HeldAnchor]:
        """Every version of one station's anchors (every key's), or of every station's,
        each with the TSA token beside it, if any."""
        return read_anchors(self.client, self.settings, station_id, self.location)

    def held(self, sha256: str, version_id: str | None = None) -> HeldObject | None:
        """The current version under the clip's key (or the version named): its size,
        SHA-256 metadata, ETag and version id, or None (deleted, never there)."""
        key = self.object_key(sha256)
        found = self._head(key, version_id)
        if found is None:
            return None
        version = found.get("VersionId") or version_id
        return HeldObject(
            size=int(found["ContentLength"]),
            sha256=_meta_sha256(found),
            location=self.location(key, version),
            etag=str(found.get("ETag", "")),
            version_id=version,
        )

    def read_range(
        self, sha256: str, offset: int, length: int, version_id: str | None = None
    ) -> bytes:
        key = self.object_key(sha256)
        args = {"Bucket": self.settings.bucket, "Key": key}
        if version_id:
            args["VersionId"] = version_id
        span = f"bytes={offset}-{offset + length - 1}"
        with s3_errors(self.settings, f"re-reading {key} ({span})"):
            return bytes(self.client.get_object(**args, Range=span)["Body"].read())


def _meta_sha256(held: Mapping[str, Any]) -> str:
    return unquote(str(held.get("Metadata", {}).get("sha256", "")))


def _same_or_mismatch(where: str, held: Mapping[str, Any], sha256: str, copy: LocalCopy) -> None:
    size = int(held["ContentLength"])
    stored = _meta_sha256(held)
    if size != copy.size or stored != sha256:
        raise ConfirmationMismatch(
            f"{where} holds {size} bytes with sha256 metadata {stored or 'none'}, not the "
            f"clip's {copy.size} bytes of sha256 {sha256}; the clip stays queued and local "
            "— investigate that object"
        )
