"""A station delivering to a real Ceph RGW through the `evidock` commands: ingest, deliver
and verify with an S3 config; a gateway killed halfway through a clip's multipart upload
and the next pass sending only the missing parts; wrong or unreadable credentials and a
bucket without Object Lock each one clear line, with every job kept."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from services import Rgw
from station_cli import run_cli

from agent.delivery import deliver_due, delivery_target
from agent.station import Station
from config import load_config
from config.common import iso_utc
from uploader import (
    Confirmation,
    HeldAnchor,
    PutProgress,
    S3Confirmation,
    S3Target,
    Target,
    UploadState,
)
from uploader.target import HeldObject

MIB = 1024 * 1024
BIG = 17 * MIB  # four parts of 5 MiB (the last 2 MiB)


def _bucket(rgw: Rgw, *, lock: bool = True) -> str:
    name = f"dlv-{uuid.uuid4().hex[:16]}"
    rgw.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
    return name


def _station(tmp_path: Path, rgw: Rgw, bucket: str, *, secret: str | None = None) -> Path:
    keys = tmp_path / "s3-key"
    keys.write_text(
        "[default]\n"
        f"aws_access_key_id = {rgw.access_key}\n"
        f"aws_secret_access_key = {secret or rgw.secret_key}\n",
        "utf-8",
    )
    keys.chmod(0o600)
    config = tmp_path / "station.toml"
    config.write_text(
        '[station]\nid = "bj-cy-02"\n'
        f'[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[docking]\nmount_root = "{tmp_path / "mount"}"\n'
        '[delivery]\ntarget = "s3"\nmax_attempts = 3\n'
        f'central_dir = "{tmp_path / "central"}"\n'
        f's3_endpoint = "{rgw.endpoint}"\ns3_bucket = "{bucket}"\n'
        f's3_credentials = "{keys}"\ns3_part_size_mib = 5\nlock_days = 1\n',
        "utf-8",
    )
    return config


def _recorder(root: Path, sizes: list[int]) -> Path:
    folder = root / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    for n, size in enumerate(sizes):
        (folder / f"V{n:04d}.MP4").write_bytes(os.urandom(size))
    return root


def _uploaded(data: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(data / "station.db")
    try:
        rows = conn.execute("SELECT data FROM ledger_leaves WHERE kind = 'clip.uploaded'")
        return [json.loads(row[0])["body"] for row in rows]
    finally:
        conn.close()


def _jobs(data: Path) -> list[tuple[str, int, str | None]]:
    conn = sqlite3.connect(data / "station.db")
    try:
        rows = conn.execute("SELECT state, attempts, last_error FROM upload_jobs ORDER BY id")
        return [(str(s), int(a), e) for s, a, e in rows]
    finally:
        conn.close()


def _make_due_again(data: Path) -> None:
    conn = sqlite3.connect(data / "station.db")
    try:
        conn.execute("UPDATE upload_jobs SET next_attempt_at = '2000-01-01T00:00:00+00:00'")
        conn.commit()
    finally:
        conn.close()


def test_ingest_deliver_verify_with_an_s3_target(rgw: Rgw, tmp_path: Path) -> None:
    bucket = _bucket(rgw)
    config = _station(tmp_path, rgw, bucket)
    source = _recorder(tmp_path / "rec", [12 * MIB, 4000, 70_000])
    run_cli("ingest", source, "--config", config, "--officer", "张三", check=0)
    proc = run_cli("deliver", "--config", config, check=0)
    assert "delivered 3, failed 0" in proc.stdout

    s3 = rgw.client()
    uploaded = _uploaded(tmp_path / "d")
    assert len(uploaded) == 3
    for body in uploaded:
        sha = body["sha256"]
        key = f"clips/{sha[:2]}/{sha}"
        assert body["target"] == "s3" and body["confirmed_sha256"] == sha
        assert body["location"] == f"s3://{bucket}/{key}?versionId={body['version_id']}"
        head = s3.head_object(Bucket=bucket, Key=key, VersionId=body["version_id"])
        assert head["ETag"] == body["etag"]
        assert head["ObjectLockMode"] == body["lock_mode"] == "COMPLIANCE"
        assert head["Metadata"]["station"] == "bj-cy-02"
        assert head["Metadata"]["collector"] == "%E5%BC%A0%E4%B8%89"
        stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(stored).hexdigest() == sha
    assert any(body["etag"].endswith('-3"') for body in uploaded), "the 12 MiB clip in 3 parts"

    # The anchors went to the bucket, under the station's id and its key's hash.
    run_cli("verify", "--data-dir", tmp_path / "d", check=0)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="anchors/").get("Contents", [])
    names = [item["Key"].split("/") for item in listed]
    assert names and {(n[0], n[1], len(n[2])) for n in names} == {("anchors", "bj-cy-02", 16)}
    # A second pass has nothing to do, and sends nothing.
    again = run_cli("deliver", "--config", config, check=0)
    assert "delivered 0, failed 0" in again.stdout
    assert len(_uploaded(tmp_path / "d")) == 3


class _Killing:
    """The station's own S3 target, with the gateway killed after ``parts`` parts."""

    def __init__(self, inner: Target, rgw: Rgw, parts: int) -> None:
        assert isinstance(inner, S3Target)
        self.inner, self.name, self.rgw, self.parts = inner, inner.name, rgw, parts
        self.confirmations: list[S3Confirmation] = []

    def head(self, sha256: str) -> Confirmation | None:
        return self.inner.head(sha256)

    def put_anchor(self, name: str, text: str, *, prefix: str | None = None) -> str:
        return self.inner.put_anchor(name, text, prefix=prefix)

    def anchors(self, station_id: str | None = None) -> list[HeldAnchor]:
        return self.inner.anchors(station_id)

    def held(self, sha256: str, version_id: str | None = None) -> HeldObject | None:
        return self.inner.held(sha256, version_id)

    def read_range(
        self, sha256: str, offset: int, length: int, version_id: str | None = None
    ) -> bytes:
        return self.inner.read_range(sha256, offset, length, version_id)

    def put(
        self,
        sha256: str,
        source: Path,
        meta: Mapping[str, Any],
        *,
        state: UploadState | None = None,
        progress: PutProgress | None = None,
        stop: threading.Event | None = None,
    ) -> Confirmation:
        def hook(sent: int, saved: UploadState | None) -> None:
            if progress is not None:
                progress(sent, saved)
            if saved is not None and len(saved.parts) == self.parts:
                self.rgw.kill_rgw()

        done = self.inner.put(sha256, source, meta, state=state, progress=hook, stop=stop)
        self.confirmations.append(done)
        return done


