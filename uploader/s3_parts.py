"""Sending a clip's bytes to S3: one PUT below the part size, else a resumable multipart.

Every PUT and part carries the Content-MD5 of its bytes (the server refuses a body that
does not match it). A multipart upload reports its id and every completed part through
``PutProgress``; the queue saves them on the job. A later put given that state asks the
server which parts it holds (ListParts) and re-uses a part only where the server's ETag
is the MD5 of our bytes for that part; it sends the others. A part the state names but
the server lost is sent again, as is one the server holds with other bytes.

The station's copy is read whole on every put (re-used parts too, without sending them):
its SHA-256 must be the name the clip is stored under, or nothing is completed.

A multipart upload is a pipeline: a reader thread reads and hashes the next part while
the part before is on the wire (``uploader.s3_local.PartReader``). ``parts_in_flight``
parts are sent at once (default 1: a crash costs at most the part being sent), and at
most ``parts_in_flight + 1`` parts are in memory (2 x 16 MiB with the defaults). A stop
is looked at before each part is sent; a part already on the wire is let finish, so what
it stored is in the state the next put continues from.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from uploader.errors import ConfirmationMismatch, TargetUnavailable, UploadStopped
from uploader.s3_body import Body, Sending
from uploader.s3_client import S3Settings, error_code, s3_errors
from uploader.s3_local import LocalCopy, Part, PartReader, content_md5
from uploader.target import PutProgress, UploadedPart, UploadState


@dataclass(frozen=True)
class Sent:
    """What a put did: the version it made, and how many parts it sent or re-used."""

    version_id: str | None
    parts_sent: int = 0
    parts_reused: int = 0
    # parts the saved state named that the server no longer had (sent again)
    parts_lost: int = 0


def put_single(
    client: Any,
    settings: S3Settings,
    key: str,
    copy: LocalCopy,
    sha256: str,
    metadata: dict[str, str],
    lock: dict[str, Any],
    progress: PutProgress | None = None,
) -> Sent:
    """One PUT of the whole clip (below the part size), locked as it is stored."""
    data = copy.read(0, copy.size)
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise copy.not_its_name(sha256, found)
    md5, _ = content_md5(data)
    body = Body(data, Sending(progress))
    with s3_errors(settings, f"storing {key}"):
        answer = client.put_object(
            Bucket=settings.bucket, Key=key, Body=body, ContentLength=len(data), ContentMD5=md5,
            Metadata=metadata, **lock,
        )  # fmt: skip
    body.finish()
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


class _Upload:
    """One multipart upload being sent: its parts go out on sender threads, through
    ``parts_client`` (see ``S3Target.parts_client``); the rest through ``client``."""

    def __init__(
        self,
        clients: tuple[Any, Any],
        settings: S3Settings,
        key: str,
        upload_id: str,
        sending: Sending,
    ) -> None:
        self.client, self.parts_client = clients
        self.settings = settings
        self.key = key
        self.upload_id = upload_id
        self.sending = sending
        self.count = 0

    def send(self, part: Part, reader: PartReader) -> None:
        """Send ``part`` (on a sender thread); the server must store it as its MD5."""
        try:
            body = Body(part.data, self.sending)
            doing = f"sending part {part.number} of {self.count} of {self.key}"
            with s3_errors(self.settings, doing):
                answer = self.parts_client.upload_part(
                    Bucket=self.settings.bucket, Key=self.key, UploadId=self.upload_id,
                    PartNumber=part.number, Body=body, ContentLength=part.size,
                    ContentMD5=part.md5,
                )  # fmt: skip
        finally:
            reader.done_with(part)
        if answer.get("ETag") not in (part.etag, None):
            raise ConfirmationMismatch(
                f"S3 stored part {part.number} of {self.key} as ETag {answer.get('ETag')}, "
                f"not the MD5 of the bytes sent ({part.etag}); the clip stays queued and local"
            )
        body.finish()
        self.sending.stored(UploadedPart(part.number, part.size, part.etag))

    def start(self, metadata: dict[str, str]) -> str:
        with s3_errors(self.settings, f"starting the upload of {self.key}"):
            answer = self.client.create_multipart_upload(
                Bucket=self.settings.bucket, Key=self.key, Metadata=metadata
            )
        self.upload_id = str(answer["UploadId"])
        self.sending.started(self.upload_id)
        return self.upload_id

    def abort(self) -> None:
        with contextlib.suppress(TargetUnavailable), s3_errors(self.settings, "aborting"):
            self.client.abort_multipart_upload(
                Bucket=self.settings.bucket, Key=self.key, UploadId=self.upload_id
            )

    def complete(self, parts: list[UploadedPart]) -> str | None:
        listed = [{"PartNumber": p.number, "ETag": p.etag} for p in parts]
        with s3_errors(self.settings, f"completing the upload of {self.key}"):
            answer = self.client.complete_multipart_upload(
                Bucket=self.settings.bucket, Key=self.key, UploadId=self.upload_id,
                MultipartUpload={"Parts": listed},
            )  # fmt: skip
        version = answer.get("VersionId")
        return None if version is None else str(version)


def put_multipart(
    clients: tuple[Any, Any],
    settings: S3Settings,
    key: str,
    copy: LocalCopy,
    sha256: str,
    metadata: dict[str, str],
    state: UploadState | None,
    progress: PutProgress | None,
    stop: threading.Event | None,
) -> Sent:
    """Send the clip in parts of ``settings.part_size`` (``clients``: the target's
    client and its parts client), continuing ``state`` if the server still has that
    upload; complete it once every part is there and the bytes read are the clip's
    SHA-256."""
    part_size = settings.part_size
    count = max(1, -(-copy.size // part_size))
    in_flight = max(1, settings.parts_in_flight)
    reused = lost = sent = 0
    # The first part is read and hashed while the server is asked about the upload.
    with PartReader(copy, part_size, count, in_flight + 1) as reader:
        upload, held, saved = _begin(clients, settings, key, metadata, state, progress)
        upload.count = count
        sending = upload.sending
        with ThreadPoolExecutor(in_flight, thread_name_prefix="evidock-s3-send") as senders:
            on_wire: deque[Future[None]] = deque()
            for _ in range(count):
                part = reader.next()
                if held.get(part.number) == (part.size, part.etag):
                    reader.done_with(part)
                    sending.stored(UploadedPart(part.number, part.size, part.etag))
                    reused += 1
                    continue
                _settle(on_wire, len(on_wire) - in_flight + 1)
                if stop is not None and stop.is_set():
                    _settle(on_wire, len(on_wire))
                    raise UploadStopped(
                        f"stopped with {len(sending.parts)} of {count} parts of {key} stored; "
                        "the upload resumes"
                    )
                lost += part.number in saved
                on_wire.append(senders.submit(upload.send, part, reader))
                sent += 1
            _settle(on_wire, len(on_wire))
        found = reader.sha256()
    if found != sha256:
        # Nothing wrong may be completed under the clip's name: drop the parts.
        upload.abort()
        raise copy.not_its_name(sha256, found)
    version = upload.complete(sending.parts)
    return Sent(version, parts_sent=sent, parts_reused=reused, parts_lost=lost)


def _begin(
    clients: tuple[Any, Any],
    settings: S3Settings,
    key: str,
    metadata: dict[str, str],
    state: UploadState | None,
    progress: PutProgress | None,
) -> tuple[_Upload, dict[int, Any], set[int]]:
    """The upload to continue (``state``'s, if the server still has it: with the parts
    it holds and the part numbers the state named), or a new one."""
    held: dict[int, Any] = {}
    saved = {part.number for part in state.parts} if state is not None else set()
    upload_id = state.upload_id if state is not None else None
    if upload_id is not None:
        try:
            held = _listed_parts(clients[0], settings, key, upload_id)
        except KeyError:
            upload_id, saved = None, set()
    upload = _Upload(clients, settings, key, upload_id or "", Sending(progress, upload_id))
    if upload_id is None:
        upload.start(metadata)
    return upload, held, saved


def _settle(on_wire: deque[Future[None]], count: int) -> None:
    """Wait for the ``count`` oldest parts on the wire; the first failure is raised (the
    others are still waited for when the senders close)."""
    for _ in range(max(0, count)):
        on_wire.popleft().result()
