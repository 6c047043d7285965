"""`evidock reverify --central`: every confirmed upload asked of central storage again, a
real central folder and a real Ceph RGW bucket (GOVERNANCE lock, so that the test may
delete a confirmed version as an administrator could). An intact set exits 0; an object
deleted or written over after its confirmation is one line each and exit 1; nothing is
written, and `evidock verify` still passes."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from services import Rgw
from services import rgw as rgw_service
from station_cli import leaf_count, run_cli


@pytest.fixture(scope="module")
def rgw() -> Iterator[Rgw]:
    if not rgw_service.installed():
        pytest.fail("Ceph RGW is not installed: sh scripts/services.sh", pytrace=False)
    gateway = Rgw()
    try:
        yield gateway.start()
    finally:
        gateway.stop()


def _recorder(root: Path, files: int) -> Path:
    folder = root / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    for n in range(files):
        (folder / f"V{n:04d}.MP4").write_bytes(os.urandom(150_000 + n))
    return root


def _uploaded(data: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(data / "station.db")
    try:
        rows = conn.execute(
            "SELECT data FROM ledger_leaves WHERE kind = 'clip.uploaded' ORDER BY idx"
        )
        return [json.loads(row[0])["body"] for row in rows]
    finally:
        conn.close()


def _reverify(config: Path, *extra: str, check: int) -> dict[str, Any]:
    proc = run_cli("reverify", "--config", config, "--central", "--json", *extra, check=check)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_reverify_finds_a_file_deleted_or_written_over_in_a_central_folder(
    tmp_path: Path,
) -> None:
    central = tmp_path / "central"
    config = tmp_path / "station.toml"
    config.write_text(
        f'[station]\nid = "rv-folder"\n[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[docking]\nmount_root = "{tmp_path}"\n[delivery]\ncentral_dir = "{central}"\n',
        "utf-8",
    )
    run_cli("ingest", _recorder(tmp_path / "rec", 3), "--config", config, check=0)
    run_cli("deliver", "--config", config, check=0)
    intact = run_cli("reverify", "--config", config, "--central", check=0)
    assert "3 confirmed upload(s) on folder re-verified: 3 intact" in intact.stdout
    assert "3 re-read" in intact.stdout

    first, second, _ = _uploaded(tmp_path / "d")
    before = leaf_count(tmp_path / "d")
    Path(first["location"]).unlink()
    over = Path(second["location"])
    over.chmod(0o644)
    over.write_bytes(b"not the clip")
    found = run_cli("reverify", "--config", config, "--central", check=1)
    lines = [line for line in found.stdout.splitlines() if line.startswith("clip ")]
    assert lines == [
        f"clip {first['clip_id']}: deleted: {first['location']} is gone: nothing is held "
        "under its name",
        f"clip {second['clip_id']}: overwritten: {second['location']} now holds 12 bytes, not "
        f"{second['confirmed_size']}; sha256 {_sha(b'not the clip')}, not {second['sha256']}",
    ]
    result = _reverify(config, check=1)
    assert [p["problem"] for p in result["problems"]] == ["deleted", "overwritten"]
    assert (result["checked"], result["intact"], result["sampled"]) == (3, 1, 1)
    assert leaf_count(tmp_path / "d") == before  # it writes nothing
    run_cli("verify", "--config", config, check=0)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_reverify_finds_a_version_deleted_or_written_over_in_a_bucket(
    rgw: Rgw, tmp_path: Path
) -> None:
    bucket = f"rv-{uuid.uuid4().hex[:16]}"
    s3 = rgw.client()
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    keys = tmp_path / "s3-key"
    keys.write_text(
        f"[default]\naws_access_key_id = {rgw.access_key}\n"
        f"aws_secret_access_key = {rgw.secret_key}\n",
        "utf-8",
    )
    keys.chmod(0o600)
    config = tmp_path / "station.toml"
    config.write_text(
        f'[station]\nid = "rv-s3"\n[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[docking]\nmount_root = "{tmp_path}"\n'
        f'[delivery]\ntarget = "s3"\ncentral_dir = "{tmp_path / "central"}"\n'
        f's3_endpoint = "{rgw.endpoint}"\ns3_bucket = "{bucket}"\n'
        f's3_credentials = "{keys}"\nlock_mode = "GOVERNANCE"\nlock_days = 1\n',
        "utf-8",
    )
    run_cli("ingest", _recorder(tmp_path / "rec", 4), "--config", config, check=0)
    run_cli("deliver", "--config", config, check=0)
    result = _reverify(config, check=0)
    assert (result["target"], result["checked"], result["intact"]) == ("s3", 4, 4)
    assert result["sampled"] == 4 and result["problems"] == []
    assert _reverify(config, "--sample", "1", check=0)["sampled"] == 1
    assert _reverify(config, "--sample", "0", check=0)["sampled"] == 0

    gone, over, marked, _ = _uploaded(tmp_path / "d")
    before = leaf_count(tmp_path / "d")
    key = f"clips/{gone['sha256'][:2]}/{gone['sha256']}"
    # An administrator may remove a GOVERNANCE-locked version; COMPLIANCE would refuse.
    s3.delete_object(
        Bucket=bucket, Key=key, VersionId=gone["version_id"], BypassGovernanceRetention=True
    )
    key = f"clips/{over['sha256'][:2]}/{over['sha256']}"
    newer = s3.put_object(Bucket=bucket, Key=key, Body=b"written over")["VersionId"]
    key = f"clips/{marked['sha256'][:2]}/{marked['sha256']}"
    s3.delete_object(Bucket=bucket, Key=key)  # a delete marker: the version stays, hidden

    found = run_cli("reverify", "--config", config, "--central", check=1)
    lines = [line for line in found.stdout.splitlines() if line.startswith("clip ")]
    assert len(lines) == 3, found.stdout
    assert lines[0].startswith(f"clip {gone['clip_id']}: deleted: ")
    assert f"clip {over['clip_id']}: overwritten: " in lines[1]
    assert f"versionId={newer} (12 bytes" in lines[1] and over["version_id"] in lines[1]
    assert lines[2] == (
        f"clip {marked['clip_id']}: deleted: {marked['location']}: the name now reads as "
        "deleted (a delete marker)"
    )
    result = _reverify(config, check=1)
    assert [p["problem"] for p in result["problems"]] == ["deleted", "overwritten", "deleted"]
    assert (result["checked"], result["intact"], result["sampled"]) == (4, 1, 1)
    assert leaf_count(tmp_path / "d") == before
    run_cli("verify", "--config", config, check=0)
