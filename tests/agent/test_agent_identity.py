"""A station's identity belongs to its data dir: every command the README shows, run on a
station made with a non-default id, leaves a ledger that verifies; another station's
config is refused; delivery goes where the station's config says, never to a default."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from station_cli import REPO, run_cli

STATION = "bj-cy-02"


def _config(tmp_path: Path, station: str = STATION, name: str = "station.toml") -> Path:
    data = tmp_path / "d"
    path = tmp_path / name
    path.write_text(
        f'[station]\nid = "{station}"\nname = "朝阳二站"\nplace = "北京市朝阳区"\n'
        f'[paths]\ndata_dir = "{data}"\n'
        f'[docking]\nmount_root = "{tmp_path / "mount"}"\nsettle_seconds = 0.2\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n'
        f'anchor_dir = "{tmp_path / "anchors"}"\n',
        "utf-8",
    )
    return path


def _verify(data: Path) -> None:
    proc = run_cli("verify", "--data-dir", data)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr


def _stations(data: Path) -> set[str]:
    conn = sqlite3.connect(data / "station.db")
    try:
        return {
            json.loads(bytes(row[0]))["station"]
            for row in conn.execute("SELECT data FROM ledger_leaves")
        }
    finally:
        conn.close()


def _session_state(data: Path, session_id: str) -> str:
    conn = sqlite3.connect(data / "station.db")
    try:
        row = conn.execute(
            "SELECT state FROM docking_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return str(row[0])
    finally:
        conn.close()


def test_every_leaf_writing_command_keeps_a_non_default_station_verifiable(
    recorder: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    data = tmp_path / "d"
    # Made with its config (as IT does), then used the README's way: --data-dir only.
    proc = run_cli("ingest", recorder, "--config", config, "--json", check=0)
    report = json.loads(proc.stdout)
    identity = json.loads((data / "station.json").read_text("utf-8"))
    assert identity["id"] == STATION and identity["config"] == str(config)
    assert identity["place"] == "北京市朝阳区" and identity["time_zone"]
    _verify(data)
    session, clip = report["session_id"], report["clips"][0]["clip_id"]

    steps: list[tuple[str, ...]] = [
        ("link", "--data-dir", str(data), "--case", "朝执罚〔2026〕1号", "--session", session),
        ("unlink", "--data-dir", str(data), "--case", "朝执罚〔2026〕1号", "--session", session),
        ("link", "--data-dir", str(data), "--case", "朝执罚〔2026〕1号", "--clip", clip),
        (
            "fetch",
            clip,
            "--data-dir",
            str(data),
            "--out",
            str(tmp_path / "out.mp4"),
            "--who",
            "auditor-7",
            "--purpose",
            "review",
        ),
        ("deliver", "--data-dir", str(data)),
        (
            "export",
            "--data-dir",
            str(data),
            "--case",
            "朝执罚〔2026〕1号",
            "--out",
            str(tmp_path / "pkg"),
            "--who",
            "clerk-3",
            "--purpose",
            "court",
        ),
        ("rotate-key", "--data-dir", str(data)),
        ("ingest", str(recorder), "--data-dir", str(data)),
    ]
    for step in steps:
        proc = run_cli(*step)
        assert proc.returncode == 0, (step, proc.stdout, proc.stderr)
        assert _stations(data) == {STATION}, step
        _verify(data)
    # Delivery followed the station's config, not a default inside the data dir.
    assert any((tmp_path / "central").rglob("*")), "nothing reached the configured central dir"
    assert not (data / "central").exists()
    # The daemon, as the service runs it.
    (tmp_path / "mount").mkdir(exist_ok=True)
    run_cli("run", "--config", config, "--once", check=0)
    assert _stations(data) == {STATION}
    _verify(data)
    # --config alone is enough for every station command.
    run_cli("link", "--config", config, "--case", "朝执罚〔2026〕2号", "--clip", clip, check=0)
    run_cli("proof", clip, "--config", config, "--out", tmp_path / "receipt", check=0)
    run_cli("verify", "--config", config, check=0)
    assert run_cli("pubkey", "--config", config, "--note", check=0).stdout.startswith(
        f"evidock.station/{STATION}+"
    )
    _verify(data)


def test_a_config_of_another_station_is_refused_and_changes_nothing(
    recorder: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    data = tmp_path / "d"
    run_cli("ingest", recorder, "--config", config, check=0)
    before = (data / "station.db").stat().st_size, _stations(data)
    other = _config(tmp_path, station="bj-cy-99", name="other.toml")
    for args in (
        ("ingest", str(recorder), "--config", str(other)),
        ("deliver", "--config", str(other)),
        ("run", "--config", str(other), "--once"),
        ("rotate-key", "--config", str(other)),
    ):
        proc = run_cli(*args, check=2)
        assert STATION in proc.stderr and "bj-cy-99" in proc.stderr, args
        assert "Traceback" not in proc.stderr
    assert _stations(data) == before[1]
    _verify(data)


def test_an_embedded_station_keeps_its_id_without_config(recorder: Path, tmp_path: Path) -> None:
    # The demo's station: embedded defaults, id "demo-station"; later commands given only
    # --data-dir must not write the built-in "station-01".
    from agent.demo import demo_config
    from agent.station import Station

    data = tmp_path / "demo"
    station = Station.open(demo_config(data))
    station.close()
    run_cli("ingest", recorder, "--data-dir", data, check=0)
    assert _stations(data) == {"demo-station"}
    _verify(data)


def test_commands_other_than_ingest_do_not_make_a_station(tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    for args in (
        ("link", "--data-dir", str(empty), "--case", "A", "--clip", "c1"),
        ("deliver", "--data-dir", str(empty)),
        ("rotate-key", "--data-dir", str(empty)),
    ):
        proc = run_cli(*args, check=2)
        assert "holds no station" in proc.stderr
    assert not empty.exists()
    proc = run_cli("deliver", check=2)
    assert "--config" in proc.stderr and "--data-dir" in proc.stderr


def _slow_recorder(recorder: Path, files: int = 400) -> Path:
    filler = recorder / "DCIM" / "100MEDIA"
    filler.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        (filler / f"LOG{n:05d}.BIN").write_bytes(os.urandom(256 * 1024))
    return recorder


def _start_ingest(recorder: Path, data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "ingest", str(recorder), "--data-dir", str(data)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_open_session(data: Path, proc: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            conn = sqlite3.connect(data / "station.db", timeout=5)
            try:
                row = conn.execute(
                    "SELECT s.session_id FROM docking_sessions s WHERE state = 'open'"
                    " AND (SELECT count(*) FROM sightings g WHERE g.session_id = s.session_id)"
                    " >= 3"
                ).fetchone()
            finally:
                conn.close()
        except sqlite3.OperationalError:
            row = None
        if row is not None:
            return str(row[0])
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the ingest never had an open session with clips in it")


def test_ctrl_c_during_ingest_closes_the_session_on_record(recorder: Path, tmp_path: Path) -> None:
    data = tmp_path / "d"
    proc = _start_ingest(_slow_recorder(recorder), data)
    session = _wait_open_session(data, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert _session_state(data, session) == "incomplete"
    _verify(data)


def test_a_killed_ingest_is_closed_on_record_by_the_next_command(
    recorder: Path, tmp_path: Path
) -> None:
    data = tmp_path / "d"
    proc = _start_ingest(_slow_recorder(recorder), data)
    session = _wait_open_session(data, proc)
    proc.kill()
    proc.communicate(timeout=30)
    assert _session_state(data, session) == "open"
    # Any command that opens the station for writing; here one that touches no session.
    run_cli("deliver", "--data-dir", data, check=0)
    assert _session_state(data, session) == "incomplete"
    _verify(data)
    # A live ingest's session is not closed by a command run beside it.
    proc = _start_ingest(recorder, data)
    live = _wait_open_session(data, proc)
    run_cli("deliver", "--data-dir", data)
    assert _session_state(data, live) in ("open", "closed")
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert _session_state(data, live) == "closed"
