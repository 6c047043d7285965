"""Delivery failures are visible: the whole due queue is worked in batches, what is left is
reported and sets the exit status, and a failing job is logged once per change of state."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from station_cli import run_cli

from agent.delivery import deliver_due, delivery_target
from agent.station import Station
from config import load_config
from hashing import EvidenceStore


def _config(tmp_path: Path, max_attempts: int = 3) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(
        '[station]\nid = "bj-cy-02"\n'
        f'[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[docking]\nmount_root = "{tmp_path / "mount"}"\nsettle_seconds = 0.2\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n'
        f'anchor_dir = "{tmp_path / "anchors"}"\nmax_attempts = {max_attempts}\n',
        "utf-8",
    )
    (tmp_path / "mount").mkdir(exist_ok=True)
    return path


def _recorder(root: Path, clips: int) -> Path:
    folder = root / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    for n in range(clips):
        (folder / f"V{n:04d}.MP4").write_bytes(f"clip {n} ".encode() * 40)
    return root


def _states(data: Path) -> dict[str, int]:
    conn = sqlite3.connect(data / "station.db")
    try:
        return dict(conn.execute("SELECT state, count(*) FROM upload_jobs GROUP BY state"))
    finally:
        conn.close()


def _make_due_again(data: Path) -> None:
    conn = sqlite3.connect(data / "station.db")
    try:
        conn.execute("UPDATE upload_jobs SET next_attempt_at = '2000-01-01T00:00:00+00:00'")
        conn.commit()
    finally:
        conn.close()


def test_deliver_works_the_whole_queue_past_one_batch(tmp_path: Path) -> None:
    config = _config(tmp_path)
    clips = 160  # more than one page of jobs (deliver once read the queue 100 at a time)
    run_cli("ingest", _recorder(tmp_path / "rec", clips), "--config", config, check=0)
    proc = run_cli("deliver", "--config", config, check=0)
    assert f"delivered {clips}, failed 0" in proc.stdout
    assert "0 waiting to be retried, 0 parked" in proc.stdout
    assert _states(tmp_path / "d") == {"done": clips}
    run_cli("verify", "--data-dir", tmp_path / "d", check=0)


def test_failing_delivery_exits_1_and_says_why(tmp_path: Path) -> None:
    config = _config(tmp_path)
    run_cli("ingest", _recorder(tmp_path / "rec", 3), "--config", config, check=0)
    # Central storage is there but cannot take objects (a file where its folder belongs).
    (tmp_path / "central").mkdir()
    (tmp_path / "central" / "objects").write_text("not a folder")
    proc = run_cli("deliver", "--config", config)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "delivered 0, failed 3 (will be retried)" in proc.stdout
    assert "3 waiting to be retried" in proc.stdout
    assert str(tmp_path / "central") in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert _states(tmp_path / "d") == {"queued": 3}
    # The daemon's one pass says the same through its exit status.
    _make_due_again(tmp_path / "d")
    once = run_cli("run", "--config", config, "--once")
    assert once.returncode == 1, (once.stdout, once.stderr)
    assert "Traceback" not in once.stderr
    # Nothing was recorded as delivered: no clip.uploaded leaf, and the station verifies.
    conn = sqlite3.connect(tmp_path / "d" / "station.db")
    try:
        uploaded = conn.execute(
            "SELECT count(*) FROM ledger_leaves WHERE kind = 'clip.uploaded'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert uploaded == 0
    run_cli("verify", "--data-dir", tmp_path / "d", check=0)


def test_a_failing_job_is_logged_once_per_change_of_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path, max_attempts=3)
    run_cli("ingest", _recorder(tmp_path / "rec", 1), "--config", config, check=0)
    (tmp_path / "central").mkdir()
    (tmp_path / "central" / "objects").write_text("not a folder")
    station = Station.open(load_config(config), config_file=config)
    try:
        target = delivery_target(station)
        caplog.set_level(logging.INFO, logger="evidock")

        def one_pass() -> list[logging.LogRecord]:
            caplog.clear()
            _make_due_again(tmp_path / "d")
            deliver_due(station, station.conn, target)
            return [r for r in caplog.records if "->" in r.getMessage()]

        first = one_pass()
        assert [r.levelno for r in first] == [logging.WARNING], first
        assert "failed (attempt 1)" in first[0].getMessage()
        assert one_pass() == []  # the same reason again: nothing new to say
        third = one_pass()  # the last attempt parks the job: said, as an error
        assert [r.levelno for r in third] == [logging.ERROR]
        assert "parked (attempt 3)" in third[0].getMessage()
        assert _states(tmp_path / "d") == {"parked": 1}
        report = deliver_due(station, station.conn, target)
        assert not report.ok and report.parked_total == 1
        assert any("parked jobs are not retried" in line for line in report.lines())
    finally:
        station.close()


def _job_rows(data: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(data / "station.db")
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute("SELECT * FROM upload_jobs ORDER BY id"))
    finally:
        conn.close()


def test_a_missing_or_replaced_local_object_is_parked_at_once_as_an_integrity_failure(
    recorder: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    data = tmp_path / "d"
    run_cli("ingest", recorder, "--config", config, check=0)
    jobs = _job_rows(data)
    store = EvidenceStore(data / "store")
    missing, replaced = jobs[0], jobs[1]
    store.path_for(missing["sha256"]).unlink()
    swapped = store.path_for(replaced["sha256"])
    swapped.chmod(0o644)
    swapped.write_bytes(bytes(replaced["size"]))  # the same size, other bytes
    proc = run_cli("deliver", "--config", config)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert f"delivered {len(jobs) - 2}, failed 0 (will be retried), parked 2" in proc.stdout
    assert "cannot be written" not in proc.stdout
    assert f"run `evidock verify --data-dir {data}`" in proc.stdout
    parked = {row["clip_id"]: row for row in _job_rows(data) if row["state"] == "parked"}
    assert set(parked) == {missing["clip_id"], replaced["clip_id"]}
    for row in parked.values():
        assert (row["attempts"], row["failure"]) == (1, "local-integrity")
        assert row["last_error"].startswith("integrity: the station's copy")
    assert "missing from the evidence store" in parked[missing["clip_id"]]["last_error"]
    assert "not the bytes its name says" in parked[replaced["clip_id"]]["last_error"]
    # Nothing is kept centrally under the replaced object's name.
    central = tmp_path / "central" / "objects" / replaced["sha256"][:2]
    assert not (central / replaced["sha256"]).exists()
    # They are not retried: the next pass says the same and leaves them parked.
    _make_due_again(data)
    again = run_cli("deliver", "--config", config)
    assert again.returncode == 1
    assert "delivered 0, failed 0 (will be retried), parked 0" in again.stdout
    assert "2 parked because the station's own copy is missing or damaged" in again.stdout


def test_a_delivery_target_without_its_keys_is_a_config_error(tmp_path: Path) -> None:
    config = _config(tmp_path)
    text = config.read_text("utf-8").replace("[delivery]\n", '[delivery]\ntarget = "s3"\n')
    config.write_text(text, "utf-8")
    proc = run_cli("check-config", config)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert 'delivery: target = "s3" needs s3_endpoint and s3_bucket' in proc.stderr
    assert "Traceback" not in proc.stderr
    config.write_text(text.replace('"s3"', '"ftp"'), "utf-8")
    proc = run_cli("check-config", config)
    assert 'delivery.target: "ftp" is not allowed; write "folder" or "s3"' in proc.stderr


def test_a_command_signs_its_leaves_when_the_target_cannot_be_used(tmp_path: Path) -> None:
    """An S3 key others may read stops delivery, not the ingest: the command's leaves are
    covered by a signed checkpoint, the anchor waits, and the station verifies."""
    key = tmp_path / "s3-key"
    key.write_text("access_key_id = a\nsecret_access_key = b\n", "utf-8")
    key.chmod(0o644)
    config = _config(tmp_path)
    text = config.read_text("utf-8").replace(
        "[delivery]\n",
        '[delivery]\ntarget = "s3"\ns3_endpoint = "http://127.0.0.1:9"\n'
        f's3_bucket = "evidence"\ns3_credentials = "{key}"\n',
    )
    config.write_text(text, "utf-8")
    recorder = _recorder(tmp_path / "mount" / "REC0001", clips=1)
    proc = run_cli("ingest", recorder, "--config", config, check=0)
    assert "anchor not published yet" in proc.stderr and "chmod 600" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("verify", "--config", config, check=0)
    assert "signed by a checkpoint" in proc.stdout or "OK" in proc.stdout, proc.stdout
