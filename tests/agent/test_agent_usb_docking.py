"""USB docking end to end: `evidock run` finds a recorder on the (simulated) USB bus,
mounts it read-only itself, ingests it and says so; a recorder pulled mid-copy ends its
session incomplete, and docking it again finishes the copy.

The bus is simulated (no USB hardware exists here); the sysfs reader, the mounter, every
mount, the daemon and the copy engine are the station's own."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gated_source import Gated
from station_cli import REPO, run_cli

from agent.daemon import Daemon
from agent.station import Station, embedded_config
from agent.verification import verify_data_dir
from docking import EventCallback
from docking.mounting import SystemMounter
from docking.simulated_usb import SimulatedUsbBus, example_profile_for
from docking.usb import UsbDetector
from hashing import FileSource, open_source

RECORDER_ID = (0xFFFF, 0x0001)  # the generic profile's example ids


@pytest.fixture
def mount_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "media"
    root.mkdir()
    yield root
    for _ in range(4):  # whatever a failing test left mounted
        for point in SystemMounter().mounts_under(root):
            subprocess.run(["umount", "-l", os.fspath(point)], check=False)
    assert SystemMounter().mounts_under(root) == []


def _kinds(data: Path) -> list[str]:
    try:
        conn = sqlite3.connect(data / "station.db", timeout=5)
        try:
            return [r[0] for r in conn.execute("SELECT kind FROM ledger_leaves ORDER BY idx")]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return []


def _plug(bus: SimulatedUsbBus, port: str, source: Path) -> None:
    """A recorder of the generic profile (its example ids), serial REC0001, into ``port``."""
    bus.plug(
        port, vendor_id=RECORDER_ID[0], product_id=RECORDER_ID[1], source=source, serial="REC0001"
    )


def _until(condition: object, seconds: float = 60.0) -> float | None:
    """Seconds until ``condition()`` held (polled every 20 ms), None if it never did."""
    start = time.monotonic()
    pause = threading.Event()
    while time.monotonic() - start < seconds:
        if condition():  # type: ignore[operator]
            return time.monotonic() - start
        pause.wait(0.02)
    return None


def test_evidock_run_finds_mounts_read_only_and_ingests_a_usb_recorder(
    recorder_template: Path, tmp_path: Path, mount_root: Path
) -> None:
    bus = SimulatedUsbBus(tmp_path / "bus")
    data = tmp_path / "data"
    config = tmp_path / "station.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{data}"\n'
        f'[docking]\nmount_root = "{mount_root}"\ndetector = "usb"\nusb_poll_seconds = 0.25\n'
        f'usb_sysfs_root = "{bus.sys_root}"\nusb_dev_root = "{bus.root / "dev"}"\n'
        'usb_example_ids = true\n[docking.slots]\n"1-1.3" = 3\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n',
        "utf-8",
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert _until(lambda: "station.booted" in _kinds(data)) is not None
        # A copy: the station wipes the recorder once its clips are safe centrally.
        source = tmp_path / "REC0001"
        shutil.copytree(recorder_template, source)
        _plug(bus, "1-1.3", source)
        seen = _until(lambda: "docking.opened" in _kinds(data), 30)
        assert seen is not None, "the daemon never opened a session"
        slot = mount_root / "3"
        # The station mounted the recorder read-only: the kernel refuses a write.
        with pytest.raises(OSError) as refused:
            (slot / "written-by-the-station").write_bytes(b"x")
        assert refused.value.errno == errno.EROFS
        assert _until(lambda: "docking.closed" in _kinds(data), 60) is not None
        files = len([p for p in recorder_template.rglob("*") if p.is_file()])
        assert _until(lambda: _kinds(data).count("clip.uploaded") == files, 60) is not None
        # Safe centrally: the station wipes the recorder (read-write for the wipe only).
        assert _until(lambda: "recorder.wiped" in _kinds(data), 30) is not None
        # The leaf is written first (evidence before removal), then the files go.
        assert _until(lambda: not list((source / "DCIM").rglob("*.MP4")), 30) is not None
        assert (source / "DEVICE.INF").exists()
        bus.unplug("1-1.3")
        assert _until(lambda: SystemMounter().mounts_under(mount_root) == [], 10) is not None
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, out
    assert "recorder docked at slot 3" in out
    assert "slot 3: safe, take it" in out and "files wiped from the recorder" in out
    assert "Traceback" not in out
    sessions = run_cli("sessions", "--data-dir", data, check=0).stdout
    assert "removed" in sessions or "safe" in sessions, sessions
    run_cli("verify", "--data-dir", data, check=0)


def test_a_recorder_pulled_mid_copy_ends_its_session_incomplete_and_redocking_finishes(
    recorder: Path, tmp_path: Path, mount_root: Path
) -> None:
    big = recorder / "DCIM" / "100MEDIA" / "0BIG.MP4"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    station = Station.open(
        embedded_config(tmp_path / "data", hashing={"window_mib": 1, "read_size_kib": 256})
    )
    reached, release = threading.Event(), threading.Event()

    def opener(path: Path) -> FileSource | Gated:
        source = open_source(path)
        return (
            Gated(source, 2 * 1024 * 1024, reached, release) if path.name == "0BIG.MP4" else source
        )

    station.source_opener = opener
    bus = SimulatedUsbBus(tmp_path / "bus")
    detectors: list[UsbDetector] = []

    def factory(on_event: EventCallback) -> UsbDetector:
        detectors.append(
            UsbDetector(
                on_event,
                station.config.docking.model_copy(update={"mount_root": mount_root}),
                bus=bus,
                profile_for=example_profile_for,
            )
        )
        return detectors[-1]

    daemon = Daemon(station, detector_factory=factory)
    detector = factory(daemon.on_event)
    detector.start(worker=False)
    try:
        _plug(bus, "1-1.4", recorder)
        detector.step()
        assert reached.wait(60), "the copy never got part-way"
        bus.unplug("1-1.4")  # pulled out
        detector.step()  # Undocked: the session is told to stop
        release.set()
        daemon.close()  # waits for the session
        (first,) = daemon.reports
        assert not first.ok
        big_outcome = next(o for o in first.outcomes if o.source_path.endswith("0BIG.MP4"))
        assert big_outcome.status == "skipped" and "docking it again resumes" in (
            big_outcome.reason or ""
        )
        row = station.conn.execute(
            "SELECT state FROM docking_sessions WHERE session_id = ?", (first.session_id,)
        ).fetchone()
        assert row["state"] == "incomplete"
        # Docked again: the copy resumes and the session finishes.
        station.source_opener = open_source
        again = Daemon(station, detector_factory=factory)
        detector.stop()
        detector2 = factory(again.on_event)
        detector2.start(worker=False)
        _plug(bus, "1-1.4", recorder)
        detector2.step()
        again.close()
        (second,) = again.reports
        assert second.ok
        resumed = next(o for o in second.outcomes if o.source_path.endswith("0BIG.MP4"))
        assert resumed.status == "new" and resumed.resumed_bytes >= 1024 * 1024
        again.checkpoint()
        assert verify_data_dir(station.data_dir).ok
    finally:
        release.set()
        for made in detectors:
            made.stop()
        station.close()


def test_a_safe_recorder_in_its_slot_is_wiped_by_the_policy_and_only_then(
    recorder: Path, tmp_path: Path, mount_root: Path
) -> None:
    station = Station.open(embedded_config(tmp_path / "data"))
    bus = SimulatedUsbBus(tmp_path / "bus")
    docking = station.config.docking.model_copy(update={"mount_root": mount_root})
    daemon = Daemon(station)
    detector = UsbDetector(daemon.on_event, docking, bus=bus, profile_for=example_profile_for)
    daemon.detector = detector
    detector.start(worker=False)
    footage = sorted(p for p in (recorder / "DCIM").rglob("*") if p.is_file())
    try:
        _plug(bus, "1-1.2", recorder)
        detector.step()
        daemon.close()  # waits for the session and what follows it
        (report,) = daemon.reports
        # Verified, not yet confirmed centrally: under the default policy nothing goes.
        daemon.advance_phases()
        assert all(p.exists() for p in footage)
        assert daemon.deliver().ok
        daemon.advance_phases()  # safe: the station wipes the recorder in its slot
        left = [p for p in footage if p.exists()]
        # Every copied clip is gone; a file the policy keeps (flagged) stays.
        flagged = {o.source_path for o in report.outcomes if o.warning}
        assert {str(p.relative_to(recorder)) for p in left} == flagged
        assert (recorder / "DEVICE.INF").exists()  # the recorder's identity stays
        row = station.conn.execute(
            "SELECT phase FROM docking_sessions WHERE session_id = ?", (report.session_id,)
        ).fetchone()
        assert row["phase"] == "wiped"
        kinds = [r[0] for r in station.conn.execute("SELECT kind FROM ledger_leaves")]
        assert kinds.count("recorder.wiped") == 1
        # The mount is read-only again after the wipe.
        with pytest.raises(OSError) as refused:
            (mount_root / "1-1.2" / "x").write_bytes(b"x")
        assert refused.value.errno == errno.EROFS
    finally:
        daemon.close()
        detector.stop()
    daemon.checkpoint()
    assert verify_data_dir(station.data_dir).ok
    station.close()
