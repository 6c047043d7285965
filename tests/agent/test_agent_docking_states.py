"""Docking as officers dock: a recorder left docked across a restart is not read again
(and the station says why), an empty recorder gets a session that says so, two recorders
with one serial are not merged, and each session's phase can be followed to "safe"."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from station_cli import run_cli

from agent.daemon import Daemon
from agent.errors import SourceError
from agent.ingest import IngestSession, SessionReport
from agent.station import Station, embedded_config
from agent.verification import verify_data_dir
from docking import Docked, Undocked, open_volume


def _config(tmp_path: Path, recheck: str = "metadata") -> Path:
    data = tmp_path / "data"
    (tmp_path / "media").mkdir(exist_ok=True)
    path = tmp_path / "station.toml"
    path.write_text(
        f'[paths]\ndata_dir = "{data}"\n[docking]\nmount_root = "{tmp_path / "media"}"\n'
        f'recheck = "{recheck}"\n[delivery]\ncentral_dir = "{tmp_path / "central"}"\n',
        "utf-8",
    )
    return path


def _dock(template: Path, media: Path, serial: str) -> Path:
    volume = media / serial
    shutil.copytree(template, volume)
    info = volume / "DEVICE.INF"
    info.write_text(info.read_text().replace("REC0001", serial))
    return volume


def _kinds(data: Path) -> list[str]:
    conn = sqlite3.connect(data / "station.db")
    try:
        return [r[0] for r in conn.execute("SELECT kind FROM ledger_leaves ORDER BY idx")]
    finally:
        conn.close()


@pytest.mark.parametrize("recheck", ["metadata", "content"])
def test_a_restart_with_four_recorders_still_docked_reads_nothing_again(
    recorder_template: Path, tmp_path: Path, recheck: str
) -> None:
    config = _config(tmp_path, recheck)
    for serial in ("RA", "RB", "RC", "RD"):
        _dock(recorder_template, tmp_path / "media", serial)
    run_cli("run", "--config", config, "--once", check=0)
    data = tmp_path / "data"
    first = _kinds(data)
    assert first.count("docking.opened") == 4
    # The daemon restarts; the four recorders are still in their slots (charging).
    again = run_cli("run", "--config", config, "--once", check=0)
    added = _kinds(data)[len(first) :]
    if recheck == "metadata":
        assert "docking.opened" not in added and "clip.redocked" not in added
        assert again.stderr.count("not read again, already safe") == 4, again.stderr
    else:
        assert added.count("docking.opened") == 4 and "clip.redocked" in added
    # One changed file on one recorder: only that one is read, in a new session.
    changed = tmp_path / "media" / "RB" / "DEVICE.INF"
    changed.write_text(changed.read_text() + "# edited\n")
    before = len(_kinds(data))
    third = run_cli("run", "--config", config, "--once", check=0)
    added = _kinds(data)[before:]
    assert added.count("docking.opened") == (1 if recheck == "metadata" else 4)
    assert added.count("clip.ingested") == 1
    assert "Traceback" not in third.stderr
    run_cli("verify", "--data-dir", data, check=0)


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    opened = Station.open(embedded_config(tmp_path / "data"))
    yield opened
    opened.close()


def _phase(station: Station, session_id: str) -> str:
    row = station.conn.execute(
        "SELECT phase FROM docking_sessions WHERE session_id = ?", (session_id,)
    ).fetchone()
    return str(row["phase"])


def test_an_empty_recorder_gets_a_session_that_says_nothing_to_copy(
    station: Station, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="evidock")
    empty = tmp_path / "media" / "EMPTY01"
    empty.mkdir(parents=True)
    daemon = Daemon(station)
    try:
        daemon.on_event(Docked(empty, slot="4"))
    finally:
        daemon.close()  # waits for the session
    (report,) = daemon.reports
    assert report.ok and report.outcomes == []
    assert "nothing to copy" in caplog.text
    assert _phase(station, report.session_id) == "safe"
    row = station.conn.execute(
        "SELECT slot FROM docking_sessions WHERE session_id = ?", (report.session_id,)
    ).fetchone()
    assert row["slot"] == "4"


def test_phases_follow_a_session_to_safe_and_removed(station: Station, recorder: Path) -> None:
    daemon = Daemon(station)
    try:
        daemon.on_event(Docked(recorder, slot="3"))
        daemon.close()  # waits for the session
        (report,) = daemon.reports
        assert _phase(station, report.session_id) == "verified"  # not yet confirmed centrally
        assert daemon.deliver().ok
        daemon.advance_phases()
        assert _phase(station, report.session_id) == "safe"
        daemon.on_event(Undocked(recorder, slot="3"))
        assert _phase(station, report.session_id) == "removed"
    finally:
        daemon.close()
    daemon.checkpoint()
    assert verify_data_dir(station.data_dir).ok


def test_two_recorders_with_one_serial_are_refused_never_merged(
    station: Station, recorder: Path, tmp_path: Path
) -> None:
    twin = tmp_path / "media2" / "TWIN"
    shutil.copytree(recorder, twin)  # same DEVICE.INF: the same serial
    # The first recorder's session is open (as while it copies) when the twin docks.
    first = IngestSession(station, recorder, slot="1")
    holder = SessionReport("S-open-first", "REC0001", str(recorder), None)
    first._open_session(station.conn, station.ledger(), holder, open_volume(recorder))
    with pytest.raises(SourceError, match=r"already docked at slot 1 .* not merged"):
        IngestSession(station, twin).run()
    kinds = [r[0] for r in station.conn.execute("SELECT kind FROM ledger_leaves")]
    assert kinds.count("docking.opened") == 1


def test_a_recorder_clock_years_off_is_measured_at_docking_and_corrects_capture_times(
    tmp_path: Path,
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from docking import generate_volume

    volume = tmp_path / "media" / "GAT01"
    shows = datetime(2003, 1, 1, 0, 40, 2)  # its clock battery died years ago
    generate_volume(
        volume,
        profile="gat947",
        clips=1,
        seconds=1,
        size=(64, 48),
        start=datetime(2003, 1, 1, 0, 0, 15),
        clock=shows,
    )
    station = Station.open(
        embedded_config(tmp_path / "data", docking={"recorder_profile": "gat947"})
    )
    try:
        report = IngestSession(station, volume).run()
        assert report.ok and report.clock_method == "device-info"
        assert report.recorder_clock == shows.isoformat()
        assert report.clock_offset_ms is not None
        assert report.clock_offset_ms < -23 * 365 * 86400 * 1000
        leaves = [
            json.loads(bytes(row[0]))
            for row in station.conn.execute("SELECT data FROM ledger_leaves ORDER BY idx")
        ]
        opened = next(leaf for leaf in leaves if leaf["kind"] == "docking.opened")
        assert opened["body"]["recorder_clock"] == {
            "time": shows.isoformat(),
            "method": "device-info",
            "offset_ms": report.clock_offset_ms,
        }
        clip = next(
            leaf["body"]
            for leaf in leaves
            if leaf["kind"] == "clip.ingested" and leaf["body"]["recorder_time"]
        )
        recorder_time = datetime.fromisoformat(clip["recorder_time"])
        corrected = datetime.fromisoformat(clip["recorder_time_corrected"])
        # On the station's clock the clip began about 40 minutes before docking, not in 2003.
        local_now = datetime.now(ZoneInfo(station.config.station.time_zone)).replace(tzinfo=None)
        assert abs((local_now - corrected).total_seconds() - 40 * 60) < 600
        shift = (corrected - recorder_time).total_seconds() * 1000
        assert round(shift) == -report.clock_offset_ms
        row = station.conn.execute(
            "SELECT clock_offset_ms FROM docking_sessions WHERE session_id = ?",
            (report.session_id,),
        ).fetchone()
        assert row["clock_offset_ms"] == report.clock_offset_ms
    finally:
        station.close()


def test_each_session_names_its_collector_and_where_that_came_from(
    recorder: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = json.loads(run_cli("ingest", recorder, "--data-dir", data, "--json", check=0).stdout)
    run_cli("assign", "REC0001", "警号 7", "--data-dir", data, "--by", "IT-1", check=0)
    (recorder / "DCIM" / "100MEDIA" / "NEW.MP4").write_bytes(b"new footage")
    second = json.loads(run_cli("ingest", recorder, "--data-dir", data, "--json", check=0).stdout)
    conn = sqlite3.connect(data / "station.db")
    try:
        opened = [
            json.loads(bytes(row[0]))["body"]
            for row in conn.execute(
                "SELECT data FROM ledger_leaves WHERE kind = 'docking.opened' ORDER BY idx"
            )
        ]
    finally:
        conn.close()
    # The simulated recorder's device-info names officer 000123; a person's assignment wins.
    assert (opened[0]["officer"], opened[0]["officer_source"]) == ("000123", "device-info")
    assert (opened[1]["officer"], opened[1]["officer_source"]) == ("警号 7", "assignment")
    assert first["officer"] == "000123" and second["officer"] == "警号 7"
    run_cli("verify", "--data-dir", data, check=0)


def test_deliver_moves_its_sessions_to_safe(recorder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    report = json.loads(run_cli("ingest", recorder, "--data-dir", data, "--json", check=0).stdout)
    conn = sqlite3.connect(data / "station.db")
    phase = "SELECT phase FROM docking_sessions WHERE session_id = ?"
    try:
        assert conn.execute(phase, (report["session_id"],)).fetchone()[0] == "verified"
        out = run_cli("deliver", "--data-dir", data, check=0).stdout
        assert conn.execute(phase, (report["session_id"],)).fetchone()[0] == "safe"
    finally:
        conn.close()
    assert f"now safe: {report['session_id']}" in out


def test_a_recorder_with_five_thousand_small_files_is_ingested_and_recognised_after(
    tmp_path: Path,
) -> None:
    volume = tmp_path / "media" / "REC5000"
    media = volume / "DCIM" / "100MEDIA"
    media.mkdir(parents=True)
    for n in range(5000):
        (media / f"20261122_08{n // 60 % 60:02d}{n % 60:02d}_{n:04d}.LOG").write_bytes(
            n.to_bytes(4, "big") * 64
        )
    station = Station.open(embedded_config(tmp_path / "data"))
    try:
        report = IngestSession(station, volume).run()
        assert report.ok and report.count("new") == 5000
        again = IngestSession(station, volume, recheck="metadata").run()
        assert again.already_safe_in == report.session_id and len(again.outcomes) == 5000
        Daemon(station).checkpoint()
        assert verify_data_dir(station.data_dir).ok
    finally:
        station.close()
