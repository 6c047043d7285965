"""`evidock recorders` and `evidock sessions`: every recorder and session a person at the
station asks about, from real ingests; read-only, so an auditor may run them and the
station is never changed; readable in an 80-column terminal, names escaped."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from station_cli import ingest_json, run_as_auditor, run_cli

from agent.database import DB_NAME, open_readonly
from agent.ingest import IngestSession
from agent.recorders_cli import session_rows
from agent.station import Station, embedded_config

RECORDER_KEYS = {
    "serial",
    "model",
    "serial_source",
    "officer",
    "officer_source",
    "slot",
    "last_session",
    "last_phase",
    "first_seen",
    "last_seen",
}
SESSION_KEYS = {
    "session_id",
    "recorder",
    "slot",
    "usb_port",
    "officer",
    "officer_source",
    "state",
    "phase",
    "reason",
    "files",
    "files_done",
    "bytes_total",
    "bytes_done",
    "progress",
    "opened_at",
    "closed_at",
    "times_recorded",
    "verified_at",
    "delivered_at",
    "safe_at",
    "wiped_at",
    "seconds_to_verified",
    "seconds_to_delivered",
    "seconds_to_safe",
    "seconds_to_wiped",
}


class Docked:
    """A station with two real ingests: REC0001 complete, REC0002 incomplete (a FIFO)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.good = ""
        self.bad = ""


@pytest.fixture(scope="module")
def docked(recorder_template: Path) -> Iterator[Docked]:
    # A folder an unprivileged auditor may enter (pytest's tmp folders are root's only).
    root = Path(tempfile.mkdtemp(prefix="evidock-recorders-"))
    root.chmod(0o755)
    made = Docked(root)
    good = root / "mount" / "REC0001"
    shutil.copytree(recorder_template, good)
    made.good = ingest_json(good, made.data)["session_id"]
    bad = root / "mount" / "REC0002"
    shutil.copytree(recorder_template, bad)
    os.mkfifo(bad / "DCIM" / "PIPE.MP4")
    info = bad / "DEVICE.INF"  # a recorder whose device-info names no officer
    info.write_text(info.read_text("utf-8").replace("officer=000123\n", ""), "utf-8")
    made.bad = ingest_json(
        bad, made.data, "--recorder", "REC0002", "--officer", "警员\x1b[2J", check=1
    )["session_id"]
    run_cli("assign", "REC0001", "张三", "--by", "admin", "--data-dir", made.data, check=0)
    yield made
    shutil.rmtree(root, ignore_errors=True)


def _json(*args: str | Path) -> Any:
    return json.loads(run_cli(*args, "--json", check=0).stdout)


def test_recorders_json(docked: Docked) -> None:
    rows = _json("recorders", "--data-dir", docked.data)["recorders"]
    assert [r["serial"] for r in rows] == ["REC0001", "REC0002"]
    assert all(set(r) == RECORDER_KEYS for r in rows)
    one, two = rows
    assert (one["officer"], one["officer_source"]) == ("张三", "assignment")
    assert (one["last_session"], one["last_phase"]) == (docked.good, "verified")
    assert one["model"] and one["first_seen"] <= one["last_seen"]
    assert (two["last_session"], two["last_phase"]) == (docked.bad, "incomplete")
    # No assignment, and its device-info names no officer: flagged, never refused.
    assert (two["officer"], two["officer_source"]) == (None, "none")


