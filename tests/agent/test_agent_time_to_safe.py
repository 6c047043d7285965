"""Time to safe, per recorder: each docking session keeps when it was docked, verified,
delivered (central storage confirmed its last clip) and made safe; `evidock sessions`
shows the wait and the station's median and slowest, `--json` carries the moments and the
seconds; a session from before the station kept them reads as unknown, never as 0."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from station_cli import run_cli

import agent.database
from agent import schema as agent_schema
from agent.daemon import Daemon
from agent.database import DB_NAME
from agent.delivery import deliver_due, delivery_target
from agent.ingest import IngestSession
from agent.phases import advance_phases
from agent.station import Station, embedded_config
from config.common import iso_utc
from docking import Docked, Undocked

POLICY = "after_central_confirmed"


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    opened = Station.open(embedded_config(tmp_path / "data"))
    yield opened
    opened.close()


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _second_recorder(recorder: Path, serial: str) -> Path:
    """Another recorder: the same clips (seen again) and one of its own (new)."""
    other = recorder.parent / serial
    shutil.copytree(recorder, other)
    info = other / "DEVICE.INF"
    info.write_text(info.read_text().replace("REC0001", serial))
    (other / "DCIM" / f"{serial}.TXT").write_text(f"notes of {serial}\n")
    return other


def _sessions(data: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        run_cli("sessions", "--data-dir", data, "--json", check=0).stdout
    )
    return found


def _by_id(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["session_id"]: s for s in found["sessions"]}


def _seconds(later: str, earlier: str) -> float:
    return (_at(later) - _at(earlier)).total_seconds()


def test_docked_verified_delivered_safe_in_order_with_the_seconds_in_json(
    station: Station, recorder: Path
) -> None:
    first = IngestSession(station, recorder).run()
    second = IngestSession(station, _second_recorder(recorder, "REC0002")).run()
    assert first.ok and second.ok
    closed = max(
        _at(str(r[0])) for r in station.conn.execute("SELECT closed_at FROM docking_sessions")
    )
    confirmed = closed + timedelta(minutes=3, seconds=7)
    report = deliver_due(station, station.conn, delivery_target(station), clock=lambda: confirmed)
    assert report.ok
    said_safe = confirmed + timedelta(seconds=2)
    changed = advance_phases(station.conn, POLICY, clock=lambda: said_safe)
    assert sorted(changed) == sorted([(first.session_id, "safe"), (second.session_id, "safe")])

    found = _sessions(station.data_dir)
    rows = _by_id(found)
    for session_id in (first.session_id, second.session_id):
        s = rows[session_id]
        assert s["times_recorded"] is True and s["phase"] == "safe"
        assert s["verified_at"] == s["closed_at"]
        # Central storage's own confirmation time, and the moment the station said safe.
        assert s["delivered_at"] == iso_utc(confirmed)
        assert s["safe_at"] == iso_utc(said_safe)
        assert s["opened_at"] < s["verified_at"] < s["delivered_at"] < s["safe_at"]
        for moment in ("verified", "delivered", "safe"):
            seconds = s[f"seconds_to_{moment}"]
            assert isinstance(seconds, float)
            assert seconds == pytest.approx(_seconds(s[f"{moment}_at"], s["opened_at"]), abs=2e-3)
        assert s["wiped_at"] is None and s["seconds_to_wiped"] is None
    # The station's figure: the first recorder waited longest (docked first, safe together).
    slow, quick = rows[first.session_id], rows[second.session_id]
    assert found["time_to_safe"] == {
        "sessions": 2,
        "median_seconds": pytest.approx((slow["seconds_to_safe"] + quick["seconds_to_safe"]) / 2),
        "slowest_seconds": slow["seconds_to_safe"],
        "slowest_session": first.session_id,
        "slowest_slot": None,
    }

    text = run_cli("sessions", "--data-dir", station.data_dir, check=0).stdout
    waits = re.findall(
        r"safe after \d+ min \d+ s \(verified [\d.]+ s, delivered \d+ min \d+ s\)", text
    )
    assert len(waits) == 2, text
    assert re.search(
        r"time to safe of the 2 session\(s\) shown that became safe: median \d+ min \d+ s, "
        rf"slowest \d+ min \d+ s \(session {first.session_id}\)",
        text.replace("\n", " "),
    ), text
    assert max(len(line) for line in text.splitlines()) < 80


def test_clips_not_yet_delivered_show_verified_and_no_delivered_time(
    station: Station, recorder: Path
) -> None:
    session = IngestSession(station, recorder).run()
    assert advance_phases(station.conn, POLICY) == []
    s = _by_id(_sessions(station.data_dir))[session.session_id]
    assert (s["phase"], s["times_recorded"]) == ("verified", True)
    assert s["verified_at"] == s["closed_at"] and s["seconds_to_verified"] >= 0
    assert s["delivered_at"] is s["safe_at"] is s["seconds_to_delivered"] is None
    assert s["seconds_to_safe"] is None
    text = run_cli("sessions", "--data-dir", station.data_dir, check=0).stdout
    assert re.search(r"not safe yet \(verified [\d.]+ s, not delivered yet\)", text), text
    assert "time to safe of" not in text  # no session became safe: no figure


def test_safe_once_verified_and_its_delivery_recorded_after_the_recorder_left(
    tmp_path: Path, recorder: Path
) -> None:
    station = Station.open(embedded_config(tmp_path / "data", docking={"wipe": "after_verified"}))
    try:
        session = IngestSession(station, recorder).run()
        closed = _at(
            station.conn.execute(
                "SELECT closed_at FROM docking_sessions WHERE session_id = ?",
                (session.session_id,),
            ).fetchone()[0]
        )
        said_safe = closed + timedelta(seconds=1)
        assert advance_phases(station.conn, "after_verified", clock=lambda: said_safe) == [
            (session.session_id, "safe")
        ]
        daemon = Daemon(station)
        try:
            daemon.on_event(Undocked(recorder))  # the officer took it: removed
        finally:
            daemon.close()
        confirmed = closed + timedelta(minutes=20)
        assert deliver_due(
            station, station.conn, delivery_target(station), clock=lambda: confirmed
        ).ok
        assert advance_phases(station.conn, "after_verified") == []  # no phase changes
        s = _by_id(_sessions(station.data_dir))[session.session_id]
    finally:
        station.close()
    assert s["phase"] == "removed"
    assert (s["safe_at"], s["delivered_at"]) == (iso_utc(said_safe), iso_utc(confirmed))
    assert s["seconds_to_safe"] < s["seconds_to_delivered"]


def test_the_daemon_records_each_moment_on_its_own_clock(station: Station, recorder: Path) -> None:
    daemon = Daemon(station)
    try:
        daemon.on_event(Docked(recorder, slot="3"))
        daemon.close()  # waits for the session
        (report,) = daemon.reports
        assert daemon.deliver().ok
        daemon.advance_phases()
    finally:
        daemon.close()
    s = _by_id(_sessions(station.data_dir))[report.session_id]
    assert s["phase"] == "safe" and s["slot"] == "3"
    assert s["opened_at"] <= s["verified_at"] <= s["delivered_at"] <= s["safe_at"]
    assert 0 <= s["seconds_to_verified"] <= s["seconds_to_delivered"] <= s["seconds_to_safe"]


def _old_migrations() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every room's migrations as evidock had them before sessions kept their times."""
    steps = agent_schema.MIGRATIONS
    before = next(i for i, script in enumerate(steps) if "session_times" in script)
    return tuple(
        (room, steps[:before] if room == "agent" else tuple(scripts))
        for room, scripts in agent.database.ROOM_MIGRATIONS
    )


