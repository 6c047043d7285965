"""Anchors (signed checkpoints) and their trusted-timestamp tokens in an S3 bucket.

Both are written once under ``anchors/<station id>/<key hash>/``, locked in COMPLIANCE
mode for ``anchor_lock_days``: an anchor as ``checkpoint-<size>.anchor``, the TSA's
token for it beside it as ``checkpoint-<size>.anchor.tsr``. RGW 16 has no conditional
PUT (If-None-Match), so the name is looked up first: the same bytes there are a no-op,
other bytes an error (a fork of the ledger, or a second station with this one's id and
key), never replaced.

Reading back gives every version of every anchor (a second text under a name is a
finding, not hidden by the first), each with the token beside it when there is one
(the first version written: tokens are write-once too).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from uploader.errors import ConfirmationMismatch, DeliveryError
from uploader.s3_client import S3Settings, error_code, s3_errors
from uploader.s3_local import content_md5
from uploader.target import ANCHORS_ROOT, HeldAnchor

ANCHOR_SUFFIX = ".anchor"
TOKEN_SUFFIX = ".tsr"  # as ledger.TOKEN_SUFFIX: this room does not import the ledger
_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise DeliveryError(f"bad anchor name {name!r}")


def write_once(
    client: Any,
    settings: S3Settings,
    key: str,
    data: bytes,
    *,
    until: datetime | None,
    content_type: str,
) -> str | None:
    """Put ``data`` under ``key`` unless the bucket holds it already (locked in
    COMPLIANCE mode until ``until``, None: no lock); its version id."""
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]

    bucket = settings.bucket
    with s3_errors(settings, f"looking up {key}"):
        try:
            held = client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchKey"):
                raise
            held = None
    if held is None:
        md5, _ = content_md5(data)
        lock: dict[str, Any] = {}
        if until is not None:
            lock = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}
        with s3_errors(settings, f"publishing {key}"):
            answer = client.put_object(
                Bucket=bucket, Key=key, Body=data, ContentMD5=md5, ContentType=content_type,
                **lock,
            )  # fmt: skip
        return _version(answer)
    with s3_errors(settings, f"reading {key}"):
        stored = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    if stored != data:
        raise ConfirmationMismatch(
            f"s3://{bucket}/{key} already holds other content: a fork of this station's "
            "ledger, or a second station with this station's id and key — investigate "
            "before publishing again (anchors and their tokens are write-once)"
        )
    return _version(held)


def anchor_lock_until(settings: S3Settings, now: datetime) -> datetime:
    return (now + timedelta(days=settings.anchor_lock_days)).replace(microsecond=0)


def read_anchors(
    client: Any, settings: S3Settings, station_id: str | None, location: Any
) -> list[HeldAnchor]:
    """Every version of one station's anchors (every key's), or of every station's,
    each with its token when one is beside it; ``location(key, version)`` names them."""
    root = f"{ANCHORS_ROOT}/"
    prefix = root if station_id is None else f"{root}{station_id}/"
    bucket = settings.bucket
    anchors: list[tuple[str, str]] = []
    tokens: dict[str, str] = {}  # anchor key -> its token's first version
    with s3_errors(settings, f"listing the anchors under {prefix}"):
        pages = client.get_paginator("list_object_versions")
        for page in pages.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Versions", []):
                key, version = str(item["Key"]), str(item["VersionId"])
                if key.endswith(ANCHOR_SUFFIX):
                    anchors.append((key, version))
                elif key.endswith(ANCHOR_SUFFIX + TOKEN_SUFFIX):
                    # Versions of a key are listed newest first: the last is the first.
                    tokens[key[: -len(TOKEN_SUFFIX)]] = version
        held = []
        for key, version in anchors:
            text = _read(client, bucket, key, version).decode("utf-8", "replace")
            token_version = tokens.get(key)
            token = None
            if token_version is not None:
                token = _read(client, bucket, key + TOKEN_SUFFIX, token_version)
            held.append(HeldAnchor(key[len(root) :], text, location(key, version), token))
    return held


def _read(client: Any, bucket: str, key: str, version: str) -> bytes:
    return bytes(client.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read())


def _version(answer: Any) -> str | None:
    version = answer.get("VersionId")
    return None if version is None else str(version)
