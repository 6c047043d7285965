"""Ground truth for the S3 target: what boto3 and this Ceph RGW (Debian 16.2) really do.

Object Lock, Content-MD5, multipart across a gateway crash, retention and legal hold, and
boto3's default flexible checksums, each asserted against the real server, so that the
S3 code built on these facts fails here first if a package update changes one of them.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from services import Rgw

PART = 5 << 20  # RGW's smallest part but the last (rgw_multipart_min_part_size)
# What the S3 target must set: HTTPS uploads fail with boto3's default (see below).
S3_CONFIG: dict[str, Any] = {"request_checksum_calculation": "when_required"}


def _bucket(client: Any, *, lock: bool) -> str:
    name = f"t-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
    return name


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _error(call: Callable[[], object]) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _until(days: int = 1) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


def test_a_bucket_made_with_object_lock_reports_it_and_is_versioned(rgw: Rgw) -> None:
    s3 = rgw.client()
    bucket = _bucket(s3, lock=True)
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_a_bucket_without_object_lock_says_so_and_refuses_retention(rgw: Rgw) -> None:
    s3 = rgw.client()
    bucket = _bucket(s3, lock=False)
    assert _error(lambda: s3.get_object_lock_configuration(Bucket=bucket)) == (
        "ObjectLockConfigurationNotFoundError",
        404,
    )
    refused = _error(
        lambda: s3.put_object(
            Bucket=bucket,
            Key="k",
            Body=b"x",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=_until(),
        )
    )
    assert refused == ("InvalidRequest", 400)


def test_put_keeps_metadata_and_a_wrong_content_md5_is_refused(rgw: Rgw) -> None:
    s3 = rgw.client(**S3_CONFIG)
    bucket = _bucket(s3, lock=True)
    body = bytes(range(256)) * 512
    sha = hashlib.sha256(body).hexdigest()
    meta = {"sha256": sha, "case-number": "A-2026-17", "station": "st-01"}
    put = s3.put_object(Bucket=bucket, Key="clip", Body=body, ContentMD5=_md5(body), Metadata=meta)
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert put["VersionId"]
    head = s3.head_object(Bucket=bucket, Key="clip")
    assert head["Metadata"] == meta
    assert head["ContentLength"] == len(body)
    ranged = s3.get_object(Bucket=bucket, Key="clip", Range="bytes=1000-1999")["Body"].read()
    assert ranged == body[1000:2000]

    wrong = _md5(body + b"!")
    assert _error(lambda: s3.put_object(Bucket=bucket, Key="bad", Body=body, ContentMD5=wrong)) == (
        "BadDigest",
        400,
    )
    assert _error(lambda: s3.head_object(Bucket=bucket, Key="bad")) == ("404", 404)

    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts")["UploadId"]
    bad_part = _error(
        lambda: s3.upload_part(
            Bucket=bucket,
            Key="parts",
            UploadId=upload,
            PartNumber=1,
            Body=body,
            ContentMD5=wrong,
        )
    )
    assert bad_part == ("BadDigest", 400)
    assert s3.list_parts(Bucket=bucket, Key="parts", UploadId=upload).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload)


def _half_sent_part(s3: Any, bucket: str, key: str, upload: str, number: int, body: bytes) -> Any:
    """Start sending a part and stop halfway: the gateway is then mid-request."""
    url = urlsplit(
        s3.generate_presigned_url(
            "upload_part",
            Params={"Bucket": bucket, "Key": key, "UploadId": upload, "PartNumber": number},
        )
    )
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    conn.putrequest("PUT", f"{url.path}?{url.query}")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    conn.send(body[: len(body) // 2])
    return conn


def test_multipart_upload_survives_a_gateway_crash_mid_part(rgw: Rgw) -> None:
    s3 = rgw.client(**S3_CONFIG)
    bucket = _bucket(s3, lock=True)
    parts = [bytes([n]) * PART for n in (1, 2)] + [b"tail of the clip"]
    whole = b"".join(parts)
    upload = s3.create_multipart_upload(
        Bucket=bucket,
        Key="clip",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=_until(),
        ObjectLockLegalHoldStatus="ON",
        Metadata={"sha256": hashlib.sha256(whole).hexdigest()},
    )["UploadId"]
    first = s3.upload_part(
        Bucket=bucket,
        Key="clip",
        UploadId=upload,
        PartNumber=1,
        Body=parts[0],
        ContentMD5=_md5(parts[0]),
    )
    in_flight = _half_sent_part(s3, bucket, "clip", upload, 2, parts[1])
    try:
        rgw.kill_rgw()
    finally:
        in_flight.close()
        rgw.start_rgw()

    listed = s3.list_parts(Bucket=bucket, Key="clip", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed] == [
        (1, PART, first["ETag"])
    ], "only the part finished before the crash is kept; the half-sent one is gone"

    etags = {1: first["ETag"]}
    for number in (2, 3):
        body = parts[number - 1]
        sent = s3.upload_part(
            Bucket=bucket,
            Key="clip",
            UploadId=upload,
            PartNumber=number,
            Body=body,
            ContentMD5=_md5(body),
        )
        etags[number] = sent["ETag"]
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="clip",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in etags.items()]},
    )
    # RGW 16 answers CompleteMultipartUpload with an empty ETag: HEAD for the real one.
    assert done["ETag"] == ""
    assert done["VersionId"]

    head = s3.head_object(Bucket=bucket, Key="clip")
    assert head["ContentLength"] == len(whole)
    assert head["ETag"].endswith('-3"')
    # RGW 16 ignores the Object Lock headers of CreateMultipartUpload: lock it afterwards.
    assert "ObjectLockMode" not in head
    assert "ObjectLockLegalHoldStatus" not in head
    assert head["Metadata"]["sha256"] == hashlib.sha256(whole).hexdigest()
    stored = s3.get_object(Bucket=bucket, Key="clip")["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(whole).digest()
    versions = s3.list_object_versions(Bucket=bucket, Prefix="clip").get("Versions", [])
    assert [(v["Key"], v["VersionId"]) for v in versions] == [("clip", done["VersionId"])]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    version = done["VersionId"]
    retention = {"Mode": "COMPLIANCE", "RetainUntilDate": _until()}
    s3.put_object_retention(Bucket=bucket, Key="clip", VersionId=version, Retention=retention)
    assert _error(lambda: s3.delete_object(Bucket=bucket, Key="clip", VersionId=version)) == (
        "AccessDenied",
        403,
    )


def test_compliance_retention_forbids_deleting_or_shortening(rgw: Rgw) -> None:
    s3 = rgw.client(**S3_CONFIG)
    bucket = _bucket(s3, lock=True)
    until = _until()
    put = s3.put_object(
        Bucket=bucket,
        Key="anchor",
        Body=b"checkpoint",
        ContentMD5=_md5(b"checkpoint"),
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=until,
    )
    version = put["VersionId"]
    head = s3.head_object(Bucket=bucket, Key="anchor", VersionId=version)
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", until)

    def delete(**bypass: bool) -> object:
        return s3.delete_object(Bucket=bucket, Key="anchor", VersionId=version, **bypass)

    assert _error(delete) == ("AccessDenied", 403)
    assert _error(lambda: delete(BypassGovernanceRetention=True)) == ("AccessDenied", 403)
    shorter = {"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(hours=1)}
    assert _error(
        lambda: s3.put_object_retention(
            Bucket=bucket, Key="anchor", VersionId=version, Retention=shorter
        )
    ) == ("AccessDenied", 403)
    # A delete without a version id only hides the object behind a delete marker.
    assert s3.delete_object(Bucket=bucket, Key="anchor")["DeleteMarker"] is True
    kept = s3.get_object(Bucket=bucket, Key="anchor", VersionId=version)["Body"].read()
    assert kept == b"checkpoint"


def test_legal_hold_forbids_deleting_until_released(rgw: Rgw) -> None:
    s3 = rgw.client(**S3_CONFIG)
    bucket = _bucket(s3, lock=True)
    put = s3.put_object(
        Bucket=bucket,
        Key="clip",
        Body=b"held",
        ContentMD5=_md5(b"held"),
        ObjectLockLegalHoldStatus="ON",
    )
    version = put["VersionId"]
    hold = s3.get_object_legal_hold(Bucket=bucket, Key="clip", VersionId=version)
    assert hold["LegalHold"]["Status"] == "ON"

    def delete() -> object:
        return s3.delete_object(Bucket=bucket, Key="clip", VersionId=version)

    assert _error(delete) == ("AccessDenied", 403)
    s3.put_object_legal_hold(
        Bucket=bucket, Key="clip", VersionId=version, LegalHold={"Status": "OFF"}
    )
    delete()
    assert _error(lambda: s3.head_object(Bucket=bucket, Key="clip", VersionId=version))[1] == 404


def test_default_flexible_checksums_break_https_uploads_and_are_not_checked(rgw: Rgw) -> None:
    body = b"evidence" * 4096
    # boto3 >= 1.36 computes CRC32 for every upload by default ("when_supported").
    default = rgw.client(tls=True)
    assert default.meta.config.request_checksum_calculation == "when_supported"
    bucket = _bucket(default, lock=False)
    # Over HTTPS it streams the body aws-chunked with a checksum trailer: RGW 16 refuses.
    assert _error(lambda: default.put_object(Bucket=bucket, Key="a", Body=body)) == (
        "MissingContentLength",
        411,
    )
    upload = default.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    assert _error(
        lambda: default.upload_part(
            Bucket=bucket, Key="m", UploadId=upload, PartNumber=1, Body=body
        )
    ) == ("MissingContentLength", 411)
    default.abort_multipart_upload(Bucket=bucket, Key="m", UploadId=upload)

    # Over plain HTTP the CRC32 goes in a header, which RGW 16 neither checks nor keeps.
    plain = rgw.client()
    plain.put_object(Bucket=bucket, Key="wrong-crc", Body=body, ChecksumCRC32="AAAAAA==")
    head = plain.head_object(Bucket=bucket, Key="wrong-crc", ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in head
    assert plain.get_object(Bucket=bucket, Key="wrong-crc")["Body"].read() == body

    # The setting the S3 target needs: checksums only where an operation requires one,
    # integrity from Content-MD5 (checked: BadDigest) and our own SHA-256 metadata.
    fixed = rgw.client(tls=True, **S3_CONFIG)
    fixed.put_object(Bucket=bucket, Key="a", Body=io.BytesIO(body), ContentMD5=_md5(body))
    assert fixed.get_object(Bucket=bucket, Key="a")["Body"].read() == body
    deleted = fixed.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}]})
    assert [d["Key"] for d in deleted["Deleted"]] == ["a"]


def test_lock_and_hold_calls_work_over_https_with_the_target_setting(rgw: Rgw) -> None:
    s3 = rgw.client(tls=True, **S3_CONFIG)
    bucket = _bucket(s3, lock=True)
    s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"x", ContentMD5=_md5(b"x"))
    version = put["VersionId"]
    assert s3.head_object(Bucket=bucket, Key="k")["ObjectLockMode"] == "GOVERNANCE"
    s3.put_object_retention(
        Bucket=bucket,
        Key="k",
        VersionId=version,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": _until(2)},
        BypassGovernanceRetention=True,
    )
    s3.put_object_legal_hold(Bucket=bucket, Key="k", VersionId=version, LegalHold={"Status": "ON"})
    head = s3.head_object(Bucket=bucket, Key="k", VersionId=version)
    assert (head["ObjectLockMode"], head["ObjectLockLegalHoldStatus"]) == ("COMPLIANCE", "ON")
