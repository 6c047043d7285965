"""The daemon (`evidock run`): boot on record, recorders docked under the mount root
ingested concurrently, clips delivered, checkpoints anchored, clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from station_cli import REPO, run_cli


def _config(tmp_path: Path, **extra: str) -> Path:
    data = tmp_path / "data"
    text = (
        f'[station]\nid = "station-t1"\n[paths]\ndata_dir = "{data}"\n'
        f'[docking]\nmount_root = "{tmp_path / "media"}"\nsettle_seconds = 0.3\n'
        f'rescan_seconds = 1.0\n[delivery]\ncentral_dir = "{tmp_path / "central"}"\n'
        + "".join(f"{line}\n" for line in extra.values())
    )
    path = tmp_path / "station.toml"
    path.write_text(text, "utf-8")
    (tmp_path / "media").mkdir(exist_ok=True)
    return path


def _kinds(data: Path) -> list[str]:
    conn = sqlite3.connect(data / "station.db")
    try:
        return [r[0] for r in conn.execute("SELECT kind FROM ledger_leaves ORDER BY idx")]
    finally:
        conn.close()


def _kinds_if_ready(data: Path) -> list[str]:
    try:
        return _kinds(data)
    except sqlite3.OperationalError:
        return []


def _dock(template: Path, mount_root: Path, serial: str) -> Path:
    """A volume appears at once under the mount root, as a mount would."""
    staging = mount_root.parent / f".{serial}"
    shutil.copytree(template, staging)
    (staging / "DEVICE.INF").write_text(
        (template / "DEVICE.INF").read_text().replace("REC0001", serial)
    )
    final = mount_root / serial
    staging.rename(final)
    return final


def test_run_once_ingests_every_docked_recorder_and_anchors(
    recorder_template: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    for serial in ("RECA", "RECB"):
        _dock(recorder_template, tmp_path / "media", serial)
    run_cli("run", "--config", config, "--once", check=0)
    data = tmp_path / "data"
    kinds = _kinds(data)
    assert kinds[0] == "station.booted"
    assert kinds.count("docking.opened") == 2 and kinds.count("docking.closed") == 2
    files = len([p for p in recorder_template.rglob("*") if p.is_file()])
    # Each recorder has its own DEVICE.INF (serial differs); the footage is shared.
    assert kinds.count("clip.ingested") == files + 1
    assert kinds.count("clip.redocked") == files - 1
    assert kinds.count("clip.uploaded") == files + 1
    central = [p for p in (tmp_path / "central" / "objects").rglob("*") if p.suffix != ".json"]
    assert len([p for p in central if p.is_file()]) == files + 1
    anchors = sorted((tmp_path / "central" / "anchors").glob("*/*/*.anchor"))  # <station>/<key>/
    assert anchors
    run_cli("verify", "--data-dir", data, "--anchor", anchors[-1], check=0)

    # A changed config is on record at the next boot.
    changed = config.read_text().replace('id = "station-t1"', 'id = "station-t1"\nname = "B"')
    config.write_text(changed)
    run_cli("run", "--config", config, "--once", check=0)
    kinds = _kinds(data)
    assert kinds.count("station.booted") == 2 and kinds.count("config.changed") == 1


def test_daemon_ingests_a_recorder_that_appears_and_stops_on_sigterm(
    recorder_template: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        data = tmp_path / "data"
        deadline = time.monotonic() + 60
        # The daemon is ready once its boot is on record (the db file exists earlier,
        # before its migrations ran).
        while "station.booted" not in _kinds_if_ready(data) and time.monotonic() < deadline:
            time.sleep(0.1)
        _dock(recorder_template, tmp_path / "media", "RECLIVE")
        files = len([p for p in recorder_template.rglob("*") if p.is_file()])
        while time.monotonic() < deadline:
            kinds = _kinds(data)
            if kinds.count("clip.uploaded") == files and "docking.closed" in kinds:
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"daemon did not ingest and deliver in time: {_kinds(data)}")
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, out
    assert "RECLIVE" in out
    run_cli("verify", "--data-dir", tmp_path / "data", check=0)
    assert not any(t for t in os.listdir(tmp_path / "data" / "store" / "staging"))


def test_a_session_left_open_by_a_crash_is_closed_on_record_at_start(
    recorder: Path, tmp_path: Path
) -> None:
    from agent.ingest import IngestSession
    from agent.sessions import close_orphaned_sessions, current_owner
    from agent.station import Station, embedded_config

    data = tmp_path / "data"
    station = Station.open(embedded_config(data))
    report = IngestSession(station, recorder).run()
    # What a kill -9 between two files leaves: the session row still open, its process
    # gone (a pid that cannot exist).
    station.conn.execute(
        "UPDATE docking_sessions SET state = 'open', closed_at = NULL, owner = ?"
        " WHERE session_id = ?",
        (current_owner().rsplit("/", 2)[0] + "/999999999/1", report.session_id),
    )
    assert close_orphaned_sessions(station.conn, station.ledger()) == [report.session_id]
    assert close_orphaned_sessions(station.conn, station.ledger()) == []
    row = station.conn.execute(
        "SELECT state, problems FROM docking_sessions WHERE session_id = ?", (report.session_id,)
    ).fetchone()
    assert row["state"] == "incomplete" and "stopped" in row["problems"]
    assert _kinds(data)[-1] == "docking.closed"
    station.close()


def test_a_copy_committed_without_its_leaf_is_set_aside_and_named(
    recorder: Path, tmp_path: Path
) -> None:
    import hashlib

    from agent.ingest import IngestSession
    from agent.sessions import close_orphaned_sessions, current_owner
    from agent.station import Station, embedded_config
    from agent.station_args import sign

    data = tmp_path / "data"
    station = Station.open(embedded_config(data))
    report = IngestSession(station, recorder).run()
    # What a kill -9 between the store's commit and the clip's leaf leaves: an object no
    # leaf names, and its session open with its process gone.
    content = b"a clip the stopped process had copied and verified"
    sha = hashlib.sha256(content).hexdigest()
    station.store.path_for(sha).parent.mkdir(parents=True, exist_ok=True)
    station.store.path_for(sha).write_bytes(content)
    assert run_cli("verify", "--data-dir", data).returncode == 1  # an extra file, today
    station.conn.execute(
        "UPDATE docking_sessions SET state = 'open', closed_at = NULL, owner = ?"
        " WHERE session_id = ?",
        (current_owner().rsplit("/", 2)[0] + "/999999999/1", report.session_id),
    )
    closed = close_orphaned_sessions(station.conn, station.ledger(), station.store)
    assert closed == [report.session_id]
    kept = data / "store" / "orphans" / sha
    assert kept.read_bytes() == content and not station.store.path_for(sha).exists()
    leaf = json.loads(
        bytes(
            station.conn.execute(
                "SELECT data FROM ledger_leaves ORDER BY idx DESC LIMIT 1"
            ).fetchone()[0]
        )
    )
    assert leaf["kind"] == "docking.closed"
    assert any(sha in p["path"] for p in leaf["body"]["problems"]), leaf
    sign(station)
    station.close()
    assert "0 extra" in run_cli("verify", "--data-dir", data, check=0).stdout


def test_start_up_settles_a_key_rotation_a_crash_cut_short(
    recorder_template: Path, tmp_path: Path
) -> None:
    # The station's rotation was killed after its new key was installed but before the
    # station's identity named it: the daemon's start-up finishes it, and the identity,
    # the keys folder and what verify trusts agree.
    steps = REPO / "tests" / "ledger" / "keyring_steps.py"
    config = _config(tmp_path)
    text = config.read_text().replace('id = "station-t1"', 'id = "station-07"')
    config.write_text(text)
    run_cli("run", "--config", config, "--once", check=0)
    data = tmp_path / "data"
    before = json.loads((data / "station.json").read_text())["key"]
    child = subprocess.run(
        [sys.executable, str(steps), str(data), "rotate", "rotate.public-installed"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert (data / "keys" / "pending").exists()
    _dock(recorder_template, tmp_path / "media", "RECAFTER")
    run_cli("run", "--config", config, "--once", check=0)
    assert not (data / "keys" / "pending").exists()
    identity = json.loads((data / "station.json").read_text())
    current = run_cli("pubkey", "--data-dir", data, "--note", check=0).stdout.strip()
    assert identity["key"] == current != before
    assert "key.rotated" in _kinds(data)
    run_cli("verify", "--data-dir", data, check=0)
