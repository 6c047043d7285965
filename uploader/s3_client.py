"""What the S3 target needs around boto3: its settings, its key, one client, one line per error.

The access key is never in the station config: ``credentials`` names a systemd credential
(``$CREDENTIALS_DIRECTORY/NAME``, ``LoadCredential=``) or a file only its owner may read,
holding ``aws_access_key_id = ...`` and ``aws_secret_access_key = ...`` lines (the form of
``~/.aws/credentials``; a ``[section]`` line and ``#`` comments are ignored).

Ceph RGW 16 refuses boto3's default flexible checksums over HTTPS (411, aws-chunked
trailers) and ignores them over HTTP, so the client computes checksums only where an
operation requires one; every put and part carries Content-MD5 instead, which RGW checks
(``docs/real-services.md``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from uploader.errors import DeliveryError, TargetUnavailable

MIB = 1024 * 1024
# What an S3 server says when the key pair is not one it knows or the signature is wrong.
_BAD_KEY = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
# Printable ASCII but the characters an S3 metadata value cannot keep as they are: "%"
# (the escape itself), " " (trimmed at the ends of a header) and "," (between list items).
# S3's limit is 2 KB of names and values; room is left for "omitted".
METADATA_BUDGET = 1800
ESSENTIAL_METADATA = ("sha256", "blake3", "size", "station", "clip-id", "capture-time", "collector")
_META_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "%,")


class CredentialsError(DeliveryError):
    """The S3 access key cannot be read: a station set-up problem, found at start."""


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class S3Settings:
    """The ``[delivery]`` keys of the s3 target, as plain values (no config import)."""

    endpoint: str
    bucket: str
    region: str = "us-east-1"
    addressing_style: str = "path"
    part_size: int = 16 * MIB
    checksums: str = "when_required"
    ca_file: Path | None = None
    require_object_lock: bool = True
    lock_mode: str = "COMPLIANCE"
    lock_days: int = 730
    anchor_lock_days: int = 3650
    # boto3's own retries of one request (connection refused, 5xx), before the queue's.
    attempts: int = 3
    # Parts of a multipart upload on the wire at once (uploader.s3_parts). 1: a crash or
    # a killed gateway costs at most the one part being sent; 2 goes faster on a gateway
    # that works on one part while the next arrives, and may cost two.
    parts_in_flight: int = 1


def read_credentials(spec: str, environ: Mapping[str, str] | None = None) -> S3Credentials:
    """The key pair ``spec`` names (a systemd credential name or a full path)."""
    env = os.environ if environ is None else environ
    if spec.startswith("/"):
        path = Path(spec)
        where = f"the S3 credentials file {path}"
        _check_private(path, where)
    else:
        folder = env.get("CREDENTIALS_DIRECTORY")
        if not folder:
            raise CredentialsError(
                f'delivery.s3_credentials = "{spec}" names a systemd credential, but '
                "$CREDENTIALS_DIRECTORY is not set: run evidock under systemd with "
                f"LoadCredential={spec}:/etc/evidock/{spec}, or give a full path"
            )
        path = Path(folder) / spec
        where = f"the systemd credential {spec} ({path})"
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise CredentialsError(f"{where} does not exist; write the S3 access key there") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise CredentialsError(f"{where} cannot be read ({why}); fix it") from None
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip().lower()] = value.strip()
    missing = [n for n in ("aws_access_key_id", "aws_secret_access_key") if not values.get(n)]
    if missing:
        raise CredentialsError(
            f"{where} lacks {' and '.join(missing)}; write one 'name = value' line for each"
        )
    return S3Credentials(values["aws_access_key_id"], values["aws_secret_access_key"])


def _check_private(path: Path, where: str) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CredentialsError(f"{where} does not exist; write the S3 access key there") from None
    except OSError as exc:
        raise CredentialsError(f"{where} cannot be read ({exc.strerror}); fix it") from None
    if not stat.S_ISREG(info.st_mode):
        raise CredentialsError(f"{where} is not a regular file")
    if info.st_mode & 0o077:
        raise CredentialsError(
            f"{where} may be read by others (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run chmod 600 {path}"
        )


def make_client(
    settings: S3Settings, credentials: S3Credentials, *, sign_payload: bool = True
) -> Any:
    """A boto3 S3 client for ``settings`` (thread-safe: one per target).

    ``sign_payload=False``: a client for requests whose body carries its Content-MD5,
    a signed header the server checks the body against, so the signature need not
    cover a SHA-256 of the body as well. botocore already leaves it out so over HTTPS;
    over plain HTTP it would hash every byte of a clip once more (and the gateway
    again to check it), on top of the MD5 and the SHA-256 the put computes itself.
    """
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    s3: dict[str, Any] = {"addressing_style": settings.addressing_style}
    if not sign_payload:
        s3["payload_signing_enabled"] = False
    config = Config(
        s3=s3,
        request_checksum_calculation=settings.checksums,
        response_checksum_validation="when_required",
        retries={"max_attempts": settings.attempts, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
        signature_version="s3v4",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint,
        region_name=settings.region,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        verify=str(settings.ca_file) if settings.ca_file is not None else None,
        config=config,
    )


def error_code(exc: BaseException) -> str | None:
    """The S3 error code of a refused request (``NoSuchKey``, ``404``...), else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code is not None else None


