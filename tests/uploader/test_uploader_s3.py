"""The S3 target against a real Ceph RGW: content-addressed puts with Content-MD5, HEAD
before sending, metadata that keeps Chinese text, Object Lock refused or applied on the
stored version, a multipart upload resumed across a gateway crash sending only the
missing parts, confirmation by ranged re-reads, write-once anchors, one line per error."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from services import Rgw
from services.ports import free_port

from agent.database import open_station_db, transaction
from uploader import (
    LEGAL_HOLD,
    LOCK_UNTIL,
    ConfirmationMismatch,
    ObjectLockRequired,
    S3Credentials,
    S3Settings,
    S3Target,
    SourceIntegrityError,
    TargetUnavailable,
    UploadQueue,
    UploadState,
    UploadStopped,
)

MIB = 1024 * 1024
PART = 5 * MIB  # S3's smallest part: keeps the multipart tests small
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def _bucket(rgw: Rgw, *, lock: bool = True) -> str:
    name = f"s3t-{uuid.uuid4().hex[:16]}"
    rgw.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
    return name


def _target(
    rgw: Rgw, bucket: str, *, secret: str | None = None, endpoint: str | None = None, **kw: Any
) -> S3Target:
    settings = S3Settings(
        endpoint=endpoint or rgw.endpoint, bucket=bucket, part_size=PART, lock_days=1, **kw
    )
    keys = S3Credentials(rgw.access_key, secret or rgw.secret_key)
    return S3Target(settings, keys, anchor_prefix=lambda: "anchors/bj-cy-02/0123456789abcdef")


def _clip(folder: Path, size: int, name: str = "clip") -> tuple[Path, str]:
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _error(call: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def test_a_small_clip_goes_in_one_put_with_its_metadata_and_is_locked(
    rgw: Rgw, tmp_path: Path
) -> None:
    bucket = _bucket(rgw)
    target = _target(rgw, bucket)
    path, sha = _clip(tmp_path, 300 * 1024)
    meta = {
        "sha256": sha,
        "case_numbers": ["朝执罚〔2026〕12号", "A,B 7%"],
        "collector": "张三 0231",
        "capture_time": "2026-11-22T08:30:15Z",
        LEGAL_HOLD: False,
    }
    assert target.head(sha) is None
    done = target.put(sha, path, meta)
    key = f"clips/{sha[:2]}/{sha}"
    assert (done.size, done.sha256, done.parts_sent) == (path.stat().st_size, sha, 1)
    assert done.location == f"s3://{bucket}/{key}?versionId={done.version_id}"
    assert done.etag == f'"{hashlib.md5(path.read_bytes()).hexdigest()}"'

    s3 = rgw.client()
    head = s3.head_object(Bucket=bucket, Key=key)
    stored = head["Metadata"]
    assert stored["collector"] == "%E5%BC%A0%E4%B8%89%200231"
    assert unquote(stored["collector"]) == "张三 0231"
    assert [unquote(n) for n in stored["case-numbers"].split(",")] == meta["case_numbers"]
    assert stored["capture-time"] == "2026-11-22T08:30:15Z"
    assert "legal-hold" not in stored and LOCK_UNTIL not in stored
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert done.lock_mode == "COMPLIANCE" and done.legal_hold is False
    version = done.version_id
    assert _error(lambda: s3.delete_object(Bucket=bucket, Key=key, VersionId=version)) == (
        "AccessDenied"
    )

    # Already there with the same SHA-256 and size: confirmed without sending it again.
    again = target.put(sha, path, meta)
    assert (again.parts_sent, again.version_id) == (0, version)
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    assert [v["VersionId"] for v in versions] == [version]
    held = target.head(sha)
    assert held is not None and (held.size, held.sha256) == (done.size, sha)


def test_a_large_clip_goes_in_parts_and_a_flagged_one_is_held(rgw: Rgw, tmp_path: Path) -> None:
    bucket = _bucket(rgw)
    target = _target(rgw, bucket)
    path, sha = _clip(tmp_path, 12 * MIB)
    until = datetime.now(UTC) + timedelta(days=3)
    seen: list[tuple[int, UploadState | None]] = []
    done = target.put(
        sha,
        path,
        {"sha256": sha, LEGAL_HOLD: True, LOCK_UNTIL: until.isoformat()},
        progress=lambda sent, state: seen.append((sent, state)),
    )
    assert (done.parts_sent, done.parts_reused) == (3, 0)
    assert done.etag.endswith('-3"'), "HEAD's ETag: RGW's CompleteMultipartUpload gives none"
    # Reported as the bytes go (every MiB within a part), and as each part is stored.
    sent = [count for count, _ in seen]
    assert sent == sorted(sent) and sent[0] == 0 and sent[-1] == 12 * MIB
    assert {MIB, PART + MIB, 2 * PART + MIB} <= set(sent)
    states = [state for _, state in seen if state is not None]
    assert [len(state.parts) for state in states] == [0, 1, 2, 3]
    assert [p.number for p in states[-1].parts] == [1, 2, 3]

    s3 = rgw.client()
    key = f"clips/{sha[:2]}/{sha}"
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=done.version_id)
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    assert head["ObjectLockRetainUntilDate"] == until.replace(microsecond=0)
    assert done.legal_hold is True
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_gateway_crash_mid_upload_resumes_with_only_the_missing_parts(
    rgw: Rgw, tmp_path: Path
) -> None:
    bucket = _bucket(rgw)
    path, sha = _clip(tmp_path, 17 * MIB)  # parts of 5, 5, 5 and 2 MiB
    conn = open_station_db(tmp_path / "station.db")
    queue = UploadQueue(conn)
    with transaction(conn):
        queue.enqueue("clip-1", sha, path.stat().st_size, "s3", T0)
    (job,) = queue.claim("me", T0)
    saved = [job]

    def save_then_crash(sent: int, state: UploadState | None) -> None:
        # The queue keeps what the put reports; the gateway dies at half the parts.
        saved[0] = queue.renew(saved[0], T0, state=state)
        if state is not None and len(state.parts) == 2:
            rgw.kill_rgw()

    try:
        with pytest.raises(TargetUnavailable, match="cannot be reached"):
            _target(rgw, bucket).put(sha, path, {"sha256": sha}, progress=save_then_crash)
    finally:
        rgw.start_rgw()
    (kept,) = queue.jobs()
    assert kept.upload is not None and [p.number for p in kept.upload.parts] == [1, 2]

    again = _target(rgw, bucket).put(sha, path, {"sha256": sha}, state=kept.upload)
    assert (again.parts_reused, again.parts_sent) == (2, 2)
    s3 = rgw.client()
    key = f"clips/{sha[:2]}/{sha}"
    versions = s3.list_object_versions(Bucket=bucket).get("Versions", [])
    assert [(v["Key"], v["VersionId"]) for v in versions] == [(key, again.version_id)]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    conn.close()


def test_a_part_the_server_holds_with_other_bytes_is_sent_again(rgw: Rgw, tmp_path: Path) -> None:
    bucket = _bucket(rgw)
    path, sha = _clip(tmp_path, 11 * MIB)
    s3 = rgw.client(request_checksum_calculation="when_required")
    key = f"clips/{sha[:2]}/{sha}"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata={"sha256": sha})[
        "UploadId"
    ]
    data = path.read_bytes()
    good = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=data[:PART])
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=2, Body=os.urandom(PART))
    # The saved state names part 1 only; part 2 is on the server but is not our bytes.
    state = UploadState(upload, ())
    done = _target(rgw, bucket).put(sha, path, {"sha256": sha}, state=state)
    assert (done.parts_reused, done.parts_sent) == (1, 2)
    assert good["ETag"] == f'"{hashlib.md5(data[:PART]).hexdigest()}"'
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha


def test_a_bucket_without_object_lock_gets_no_evidence(rgw: Rgw, tmp_path: Path) -> None:
    bucket = _bucket(rgw, lock=False)
    path, sha = _clip(tmp_path, 1000)
    big, big_sha = _clip(tmp_path, 6 * MIB, "big")
    target = _target(rgw, bucket)
    for source, digest in ((path, sha), (big, big_sha)):
        with pytest.raises(ObjectLockRequired, match=f"bucket {bucket} .* has no Object Lock"):
            target.put(digest, source, {"sha256": digest})
    with pytest.raises(ObjectLockRequired):
        target.put_anchor("checkpoint-000000000001.anchor", "text")
    s3 = rgw.client()
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # Allowed by the config: stored, without retention.
    done = _target(rgw, bucket, require_object_lock=False).put(sha, path, {"sha256": sha})
    assert (done.lock_mode, done.lock_until) == (None, None)


def test_the_stations_copy_not_being_its_bytes_stores_nothing(rgw: Rgw, tmp_path: Path) -> None:
    bucket = _bucket(rgw)
    target = _target(rgw, bucket)
    small, _ = _clip(tmp_path, 1000)
    big, _ = _clip(tmp_path, 6 * MIB, "big")
    for source in (small, big):
        claimed = hashlib.sha256(b"other bytes").hexdigest()
        with pytest.raises(SourceIntegrityError, match="not the bytes its name says"):
            target.put(claimed, source, {"sha256": claimed})
    with pytest.raises(SourceIntegrityError, match="cannot be read"):
        target.put("0" * 64, tmp_path / "absent", {})
    s3 = rgw.client()
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_other_bytes_under_the_clips_name_are_a_mismatch(rgw: Rgw, tmp_path: Path) -> None:
    bucket = _bucket(rgw, lock=False)
    path, sha = _clip(tmp_path, 1000)
    rgw.client().put_object(
        Bucket=bucket, Key=f"clips/{sha[:2]}/{sha}", Body=b"x" * 1000, Metadata={"sha256": "0"}
    )
    target = _target(rgw, bucket, require_object_lock=False)
    with pytest.raises(ConfirmationMismatch, match="sha256 metadata 0, not the clip's"):
        target.put(sha, path, {"sha256": sha})


def test_ranged_re_read_catches_bytes_that_differ_from_the_metadata(
    rgw: Rgw, tmp_path: Path
) -> None:
    bucket = _bucket(rgw, lock=False)
    path, sha = _clip(tmp_path, 200 * 1024)
    # Right size and SHA-256 metadata, other bytes: only the re-read sample can tell.
    rgw.client().put_object(
        Bucket=bucket,
        Key=f"clips/{sha[:2]}/{sha}",
        Body=os.urandom(200 * 1024),
        Metadata={"sha256": sha},
    )
    target = _target(rgw, bucket, require_object_lock=False)
    with pytest.raises(ConfirmationMismatch, match="holds other bytes than the station's copy"):
        target.put(sha, path, {"sha256": sha})


def test_anchors_are_write_once_under_the_station_and_key(rgw: Rgw) -> None:
    bucket = _bucket(rgw)
    target = _target(rgw, bucket)
    name = "checkpoint-000000000007.anchor"
    where = target.put_anchor(name, "anchor seven\n")
    key = f"anchors/bj-cy-02/0123456789abcdef/{name}"
    assert where.startswith(f"s3://{bucket}/{key}?versionId=")
    assert target.put_anchor(name, "anchor seven\n") == where
    with pytest.raises(ConfirmationMismatch, match=r"fork .* or a second station"):
        target.put_anchor(name, "another seven\n")
    s3 = rgw.client()
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"anchor seven\n"
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    assert len(versions) == 1


def test_each_target_error_is_one_line(rgw: Rgw, tmp_path: Path) -> None:
    bucket = _bucket(rgw)
    path, sha = _clip(tmp_path, 1000)
    refusals = [
        (_target(rgw, bucket, secret="wrong" * 8), "refused the station's access key"),
        (_target(rgw, f"absent-{uuid.uuid4().hex[:8]}"), "the bucket does not exist"),
        (_target(rgw, bucket, endpoint=f"http://127.0.0.1:{free_port()}"), "cannot be reached"),
    ]
    for target, words in refusals:
        with pytest.raises(TargetUnavailable) as caught:
            target.put(sha, path, {"sha256": sha})
        message = str(caught.value)
        assert words in message and "\n" not in message
        assert caught.value.__cause__ is None


def test_https_with_the_agencys_ca_works_with_the_target_settings(rgw: Rgw, tmp_path: Path) -> None:
    bucket = _bucket(rgw)
    assert rgw.tls_endpoint is not None
    target = _target(rgw, bucket, endpoint=rgw.tls_endpoint, ca_file=rgw.ca_file)
    for size, parts in ((2000, 1), (6 * MIB, 2)):
        path, sha = _clip(tmp_path, size, f"clip-{size}")
        done = target.put(sha, path, {"sha256": sha, LEGAL_HOLD: True})
        assert (done.parts_sent, done.sha256, done.legal_hold) == (parts, sha, True)
    assert target.put_anchor("checkpoint-000000000001.anchor", "one\n").startswith("s3://")
    # boto3's default (CRC32 trailers over HTTPS) is what RGW 16 refuses: say so, in one line.
    crc = _target(
        rgw, bucket, endpoint=rgw.tls_endpoint, ca_file=rgw.ca_file, checksums="when_supported"
    )
    path, sha = _clip(tmp_path, 3000, "crc")
    with pytest.raises(TargetUnavailable, match="411 MissingContentLength"):
        crc.put(sha, path, {"sha256": sha})


def test_a_stop_between_parts_is_resumable(rgw: Rgw, tmp_path: Path) -> None:
    bucket = _bucket(rgw)
    path, sha = _clip(tmp_path, 11 * MIB)
    stop = threading.Event()
    states: list[UploadState] = []

    def stop_after_first_part(sent: int, state: UploadState | None) -> None:
        if state is not None:
            states.append(state)
            if state.parts:
                stop.set()

    target = _target(rgw, bucket)
    with pytest.raises(UploadStopped, match=r"stopped with 1 of 3 parts of .* stored"):
        target.put(sha, path, {"sha256": sha}, progress=stop_after_first_part, stop=stop)
    assert target.head(sha) is None
    done = target.put(sha, path, {"sha256": sha}, state=states[-1])
    assert (done.parts_reused, done.parts_sent, done.sha256) == (1, 2, sha)
