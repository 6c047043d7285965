"""The daemon as a supervisor: every worker's outcome collected, a restart budget, one stop
that reaches every session part-way through a file, removal ending its session, a
checkpoint timer on the monotonic clock, and detection through the detector seam."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_clock import Clock
from gated_source import Gated

import agent.daemon as daemon_module
from agent.daemon import RESTART_DELAYS, RESTART_LIMIT, Daemon
from agent.ingest import STOPPED, STOPPED_MID_FILE
from agent.station import Station, embedded_config
from agent.verification import verify_data_dir
from docking import Docked, DockingEvent, EventCallback, RecorderDetector, Undocked
from hashing import FileSource, open_source

BIG = "DCIM/100MEDIA/0BIG.MP4"  # sorts before the recorder's other files


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    opened = Station.open(
        embedded_config(tmp_path / "data", hashing={"window_mib": 1, "read_size_kib": 256})
    )
    yield opened
    opened.close()


def _with_big(recorder: Path) -> Path:
    (recorder / BIG).write_bytes(os.urandom(8 * 1024 * 1024))
    return recorder


def _gate(station: Station, reached: threading.Event, release: threading.Event) -> None:
    def opener(path: Path) -> FileSource | Gated:
        source = open_source(path)
        if path.name == "0BIG.MP4":
            return Gated(source, 4 * 1024 * 1024, reached, release)
        return source

    station.source_opener = opener


def _session(station: Station, session_id: str) -> tuple[str, list[dict[str, str]]]:
    row = station.conn.execute(
        "SELECT state, problems FROM docking_sessions WHERE session_id = ?", (session_id,)
    ).fetchone()
    return row["state"], json.loads(row["problems"] or "[]")


def _stopped_part_way(station: Station, recorder: Path, stop: str) -> None:
    reached, release = threading.Event(), threading.Event()
    _gate(station, reached, release)
    daemon = Daemon(station)
    try:
        future = daemon.submit(_with_big(recorder))
        assert future is not None
        assert reached.wait(60), "the copy never got part-way"
        if stop == "sigterm":
            daemon.request_stop()
        else:
            daemon.on_event(Undocked(recorder))
        release.set()
        report = future.result(timeout=60)
    finally:
        release.set()
        daemon.close()
    assert report is not None
    outcomes = {o.source_path: o for o in report.outcomes}
    assert outcomes[BIG].status == "skipped" and outcomes[BIG].reason == STOPPED_MID_FILE
    after = [o for o in report.outcomes if o.source_path > BIG and o.status != "refused"]
    assert after and all(o.status == "skipped" and o.reason == STOPPED for o in after)
    assert _session(station, report.session_id)[0] == "incomplete"
    # The part-way copy is kept, not committed: the next docking resumes it.
    assert any(p.suffix == ".part" for p in station.store.staging_dir.iterdir())
    station.source_opener = open_source
    again = Daemon(station)
    try:
        second = again.ingest_all([recorder])[0]
    finally:
        again.close()
    assert second is not None and second.ok
    big = next(o for o in second.outcomes if o.source_path == BIG)
    assert big.status == "new" and big.resumed_bytes >= 2 * 1024 * 1024
    again.checkpoint()
    assert verify_data_dir(station.data_dir).ok


def test_a_stop_abandons_the_file_part_way_and_starts_no_other(
    station: Station, recorder: Path
) -> None:
    _stopped_part_way(station, recorder, "sigterm")


def test_removing_the_recorder_ends_its_session(station: Station, recorder: Path) -> None:
    _stopped_part_way(station, recorder, "undocked")


def test_a_mount_folder_whose_name_is_not_utf8_is_ingested(
    station: Station, recorder: Path
) -> None:
    odd = Path(os.fsdecode(os.path.join(os.fsencode(recorder.parent), b"REC\xff\xfe")))
    shutil.move(recorder, odd)
    daemon = Daemon(station)
    try:
        report = daemon.ingest_all([odd])[0]
    finally:
        daemon.close()
    assert daemon.failures == []
    assert report is not None and report.ok and report.count("new") > 0
    assert _session(station, report.session_id)[0] == "closed"
    daemon.checkpoint()
    assert verify_data_dir(station.data_dir).ok


def test_an_unexpected_error_closes_the_session_and_the_volume_is_retried_within_a_budget(
    station: Station,
    recorder: Path,
    recorder_template: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(path: Path) -> FileSource:
        if path.name == "0BIG.MP4":
            raise RuntimeError("a bug in a reader")
        return open_source(path)

    station.source_opener = broken
    clock = Clock()
    daemon = Daemon(station, clock=clock)
    try:
        first = daemon.submit(_with_big(recorder))
        assert first is not None and first.result(timeout=60) is None
        for attempt in range(1, RESTART_LIMIT):
            assert len(daemon.failures) == attempt
            failure = daemon.failures[-1]
            assert failure.session_id and "RuntimeError: a bug in a reader" in failure.error
            state, problems = _session(station, failure.session_id)
            assert state == "incomplete" and "RuntimeError" in problems[0]["reason"]
            assert daemon.retry_due() == []  # not before its back-off
            clock.now += RESTART_DELAYS[attempt - 1]
            assert daemon.retry_due() == [recorder]
            while recorder in daemon.active:
                threading.Event().wait(0.05)
        assert len(daemon.failures) == RESTART_LIMIT
        clock.now += max(RESTART_DELAYS)
        assert daemon.retry_due() == []  # the budget is spent: left until docked again
        assert "not tried again until the recorder is docked again" in caplog.text
        assert "Traceback" not in "".join(f.error for f in daemon.failures)
        # The daemon still works for the next recorder.
        good = tmp_path / "mount2" / "RECGOOD"
        shutil.copytree(recorder_template, good)
        report = daemon.ingest_all([good])[0]
        assert report is not None and report.ok
        # A new docking of the failed recorder gets a fresh budget.
        daemon.on_event(Docked(recorder))
        while recorder in daemon.active:
            threading.Event().wait(0.05)
        assert len(daemon.failures) == RESTART_LIMIT + 1
    finally:
        daemon.close()
    daemon.checkpoint()
    assert verify_data_dir(station.data_dir).ok


def test_the_checkpoint_timer_counts_seconds_not_loop_passes(station: Station) -> None:
    clock = Clock()
    daemon = Daemon(station, clock=clock)
    signed: list[float] = []
    daemon.checkpoint = lambda: signed.append(clock.now)  # type: ignore[method-assign]
    interval = station.config.ledger.checkpoint_minutes * 60
    try:
        for _ in range(100):  # many passes, no time: no checkpoint
            daemon.tick()
        assert signed == []
        clock.now += interval - 1
        daemon.tick()
        assert signed == []
        clock.now += 1
        daemon.tick()
        daemon.tick()
        assert signed == [clock.now]
        clock.now += interval
        daemon.tick()
        assert len(signed) == 2
    finally:
        daemon.close()


class StandIn:
    """A detector behind the RecorderDetector seam, driven by the test (as a USB detector
    will be driven by udev)."""

    def __init__(self, on_event: EventCallback) -> None:
        self.on_event = on_event
        self.started = threading.Event()
        self.stopped = False

    def start(self) -> None:
        self.started.set()

    def stop(self, timeout: float | None = None) -> None:
        self.stopped = True

    @property
    def running(self) -> bool:
        return self.started.is_set() and not self.stopped


def test_the_daemon_takes_its_detector_through_the_seam_and_delivers_off_its_loop(
    station: Station, recorder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon_module, "DELIVERY_SECONDS", 0.05)
    monkeypatch.setattr(daemon_module, "TICK_SECONDS", 0.05)
    made: list[StandIn] = []

    def factory(on_event: EventCallback) -> RecorderDetector:
        made.append(StandIn(on_event))
        return made[-1]

    daemon = Daemon(station, detector_factory=factory)
    runner = threading.Thread(target=daemon.run_forever, name="test-daemon")
    runner.start()
    try:
        assert _wait(lambda: bool(made) and made[0].started.is_set())
        event: DockingEvent = Docked(recorder)
        made[0].on_event(event)
        assert _wait(lambda: len(daemon.reports) == 1)
        clips = daemon.reports[0].count("new")
        assert _wait(lambda: _uploaded(station) == clips)
    finally:
        daemon.request_stop()
        runner.join(60)
    assert not runner.is_alive() and made[0].stopped
    assert daemon.reports[0].ok


def _uploaded(station: Station) -> int:
    row = station.conn.execute(
        "SELECT count(*) FROM ledger_leaves WHERE kind = 'clip.uploaded'"
    ).fetchone()
    return int(row[0])


def _wait(condition: object, seconds: float = 60.0) -> bool:
    pause = threading.Event()
    for _ in range(int(seconds / 0.05)):
        if condition():  # type: ignore[operator]
            return True
        pause.wait(0.05)
    return False
