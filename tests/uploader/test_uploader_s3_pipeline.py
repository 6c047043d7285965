"""The S3 put's pipeline and what rides beside anchors, against a real Ceph RGW: parts read
and hashed ahead on a thread of their own with bounded memory, two parts on the wire at
once, clip bytes signed by their Content-MD5 (not a payload SHA-256) while other
requests keep a signed payload, and TSA tokens written once beside their anchors
(COMPLIANCE) and read back with them."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from services import Rgw

from uploader import (
    AnchorBytesTarget,
    ConfirmationMismatch,
    S3Credentials,
    S3Settings,
    S3Target,
    UploadState,
)
from uploader.s3_local import LocalCopy, PartReader

MIB = 1024 * 1024
PART = 5 * MIB
PREFIX = "anchors/bj-cy-02/0123456789abcdef"


def _bucket(rgw: Rgw) -> str:
    name = f"pip-{uuid.uuid4().hex[:16]}"
    rgw.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def _target(rgw: Rgw, bucket: str, **kw: Any) -> S3Target:
    settings = S3Settings(endpoint=rgw.endpoint, bucket=bucket, part_size=PART, lock_days=1, **kw)
    keys = S3Credentials(rgw.access_key, rgw.secret_key)
    return S3Target(settings, keys, anchor_prefix=lambda: PREFIX)


def _clip(folder: Path, size: int) -> tuple[Path, str]:
    path = folder / "clip"
    path.write_bytes(os.urandom(size))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


class _CountingCopy(LocalCopy):
    def __init__(self, source: Path) -> None:
        super().__init__(source)
        self.reads = 0

    def read(self, offset: int, length: int) -> bytes:
        self.reads += 1
        return super().read(offset, length)


def test_the_reader_holds_at_most_its_parts_and_hashes_in_order(tmp_path: Path) -> None:
    path, sha = _clip(tmp_path, 10 * 1000 + 7)
    data = path.read_bytes()
    copy = _CountingCopy(path)
    with copy, PartReader(copy, 1000, 11, held=2) as reader:
        first, second = reader.next(), reader.next()
        time.sleep(0.2)  # room for a reader that wrongly reads on
        assert copy.reads == 2, "a third part read while two are held"
        with pytest.raises(RuntimeError, match="after its last part"):
            reader.sha256()
        parts = [first, second]
        reader.done_with(first)
        for _ in range(9):
            parts.append(reader.next())
            reader.done_with(parts[-2])
        assert reader.sha256() == sha
    assert b"".join(p.data for p in parts) == data
    for part in parts:
        digest = hashlib.md5(part.data).digest()
        assert part.md5 == base64.b64encode(digest).decode()
        assert part.etag == f'"{digest.hex()}"'


def test_leaving_the_reader_early_stops_its_thread(tmp_path: Path) -> None:
    path, _ = _clip(tmp_path, 5000)
    with LocalCopy(path) as copy:
        with PartReader(copy, 1000, 5, held=1) as reader:
            reader.next()  # the reader now waits for room that never comes
        assert not any(t.name == "evidock-s3-read" for t in threading.enumerate())


def test_two_parts_on_the_wire_store_the_clip_and_report_every_byte_once(
    rgw: Rgw, tmp_path: Path
) -> None:
    bucket = _bucket(rgw)
    target = _target(rgw, bucket, parts_in_flight=2)
    path, sha = _clip(tmp_path, 4 * PART + 123)
    seen: list[tuple[int, UploadState | None]] = []
    lock = threading.Lock()
    threads = set()

    def progress(sent: int, state: UploadState | None) -> None:
        assert lock.acquire(blocking=False), "two progress calls at once"
        try:
            seen.append((sent, state))
            threads.add(threading.current_thread().name)
        finally:
            lock.release()

    done = target.put(sha, path, {"sha256": sha}, progress=progress)
    assert (done.parts_sent, done.parts_reused, done.sha256) == (5, 0, sha)
    sent = [count for count, _ in seen]
    assert sent == sorted(sent) and sent[-1] == path.stat().st_size
    final = [state for _, state in seen if state is not None][-1]
    assert [p.number for p in final.parts] == [1, 2, 3, 4, 5]
    assert len(threads) == 3, threads  # the caller (the upload's id) and two senders
    s3 = rgw.client()
    body = s3.get_object(Bucket=bucket, Key=f"clips/{sha[:2]}/{sha}")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha


def test_clip_bytes_are_signed_by_their_md5_and_other_requests_by_their_payload(
    rgw: Rgw, tmp_path: Path
) -> None:
    target = _target(rgw, _bucket(rgw))
    signed: dict[str, str] = {}

    def noting(name: str) -> Any:
        def note(request: Any, **_: Any) -> None:
            value = request.headers.get("X-Amz-Content-SHA256", b"")
            signed[name] = value.decode() if isinstance(value, bytes) else str(value)

        return note

    for client in (target.client, target.parts_client):
        for name in ("PutObject", "UploadPart", "CompleteMultipartUpload"):
            client.meta.events.register(f"before-send.s3.{name}", noting(name))
    for size in (3000, PART + 1):
        path, sha = _clip(tmp_path, size)
        target.put(sha, path, {"sha256": sha})
    assert (signed["PutObject"], signed["UploadPart"]) == ("UNSIGNED-PAYLOAD",) * 2
    body_sha = signed["CompleteMultipartUpload"]
    assert len(body_sha) == 64 and body_sha != "UNSIGNED-PAYLOAD"


def test_tokens_are_written_once_beside_their_anchors_and_read_back_with_them(
    rgw: Rgw,
) -> None:
    bucket = _bucket(rgw)
    target = _target(rgw, bucket)
    assert isinstance(target, AnchorBytesTarget)
    name = "checkpoint-000000000007.anchor"
    target.put_anchor(name, "anchor seven\n")
    target.put_anchor("checkpoint-000000000009.anchor", "anchor nine\n")
    where = target.put_anchor_bytes(f"{name}.tsr", b"token seven")
    key = f"{PREFIX}/{name}.tsr"
    assert where.startswith(f"s3://{bucket}/{key}?versionId=")
    assert target.put_anchor_bytes(f"{name}.tsr", b"token seven") == where
    with pytest.raises(ConfirmationMismatch, match="already holds other content"):
        target.put_anchor_bytes(f"{name}.tsr", b"another token")
    s3 = rgw.client()
    assert s3.head_object(Bucket=bucket, Key=key)["ObjectLockMode"] == "COMPLIANCE"
    assert len(s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]) == 1

    held = {a.name.rsplit("/", 1)[1]: a for a in target.anchors("bj-cy-02")}
    assert sorted(held) == [name, "checkpoint-000000000009.anchor"]
    assert (held[name].text, held[name].token) == ("anchor seven\n", b"token seven")
    assert held["checkpoint-000000000009.anchor"].token is None
    # Someone with write access puts a newer version over the token: the one read back
    # is still the first written (tokens are write-once, the first is the station's).
    s3.put_object(Bucket=bucket, Key=key, Body=b"forged token")
    again = {a.name.rsplit("/", 1)[1]: a for a in target.anchors("bj-cy-02")}
    assert again[name].token == b"token seven"