def test_a_session_from_before_times_were_kept_reads_unknown_never_zero(
    tmp_path: Path, recorder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    with monkeypatch.context() as old:
        old.setattr(agent.database, "ROOM_MIGRATIONS", _old_migrations())
        station = Station.open(embedded_config(data))
        try:
            session = IngestSession(station, recorder).run()
            assert deliver_due(station, station.conn, delivery_target(station)).ok
            # The older station made it safe without saying when.
            station.conn.execute("UPDATE docking_sessions SET phase = 'safe'")
        finally:
            station.close()
    conn = sqlite3.connect(data / DB_NAME)
    assert "safe_at" not in {r[1] for r in conn.execute("PRAGMA table_info(docking_sessions)")}
    conn.close()

    # An auditor reads the old database as it is (read-only: not updated).
    found = _sessions(data)
    s = _by_id(found)[session.session_id]
    assert s["times_recorded"] is False and s["phase"] == "safe"
    assert all(s[f"seconds_to_{m}"] is None for m in ("verified", "delivered", "safe", "wiped"))
    assert found["time_to_safe"]["sessions"] == 0
    text = run_cli("sessions", "--data-dir", data, check=0).stdout
    assert (
        "time to safe unknown: docked before the station kept it (verified unknown, "
        "delivered: unknown)" in text.replace("\n    ", " ")
    ), text

    # The station updates its database: what was recorded elsewhere is shown (verified is
    # its closing, delivered is central storage's confirmation); safe stays unknown.
    station = Station.open(embedded_config(data))
    try:
        assert advance_phases(station.conn, POLICY) == []
    finally:
        station.close()
    s = _by_id(_sessions(data))[session.session_id]
    assert s["times_recorded"] is False
    assert s["verified_at"] == s["closed_at"] and s["seconds_to_verified"] >= 0
    assert s["delivered_at"] is not None and s["seconds_to_delivered"] >= s["seconds_to_verified"]
    assert s["safe_at"] is None and s["seconds_to_safe"] is None
    text = run_cli("sessions", "--data-dir", data, check=0).stdout
    assert re.search(
        r"time to safe unknown: docked before the station kept it \(verified [\d.]+ s, "
        r"delivered [\d.]+ s\)",
        text.replace("\n    ", " "),
    ), text


def test_a_session_time_edited_into_nonsense_is_unknown_not_a_traceback(
    station: Station, recorder: Path
) -> None:
    session = IngestSession(station, recorder).run()
    station.conn.execute(
        "UPDATE docking_sessions SET closed_at = 'yesterday' WHERE session_id = ?",
        (session.session_id,),
    )
    proc = run_cli("sessions", "--data-dir", station.data_dir, check=0)
    assert "Traceback" not in proc.stderr and "verified unknown" in proc.stdout
    s = _by_id(_sessions(station.data_dir))[session.session_id]
    assert s["seconds_to_verified"] is None