def test_a_gateway_killed_halfway_costs_only_the_missing_parts(rgw: Rgw, tmp_path: Path) -> None:
    bucket = _bucket(rgw)
    config = _station(tmp_path, rgw, bucket)
    run_cli("ingest", _recorder(tmp_path / "rec", [BIG]), "--config", config, check=0)
    station = Station.open(load_config(config), config_file=config)
    try:
        killing = _Killing(delivery_target(station), rgw, parts=2)
        try:
            report = deliver_due(station, station.conn, killing)
        finally:
            rgw.start_rgw()
        assert (report.delivered, report.failed) == (0, 1)
        ((state, attempts, error),) = _jobs(tmp_path / "d")
        assert (state, attempts) == ("queued", 1) and error and "cannot be reached" in error
        saved = station.conn.execute("SELECT upload_id, parts FROM upload_jobs").fetchone()
        assert saved[0] and [p["number"] for p in json.loads(saved[1])] == [1, 2]

        _make_due_again(tmp_path / "d")
        counting = _Killing(delivery_target(station), rgw, parts=-1)
        report = deliver_due(station, station.conn, counting)
        assert report.delivered == 1
        (done,) = counting.confirmations
        assert (done.parts_reused, done.parts_sent) == (2, 2)
    finally:
        station.close()

    (body,) = _uploaded(tmp_path / "d")
    s3 = rgw.client()
    versions = s3.list_object_versions(Bucket=bucket, Prefix="clips/").get("Versions", [])
    assert [v["VersionId"] for v in versions] == [body["version_id"]]
    stored = s3.get_object(Bucket=bucket, Key=versions[0]["Key"])["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == body["sha256"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # The command signs what the passes above appended; the ledger verifies.
    run_cli("deliver", "--config", config, check=0)
    run_cli("verify", "--data-dir", tmp_path / "d", check=0)


@pytest.mark.parametrize("problem", ["wrong key", "no object lock"])
def test_a_refusing_bucket_keeps_every_job_and_says_why(
    rgw: Rgw, tmp_path: Path, problem: str
) -> None:
    bucket = _bucket(rgw, lock=problem != "no object lock")
    secret = "not-the-secret-key" if problem == "wrong key" else None
    config = _station(tmp_path, rgw, bucket, secret=secret)
    run_cli("ingest", _recorder(tmp_path / "rec", [3000, 6 * MIB]), "--config", config)
    proc = run_cli("deliver", "--config", config)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "delivered 0, failed 2 (will be retried)" in proc.stdout
    words = {"wrong key": "refused the station's access key", "no object lock": "no Object Lock"}
    assert words[problem] in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert [(s, a) for s, a, _ in _jobs(tmp_path / "d")] == [("queued", 1)] * 2
    assert all(words[problem] in (e or "") for _, _, e in _jobs(tmp_path / "d"))
    assert _uploaded(tmp_path / "d") == []
    s3 = rgw.client()
    assert s3.list_objects_v2(Bucket=bucket, Prefix="clips/").get("Contents", []) == []
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_an_unreadable_key_file_stops_the_command_with_one_line(rgw: Rgw, tmp_path: Path) -> None:
    config = _station(tmp_path, rgw, _bucket(rgw))
    run_cli("ingest", _recorder(tmp_path / "rec", [3000]), "--config", config, check=0)
    (tmp_path / "s3-key").chmod(0o644)
    proc = run_cli("deliver", "--config", config)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "may be read by others (mode 0644); run chmod 600" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert rgw.secret_key not in proc.stderr


def test_retention_and_legal_hold_follow_the_clips_cases(rgw: Rgw, tmp_path: Path) -> None:
    bucket = _bucket(rgw)
    config = _station(tmp_path, rgw, bucket)
    number = "朝执罚〔2026〕12号"
    run_cli("ingest", _recorder(tmp_path / "rec1", [5000]), "--config", config, check=0)
    run_cli(
        "case", "create", "--config", config, "--case", number, "--subject", "张三",
        "--category", "行政处罚", "--unit", "朝阳", "--sensitivity", "secret", check=0,
    )  # fmt: skip
    rec2 = _recorder(tmp_path / "rec2", [6000])
    run_cli("ingest", rec2, "--config", config, "--case", number, check=0)
    run_cli("deliver", "--config", config, check=0)

    s3 = rgw.client()
    now = datetime.now(UTC)
    seen: dict[str, dict[str, Any]] = {}
    for body in _uploaded(tmp_path / "d"):
        sha = body["sha256"]
        head = s3.head_object(Bucket=bucket, Key=f"clips/{sha[:2]}/{sha}")
        cases = head["Metadata"].get("case-numbers", "")
        seen["linked" if cases else "unlinked"] = {"head": head, "body": body, "cases": cases}
    linked, unlinked = seen["linked"], seen["unlinked"]
    # A secret case's clip: held, and locked lock_days (1) while its case is open.
    assert unquote(linked["cases"]) == number
    assert linked["head"]["ObjectLockLegalHoldStatus"] == "ON"
    assert linked["body"]["legal_hold"] is True
    assert linked["head"]["ObjectLockRetainUntilDate"] < now + timedelta(days=2)
    # An unlinked clip: no hold, locked until its keep-until ([retention] unlinked, 90 days).
    assert unlinked["head"].get("ObjectLockLegalHoldStatus", "OFF") == "OFF"
    assert unlinked["head"]["ObjectLockRetainUntilDate"] > now + timedelta(days=89)
    assert unlinked["body"]["lock_until"].startswith(
        iso_utc(unlinked["head"]["ObjectLockRetainUntilDate"])[:19]
    )
    run_cli("verify", "--data-dir", tmp_path / "d", check=0)
