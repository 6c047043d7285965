"""Sending a clip's bytes to S3: one PUT below the part size, else a resumable multipart.

Every PUT and part carries the Content-MD5 of its bytes (the server refuses a body that
does not match it). A multipart upload reports its id and every completed part through
``PutProgress``; the queue saves them on the job. A later put given that state asks the
server which parts it holds (ListParts) and re-uses a part only where the server's ETag
is the MD5 of our bytes for that part; it sends the others. A part the state names but
the server lost is sent again, as is one the server holds with other bytes.

The station's copy is read whole on every put (re-used parts too, without sending them):
its SHA-256 must be the name the clip is stored under, or nothing is completed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uploader.errors import (
    ConfirmationMismatch,
    SourceIntegrityError,
    TargetUnavailable,
    UploadStopped,
)
from uploader.s3_client import S3Settings, error_code, s3_errors
from uploader.target import PutProgress, UploadedPart, UploadState


@dataclass(frozen=True)
class Sent:
    """What a put did: the version it made, and how many parts it sent or re-used."""

    version_id: str | None
    parts_sent: int = 0
    parts_reused: int = 0
    # parts the saved state named that the server no longer had (sent again)
    parts_lost: int = 0


class LocalCopy:
    """The station's copy of a clip, open for reading at any offset."""

    def __init__(self, source: Path) -> None:
        self.source = source
        try:
            self.fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise self.unreadable(exc.strerror or str(exc)) from None
        try:
            info = os.fstat(self.fd)
        except OSError as exc:
            os.close(self.fd)
            raise self.unreadable(exc.strerror or str(exc)) from None
        if not stat.S_ISREG(info.st_mode):
            os.close(self.fd)
            raise self.unreadable("not a regular file")
        self.size = info.st_size

    def unreadable(self, why: str) -> SourceIntegrityError:
        return SourceIntegrityError(
            f"the station's copy {self.source} cannot be read ({why}); nothing was stored centrally"
        )

    def read(self, offset: int, length: int) -> bytes:
        chunks: list[bytes] = []
        while length > 0:
            try:
                chunk = os.pread(self.fd, length, offset)
            except OSError as exc:
                raise self.unreadable(exc.strerror or str(exc)) from None
            if not chunk:
                raise self.unreadable(f"it ends before byte {offset}")
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> LocalCopy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def content_md5(data: bytes) -> tuple[str, str]:
    """(Content-MD5 header value, the ETag S3 gives such a body or part)."""
    digest = hashlib.md5(data, usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode(), f'"{digest.hexdigest()}"'


def _not_its_name(copy: LocalCopy, sha256: str, found: str) -> SourceIntegrityError:
    return SourceIntegrityError(
        f"the station's copy {copy.source} is not the bytes its name says (it reads as "
        f"sha256 {found}); nothing was stored centrally"
    )


def put_single(
    client: Any,
    settings: S3Settings,
    key: str,
    copy: LocalCopy,
    sha256: str,
    metadata: dict[str, str],
    lock: dict[str, Any],
) -> Sent:
    """One PUT of the whole clip (below the part size), locked as it is stored."""
    data = copy.read(0, copy.size)
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise _not_its_name(copy, sha256, found)
    md5, _ = content_md5(data)
    with s3_errors(settings, f"storing {key}"):
        answer = client.put_object(
            Bucket=settings.bucket, Key=key, Body=data, ContentMD5=md5, Metadata=metadata, **lock
        )
    return Sent(answer.get("VersionId"), parts_sent=1)


def _listed_parts(client: Any, settings: S3Settings, key: str, upload_id: str) -> dict[int, Any]:
    """Part number -> (size, ETag) of what the server holds of the upload; {} and a
    KeyError when the upload is gone (completed, aborted or expired)."""
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]

    held: dict[int, Any] = {}
    marker = 0
    while True:
        with s3_errors(settings, f"listing the parts of {key}"):
            try:
                page = client.list_parts(
                    Bucket=settings.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
            except ClientError as exc:
                if error_code(exc) == "NoSuchUpload":
                    raise KeyError(upload_id) from None
                raise
        for part in page.get("Parts", []):
            held[int(part["PartNumber"])] = (int(part["Size"]), str(part["ETag"]))
        if not page.get("IsTruncated"):
            return held
        marker = int(page["NextPartNumberMarker"])


def put_multipart(
    client: Any,
    settings: S3Settings,
    key: str,
    copy: LocalCopy,
    sha256: str,
    metadata: dict[str, str],
    state: UploadState | None,
    progress: PutProgress | None,
    stop: threading.Event | None,
) -> Sent:
    """Send the clip in parts of ``settings.part_size``, continuing ``state`` if the
    server still has that upload; complete it once every part is there and the bytes
    read are the clip's SHA-256."""
    held: dict[int, Any] = {}
    saved = {part.number: part for part in state.parts} if state is not None else {}
    upload_id = state.upload_id if state is not None else None
    if upload_id is not None:
        try:
            held = _listed_parts(client, settings, key, upload_id)
        except KeyError:
            upload_id, saved = None, {}
    if upload_id is None:
        with s3_errors(settings, f"starting the upload of {key}"):
            upload_id = str(
                client.create_multipart_upload(Bucket=settings.bucket, Key=key, Metadata=metadata)[
                    "UploadId"
                ]
            )
        if progress is not None:
            progress(0, UploadState(upload_id))
    part_size = settings.part_size
    count = max(1, -(-copy.size // part_size))
    whole = hashlib.sha256()
    done: list[UploadedPart] = []
    sent = reused = lost = 0
    for number in range(1, count + 1):
        if stop is not None and stop.is_set():
            raise UploadStopped(
                f"stopped after part {number - 1} of {count} of {key}; the upload resumes"
            )
        offset = (number - 1) * part_size
        data = copy.read(offset, min(part_size, copy.size - offset))
        whole.update(data)
        md5, etag = content_md5(data)
        if held.get(number) == (len(data), etag):
            reused += 1
        else:
            lost += number in saved
            with s3_errors(settings, f"sending part {number} of {count} of {key}"):
                answer = client.upload_part(
                    Bucket=settings.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                    Body=data, ContentMD5=md5,
                )  # fmt: skip
            if answer.get("ETag") not in (etag, None):
                raise ConfirmationMismatch(
                    f"S3 stored part {number} of {key} as ETag {answer.get('ETag')}, not the "
                    f"MD5 of the bytes sent ({etag}); the clip stays queued and local"
                )
            sent += 1
        done.append(UploadedPart(number, len(data), etag))
        if progress is not None:
            progress(offset + len(data), UploadState(upload_id, tuple(done)))
    found = whole.hexdigest()
    if found != sha256:
        # Nothing wrong may be completed under the clip's name: drop the parts.
        with contextlib.suppress(TargetUnavailable), s3_errors(settings, "aborting"):
            client.abort_multipart_upload(Bucket=settings.bucket, Key=key, UploadId=upload_id)
        raise _not_its_name(copy, sha256, found)
    parts = [{"PartNumber": p.number, "ETag": p.etag} for p in done]
    with s3_errors(settings, f"completing the upload of {key}"):
        answer = client.complete_multipart_upload(
            Bucket=settings.bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )  # fmt: skip
    return Sent(answer.get("VersionId"), parts_sent=sent, parts_reused=reused, parts_lost=lost)
