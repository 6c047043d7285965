"""Anchors of many stations in one target: the folder target names them as the S3 target
does (``anchors/<station id>/<key hash>/checkpoint-<size>.anchor``), write-once, and both
read them back per station (S3: every version); a folder's older anchors named by size
alone are still read. What a target holds under a clip's name now (``held``,
``read_range``), for re-verification, against a real folder and a real Ceph RGW."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest
from services import Rgw

from uploader import (
    ConfirmationMismatch,
    DeliveryError,
    FolderTarget,
    S3Credentials,
    S3Settings,
    S3Target,
)

A = "anchors/bj-cy-01/00000000000000aa"
B = "anchors/bj-cy-02/00000000000000bb"
NAME = "checkpoint-000000000007.anchor"


class _Digest:
    def __init__(self, data: bytes) -> None:
        self.size = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()


def _hasher(path: Path) -> _Digest:
    return _Digest(path.read_bytes())


def _folder(tmp_path: Path) -> FolderTarget:
    return FolderTarget(tmp_path / "central", hasher=_hasher)


def test_two_stations_share_a_folder_without_colliding(tmp_path: Path) -> None:
    target = _folder(tmp_path)
    where_a = target.put_anchor(NAME, "station a\n", prefix=A)
    where_b = target.put_anchor(NAME, "station b\n", prefix=B)
    assert where_a == str(tmp_path / "central" / A / NAME)
    assert where_b == str(tmp_path / "central" / B / NAME)
    assert Path(where_a).stat().st_mode & 0o777 == 0o444
    # Write-once per station: the same text is a no-op, other text refused, not replaced.
    assert target.put_anchor(NAME, "station a\n", prefix=A) == where_a
    with pytest.raises(ConfirmationMismatch, match="write-once"):
        target.put_anchor(NAME, "a fork of a\n", prefix=A)
    assert Path(where_a).read_text() == "station a\n"

    held = target.anchors("bj-cy-01")
    assert [(h.name, h.text) for h in held] == [
        (f"bj-cy-01/00000000000000aa/{NAME}", "station a\n")
    ]
    assert {h.name.split("/")[0] for h in target.anchors()} == {"bj-cy-01", "bj-cy-02"}
    assert target.anchors("bj-cy-03") == []


def test_a_folders_older_anchors_named_by_size_alone_are_read_back(tmp_path: Path) -> None:
    target = _folder(tmp_path)
    older = target.put_anchor("checkpoint-000000000003.anchor", "before stations shared\n")
    assert older == str(tmp_path / "central" / "anchors" / "checkpoint-000000000003.anchor")
    target.put_anchor(NAME, "station a\n", prefix=A)
    names = [h.name for h in target.anchors("bj-cy-01")]
    assert sorted(names) == [f"bj-cy-01/00000000000000aa/{NAME}", "checkpoint-000000000003.anchor"]
    # A link in the anchor folder is not read as an anchor.
    (tmp_path / "central" / "anchors" / "checkpoint-000000000009.anchor").symlink_to(
        "/etc/hostname"
    )
    assert len(target.anchors("bj-cy-01")) == 2


@pytest.mark.parametrize(
    "prefix", ["anchors/../x", "anchors/a b/c", "anchors", "anchors/st/../../etc", "/abs/x"]
)
def test_a_prefix_that_leaves_the_anchor_folder_is_refused(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(DeliveryError, match="bad anchor prefix"):
        _folder(tmp_path).put_anchor(NAME, "x\n", prefix=prefix)
    with pytest.raises(DeliveryError, match="bad station id"):
        _folder(tmp_path).anchors("../other")
    assert not (tmp_path / "central" / "x").exists()


def test_a_folder_says_what_it_holds_now(tmp_path: Path) -> None:
    target = _folder(tmp_path)
    data = os.urandom(200_000)
    source = tmp_path / "clip"
    source.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    target.put(sha, source, {})
    held = target.held(sha)
    assert held is not None and (held.size, held.sha256) == (len(data), sha)
    assert (held.etag, held.version_id) == (None, None)
    assert target.read_range(sha, 1000, 64) == data[1000:1064]
    assert target.held("0" * 64) is None


# -- S3 ----------------------------------------------------------------------------------


def _s3(rgw: Rgw, bucket: str, prefix: str = A) -> S3Target:
    settings = S3Settings(endpoint=rgw.endpoint, bucket=bucket, part_size=5 * 1024 * 1024)
    keys = S3Credentials(rgw.access_key, rgw.secret_key)
    return S3Target(settings, keys, anchor_prefix=lambda: prefix)


def _bucket(rgw: Rgw, *, lock: bool = True) -> str:
    name = f"anc-{uuid.uuid4().hex[:16]}"
    rgw.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
    return name


def test_s3_anchors_of_two_stations_are_read_back_per_station(rgw: Rgw) -> None:
    bucket = _bucket(rgw)
    first, second = _s3(rgw, bucket, "anchors/zz/zz"), _s3(rgw, bucket, B)
    first.put_anchor(NAME, "station a\n", prefix=A)  # the prefix given wins
    second.put_anchor(NAME, "station b\n")
    first.put_anchor("checkpoint-000000000009.anchor", "station a nine\n", prefix=A)
    held = first.anchors("bj-cy-01")
    assert sorted((h.name, h.text) for h in held) == [
        (f"bj-cy-01/00000000000000aa/{NAME}", "station a\n"),
        ("bj-cy-01/00000000000000aa/checkpoint-000000000009.anchor", "station a nine\n"),
    ]
    assert all(h.location.startswith(f"s3://{bucket}/{A}/") and "versionId=" in h.location
               for h in held)  # fmt: skip
    assert {h.text for h in second.anchors()} == {"station a\n", "station b\n", "station a nine\n"}
    listed = rgw.client().list_objects_v2(Bucket=bucket, Prefix="anchors/zz/")
    assert listed.get("KeyCount", 0) == 0


def test_s3_a_second_text_under_an_anchors_name_is_read_back_too(rgw: Rgw) -> None:
    # Object Lock keeps a version, not a name: whoever may write the bucket can put a new
    # version over an anchor. Every version is read, so a verifier sees both texts.
    bucket = _bucket(rgw)
    target = _s3(rgw, bucket)
    target.put_anchor(NAME, "the first\n")
    rgw.client().put_object(Bucket=bucket, Key=f"{A}/{NAME}", Body=b"written over\n")
    assert sorted(h.text for h in target.anchors("bj-cy-01")) == ["the first\n", "written over\n"]


def test_s3_says_what_it_holds_now_per_version(rgw: Rgw, tmp_path: Path) -> None:
    bucket = _bucket(rgw)
    target = _s3(rgw, bucket)
    data = os.urandom(300_000)
    source = tmp_path / "clip"
    source.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    done = target.put(sha, source, {"sha256": sha})
    held = target.held(sha)
    assert held is not None and held.version_id == done.version_id and held.etag == done.etag
    assert (held.size, held.sha256) == (len(data), sha)
    assert target.read_range(sha, 5, 10, done.version_id) == data[5:15]
    # A new version over it: the current one is the new one; the confirmed one stays.
    s3 = rgw.client()
    s3.put_object(Bucket=bucket, Key=target.object_key(sha), Body=b"other")
    now = target.held(sha)
    assert now is not None and now.version_id != done.version_id and now.size == 5
    kept = target.held(sha, done.version_id)
    assert kept is not None and kept.size == len(data)
    assert target.held("0" * 64) is None
