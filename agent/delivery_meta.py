"""What a put carries beside the clip's bytes, and what its leaf records.

The object metadata central storage keeps beside a clip (its digests, size, cases,
collector, capture time, station; for Object Lock its keep-until and legal hold), the
``clip.uploaded`` body made of a target's confirmation, the s3 target's settings from
``[delivery]``, the whole-file hasher a target is handed, and the check that the
station's own copy is there before anything is sent.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

from agent.retention import retention_of
from agent.sensitivity import cases_holding, clip_sensitivity
from agent.station import Station
from config.common import iso_utc
from hashing import Digests, HashingError, HashOptions, hash_file
from uploader import (
    LEGAL_HOLD,
    LOCK_UNTIL,
    Confirmation,
    Hasher,
    S3Confirmation,
    S3Settings,
    SourceIntegrityError,
    UploadJob,
)


def store_hasher(options: HashOptions) -> Hasher:
    """Size and SHA-256 through the station's one hashing pipeline, for a target (what
    central storage confirms; the other digests would cost CPU for nothing)."""

    def digest(path: Path) -> Digests:
        try:
            return hash_file(path, options, sha256_only=True)
        except HashingError as exc:
            # A target reports an unreadable file as OSError (it does not know hashing).
            cause = exc.__cause__
            if isinstance(cause, OSError):
                raise OSError(cause.errno, cause.strerror, str(path)) from None
            raise OSError(errno.EIO, str(exc), str(path)) from None

    return digest


def s3_settings(station: Station) -> S3Settings:
    """The ``[delivery]`` keys of the s3 target."""
    d = station.config.delivery
    return S3Settings(
        endpoint=d.s3_endpoint,
        bucket=d.s3_bucket,
        region=d.s3_region,
        addressing_style=d.s3_addressing_style,
        part_size=d.s3_part_size_mib * 1024 * 1024,
        checksums=d.s3_checksums,
        ca_file=d.s3_ca_file,
        require_object_lock=d.require_object_lock,
        lock_mode=d.lock_mode,
        lock_days=d.lock_days,
        anchor_lock_days=d.anchor_lock_days,
    )


def object_meta(station: Station, conn: sqlite3.Connection, job: UploadJob) -> dict[str, Any]:
    """What central storage keeps beside a clip: its digests, size, cases, collector,
    capture time and station; for Object Lock its keep-until and whether to hold it."""
    row = conn.execute(
        "SELECT c.source_path, c.recorder, c.session_id, c.kind, c.blake3, c.size,"
        " coalesce(c.creation_time, c.recorder_time) AS capture_time, s.officer"
        " FROM clips c LEFT JOIN docking_sessions s USING (session_id) WHERE c.clip_id = ?",
        (job.clip_id,),
    ).fetchone()
    meta: dict[str, Any] = {}
    if row is not None:
        meta.update(dict(row))
        meta["collector"] = meta.pop("officer")
    meta.update({"clip_id": job.clip_id, "station": station.station_id, "sha256": job.sha256})
    meta.setdefault("size", job.size)
    ledger = station.ledger(conn)
    cases = cases_holding(ledger, job.clip_id)
    meta["case_numbers"] = cases
    if job.target == "s3":
        category, keep_until = retention_of(conn, job.clip_id, station.config.retention)
        meta["retention"] = category
        if keep_until is not None:
            meta[LOCK_UNTIL] = iso_utc(keep_until)
        level = clip_sensitivity(conn, ledger, job.clip_id, cases).level
        meta[LEGAL_HOLD] = level in station.config.delivery.legal_hold_sensitivities
    return meta


def uploaded_body(job: UploadJob, confirmation: Confirmation) -> dict[str, Any]:
    """The body of ``clip.uploaded``: what the target confirmed, and where."""
    body: dict[str, Any] = {
        "clip_id": job.clip_id,
        "sha256": job.sha256,
        "target": job.target,
        "location": confirmation.location,
        "confirmed_size": confirmation.size,
        "confirmed_sha256": confirmation.sha256,
    }
    if isinstance(confirmation, S3Confirmation):
        body.update(
            etag=confirmation.etag,
            version_id=confirmation.version_id,
            lock_mode=confirmation.lock_mode,
            lock_until=confirmation.lock_until,
            legal_hold=confirmation.legal_hold,
        )
    return body


def check_local(source: Path, job: UploadJob) -> None:
    """The station's copy is there, a regular file of the size its clip was committed with."""
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        raise SourceIntegrityError(
            f"the station's copy of clip {job.clip_id} is missing from the evidence store "
            f"({source})"
        ) from None
    except OSError as exc:
        raise SourceIntegrityError(
            f"the station's copy of clip {job.clip_id} ({source}) cannot be read: {exc.strerror}"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise SourceIntegrityError(
            f"the station's copy of clip {job.clip_id} ({source}) is not a regular file"
        )
    if info.st_size != job.size:
        raise SourceIntegrityError(
            f"the station's copy of clip {job.clip_id} ({source}) has {info.st_size} bytes; "
            f"it was committed with {job.size}"
        )