def test_sessions_json(docked: Docked) -> None:
    rows = _json("sessions", "--data-dir", docked.data)["sessions"]
    assert all(set(s) == SESSION_KEYS for s in rows)
    by_id = {s["session_id"]: s for s in rows}
    good, bad = by_id[docked.good], by_id[docked.bad]
    assert (good["recorder"], good["state"], good["phase"], good["reason"]) == (
        "REC0001",
        "closed",
        "verified",
        None,
    )
    files = sum(1 for p in (docked.root / "mount" / "REC0001").rglob("*") if p.is_file())
    assert good["files"] == good["files_done"] == files
    assert good["progress"].startswith(f"{files}/{files} files, ") and good["closed_at"]
    assert (bad["recorder"], bad["officer"], bad["phase"]) == (
        "REC0002",
        "警员\x1b[2J",
        "incomplete",
    )
    assert "PIPE.MP4" in bad["reason"] and "FIFO" in bad["reason"]
    assert _json("sessions", "--active", "--data-dir", docked.data)["sessions"] == []


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def test_human_output_fits_80_columns_and_escapes_names(docked: Docked) -> None:
    for command in ("recorders", "sessions"):
        out = run_cli(command, "--data-dir", docked.data, check=0).stdout
        assert "\x1b" not in out, command
        assert max(_columns(line) for line in out.splitlines()) < 80, out
    out = run_cli("sessions", "--data-dir", docked.data, check=0).stdout
    assert "警员\\x1b[2J" in out
    assert "incomplete: " in out and "PIPE.MP4" in out
    header = out.splitlines()[0]
    assert header.split() == ["SESSION", "SLOT", "RECORDER", "OFFICER", "(SOURCE)", "PHASE"]
    recorders = run_cli("recorders", "--data-dir", docked.data, check=0).stdout
    assert "张三 (assignment)" in recorders and "none (flagged)" in recorders


def _snapshot(data: Path) -> dict[str, str]:
    """Every file of the data dir and its SHA-256 (SQLite's own -shm index aside)."""
    return {
        str(path.relative_to(data)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(data.rglob("*"))
        if path.is_file() and not path.name.endswith("-shm")
    }


def test_an_unprivileged_auditor_reads_and_nothing_changes(docked: Docked) -> None:
    before = _snapshot(docked.data)
    for args in (("recorders",), ("sessions",), ("sessions", "--active"), ("assign", "--list")):
        proc = run_as_auditor(*args, "--data-dir", docked.data, "--json", cwd=docked.root)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert json.loads(proc.stdout) == _json(*args, "--data-dir", docked.data)
    assert _snapshot(docked.data) == before
    # The auditor may read; assigning is writing, refused in one line, nothing changed.
    proc = run_as_auditor("assign", "REC0001", "x", "--data-dir", docked.data, cwd=docked.root)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert _snapshot(docked.data) == before


def test_a_session_being_copied_shows_its_progress(recorder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    station = Station.open(embedded_config(data))
    seen: list[list[dict[str, Any]]] = []

    def look() -> None:
        # Another process's view, read-only, while the session runs.
        conn = open_readonly(data / DB_NAME)
        try:
            seen.append(session_rows(conn, active=True))
        finally:
            conn.close()

    try:
        report = IngestSession(station, recorder, on_file=look).run()
        files = len(report.outcomes)
        after = session_rows(station.conn, active=True)
    finally:
        station.close()
    assert after == []
    first = seen[0]
    assert [(s["session_id"], s["phase"], s["files_done"]) for s in first] == [
        (report.session_id, "copying", 1)
    ]
    assert first[0]["progress"].startswith(f"copying 1/{files} files, ")
    assert first[0]["progress"].endswith(" kB") and "/" in first[0]["progress"].split(", ")[1]


def test_a_station_with_nothing_docked_says_so(tmp_path: Path) -> None:
    Station.open(embedded_config(tmp_path / "data")).close()
    out = run_cli("recorders", "--data-dir", tmp_path / "data", check=0).stdout
    assert out == "no recorder has been docked at this station yet\n"
    out = run_cli("sessions", "--active", "--data-dir", tmp_path / "data", check=0).stdout
    assert out == "no docking session is open\n"
    assert _json("recorders", "--data-dir", tmp_path / "data") == {"recorders": []}


def test_a_database_older_than_slots_is_named_not_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    Station.open(embedded_config(data)).close()
    conn = sqlite3.connect(data / DB_NAME)
    conn.execute("DROP TABLE officer_assignments")
    conn.commit()
    conn.close()
    for command in ("recorders", "sessions"):
        proc = run_cli(command, "--data-dir", data, check=2)
        assert "predates slots and officer assignments" in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stdout == ""