@contextlib.contextmanager
def s3_errors(settings: S3Settings, doing: str) -> Iterator[None]:
    """Turn what boto3 raises while ``doing`` into one line the job keeps (retryable)."""
    from botocore.exceptions import (  # type: ignore[import-untyped]
        BotoCoreError,
        ClientError,
        ConnectionError,
        ConnectTimeoutError,
        ReadTimeoutError,
    )

    where = f"S3 {settings.endpoint} bucket {settings.bucket}"
    try:
        yield
    except ClientError as exc:
        code = error_code(exc) or "?"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        message = exc.response.get("Error", {}).get("Message") or ""
        if code in _BAD_KEY:
            raise TargetUnavailable(
                f"{where} refused the station's access key ({code}) while {doing}: check "
                "delivery.s3_credentials; the jobs stay queued"
            ) from None
        if code == "NoSuchBucket":
            raise TargetUnavailable(
                f"{where}: the bucket does not exist ({doing}); create it with Object Lock "
                "or fix delivery.s3_bucket; the jobs stay queued"
            ) from None
        if code in ("AccessDenied", "403"):
            raise TargetUnavailable(
                f"{where} denied {doing} (403 {code}): give the station's S3 user that "
                "permission; the jobs stay queued"
            ) from None
        detail = f": {message}" if message else ""
        raise TargetUnavailable(
            f"{where} answered {status} {code} while {doing}{detail}; the job will be retried"
        ) from None
    except (ConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
        raise TargetUnavailable(
            f"{where} cannot be reached while {doing} ({type(exc).__name__}); check the "
            "endpoint and the network; the job will be retried"
        ) from None
    except BotoCoreError as exc:
        raise TargetUnavailable(
            f"{where}: {doing} failed ({exc}); the job will be retried"
        ) from None


def encode_value(value: object) -> str:
    """An S3 metadata value: UTF-8, percent-encoded outside printable ASCII (and %, space
    and ","); a list is its items so encoded, joined by ","."""
    if isinstance(value, list | tuple):
        return ",".join(encode_value(item) for item in value)
    text = "" if value is None else str(value)
    return quote(text, safe=_META_SAFE, encoding="utf-8")


def object_metadata(meta: Mapping[str, Any], skip: frozenset[str]) -> dict[str, str]:
    """``meta`` as S3 user metadata: lower-case names with "-" for "_", encoded values.

    S3 keeps at most 2 KB of user metadata: the facts that identify the clip always go,
    the others while they fit; ``omitted`` names those left out (the ledger has them).
    """
    encoded = {
        name.lower().replace("_", "-"): encode_value(value)
        for name, value in meta.items()
        if name not in skip and value is not None
    }
    kept = {name: encoded[name] for name in ESSENTIAL_METADATA if name in encoded}
    omitted: list[str] = []
    used = sum(len(name) + len(value) for name, value in kept.items())
    for name, value in sorted(encoded.items(), key=lambda item: len(item[1])):
        if name in kept:
            continue
        if used + len(name) + len(value) > METADATA_BUDGET:
            omitted.append(name)
            continue
        kept[name] = value
        used += len(name) + len(value)
    if omitted:
        kept["omitted"] = ",".join(sorted(omitted))
    return dict(sorted(kept.items()))
