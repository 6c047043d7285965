"""After `evidock ingest`, tampering with the store or the ledger makes `evidock verify`
exit 1 and name what was touched (the deeper attack suite lives in tests/ledger)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from station_cli import ingest_json, run_cli


@pytest.fixture
def station(recorder: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    data = tmp_path / "data"
    result = ingest_json(recorder, data)
    run_cli("verify", "--data-dir", data, check=0)
    return data, result


def _stored(data: Path, sha256: str) -> Path:
    return data / "store" / "objects" / sha256[:2] / sha256[2:4] / sha256


def _biggest(result: dict[str, Any]) -> dict[str, Any]:
    return max(result["clips"], key=lambda c: c["size"])


def test_one_changed_byte_in_a_stored_clip_is_named(station: tuple[Path, dict[str, Any]]) -> None:
    data, result = station
    clip = _biggest(result)
    path = _stored(data, clip["sha256"])
    os.chmod(path, 0o644)
    with path.open("r+b") as handle:
        handle.seek(clip["size"] // 2)
        byte = handle.read(1)
        handle.seek(clip["size"] // 2)
        handle.write(bytes([byte[0] ^ 0x01]))
    proc = run_cli("verify", "--data-dir", data, check=1)
    assert clip["sha256"] in proc.stdout or clip["clip_id"] in proc.stdout
    assert "modified" in proc.stdout.lower()


def test_a_deleted_stored_clip_is_named(station: tuple[Path, dict[str, Any]]) -> None:
    data, result = station
    clip = result["clips"][0]
    _stored(data, clip["sha256"]).unlink()
    proc = run_cli("verify", "--data-dir", data, check=1)
    assert "missing" in proc.stdout.lower()
    assert clip["sha256"] in proc.stdout or clip["clip_id"] in proc.stdout


def _tamper(data: Path, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(data / "station.db")
    conn.execute("DROP TRIGGER IF EXISTS ledger_leaves_no_update")
    conn.execute("DROP TRIGGER IF EXISTS ledger_leaves_no_delete")
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def test_an_edited_ledger_row_is_named(station: tuple[Path, dict[str, Any]]) -> None:
    data, result = station
    clip = result["clips"][1]
    conn = sqlite3.connect(data / "station.db")
    idx, blob = conn.execute(
        "SELECT idx, data FROM ledger_leaves WHERE kind = 'clip.ingested' AND clip_id = ?",
        (clip["clip_id"],),
    ).fetchone()
    conn.close()
    forged = bytes(blob).replace(clip["sha256"].encode(), b"0" * 64)
    _tamper(data, "UPDATE ledger_leaves SET data = ? WHERE idx = ?", forged, idx)
    proc = run_cli("verify", "--data-dir", data, check=1)
    assert f"leaf {idx}" in proc.stdout.lower() or f"index {idx}" in proc.stdout.lower()


def test_a_deleted_ledger_row_is_named(station: tuple[Path, dict[str, Any]]) -> None:
    data, _result = station
    _tamper(data, "DELETE FROM ledger_leaves WHERE idx = 2")
    proc = run_cli("verify", "--data-dir", data, check=1)
    assert "2" in proc.stdout and ("missing" in proc.stdout.lower() or "gap" in proc.stdout.lower())


def test_a_copy_on_read_only_media_verifies(
    station: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    import shutil
    import subprocess

    data, _result = station
    media = tmp_path / "dvd"
    media.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(media)], check=True)
    try:
        shutil.copytree(data, media / "copy")
        subprocess.run(["mount", "-o", "remount,ro", str(media)], check=True)
        proc = run_cli("verify", "--data-dir", media / "copy", check=0)
        assert "OK" in proc.stdout
    finally:
        subprocess.run(["umount", str(media)], check=True)


def test_key_rotation_is_a_leaf_and_both_keys_verify(
    station: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    import shutil

    data, _result = station
    old_pub = tmp_path / "old.pub.pem"
    shutil.copyfile(data / "keys" / "station.pub.pem", old_pub)
    proc = run_cli("rotate-key", "--data-dir", data, check=0)
    assert "retired key" in proc.stdout and "new key" in proc.stdout
    assert (data / "keys" / "station.pub.pem").read_bytes() != old_pub.read_bytes()
    conn = sqlite3.connect(data / "station.db")
    kinds = [r[0] for r in conn.execute("SELECT kind FROM ledger_leaves ORDER BY idx")]
    conn.close()
    assert kinds[-1] == "key.rotated"
    anchors = data / "anchors"
    run_cli("verify", "--data-dir", data, "--anchor", anchors, check=0)
    run_cli("verify", "--data-dir", data, "--pubkey", old_pub, "--anchor", anchors, check=0)
    # Something signed later is trusted through the rotation, from either key.
    recorder = tmp_path / "mount" / "REC0001"
    ingest_json(recorder, data, check=0)
    run_cli("verify", "--data-dir", data, "--pubkey", old_pub, "--anchor", anchors, check=0)


def test_fetch_logs_the_access_first_and_hands_out_only_intact_clips(
    station: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    data, result = station
    clip = _biggest(result)
    out = tmp_path / "out.mp4"
    run_cli(
        "fetch",
        clip["clip_id"],
        "--data-dir",
        data,
        "--out",
        out,
        "--who",
        "auditor-7",
        "--purpose",
        "hearing 2026-12-01",
        check=0,
    )
    assert out.read_bytes() == _stored(data, clip["sha256"]).read_bytes()
    conn = sqlite3.connect(data / "station.db")
    kind, blob = conn.execute(
        "SELECT kind, data FROM ledger_leaves ORDER BY idx DESC LIMIT 1"
    ).fetchone()
    conn.close()
    assert kind == "clip.accessed" and b"auditor-7" in bytes(blob) and b"download" in bytes(blob)
    proc = run_cli(
        "fetch",
        clip["clip_id"],
        "--data-dir",
        data,
        "--out",
        out,
        "--who",
        "x",
        "--purpose",
        "y",
        check=2,
    )
    assert "exists" in proc.stderr
    proc = run_cli(
        "fetch",
        clip["clip_id"],
        "--data-dir",
        data,
        "--out",
        tmp_path / "o2",
        "--who",
        " ",
        "--purpose",
        "y",
        check=2,
    )
    assert "--who" in proc.stderr
    path = _stored(data, clip["sha256"])
    os.chmod(path, 0o644)
    with path.open("r+b") as handle:
        handle.write(b"X")
    proc = run_cli(
        "fetch",
        clip["clip_id"],
        "--data-dir",
        data,
        "--out",
        tmp_path / "o3",
        "--who",
        "a",
        "--purpose",
        "b",
        check=1,
    )
    assert "does not match" in proc.stderr and not (tmp_path / "o3").exists()
    run_cli("verify", "--data-dir", data, check=1)
