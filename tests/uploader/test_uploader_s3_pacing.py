"""The bandwidth limit paces S3 puts from within, on the throttle's fake clock, against a
real Ceph RGW: a single PUT and each part report their bytes as they are sent, so the
waits fall while the request is under way, not after it; a resumed upload is charged
only for the parts it sends, never for the parts it re-uses. No timed asserts: the
clock is the test's."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services import Rgw
from station_cli import run_cli

from agent.delivery import deliver_due, delivery_target
from agent.station import Station
from config import load_config
from uploader import (
    Confirmation,
    HeldAnchor,
    PutProgress,
    S3Confirmation,
    S3Target,
    Target,
    Throttle,
    UploadState,
)
from uploader.target import HeldObject

MIB = 1024 * 1024
MB = 1_000_000


class FakeClock:
    """Monotonic seconds and the wall clock moving together; sleeping moves both."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.start = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
        self.slept: list[tuple[float, bool]] = []  # (seconds, while a put was under way)
        self.putting = False

    def monotonic(self) -> float:
        return self.seconds

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    def sleep(self, seconds: float, stop: threading.Event | None) -> None:
        self.slept.append((seconds, self.putting))
        self.seconds += seconds

    def throttle(self, rate: int | None) -> Throttle:
        return Throttle(lambda moment: rate, clock=self.monotonic, wall=self.wall, sleep=self.sleep)


class _Watched:
    """The station's own S3 target; notes when a put is under way, and may set ``stop``
    once the upload's state holds ``stop_after`` parts."""

    def __init__(self, inner: Target, clock: FakeClock, stop_after: int = -1) -> None:
        assert isinstance(inner, S3Target)
        self.inner, self.name, self.clock = inner, inner.name, clock
        self.stop_after = stop_after
        self.stop = threading.Event()
        self.confirmations: list[S3Confirmation] = []

    def head(self, sha256: str) -> Confirmation | None:
        return self.inner.head(sha256)

    def put_anchor(self, name: str, text: str, *, prefix: str | None = None) -> str:
        return self.inner.put_anchor(name, text, prefix=prefix)

    def anchors(self, station_id: str | None = None) -> list[HeldAnchor]:
        return self.inner.anchors(station_id)

    def held(self, sha256: str, version_id: str | None = None) -> HeldObject | None:
        return self.inner.held(sha256, version_id)

    def read_range(
        self, sha256: str, offset: int, length: int, version_id: str | None = None
    ) -> bytes:
        return self.inner.read_range(sha256, offset, length, version_id)

    def put(
        self,
        sha256: str,
        source: Path,
        meta: Mapping[str, Any],
        *,
        state: UploadState | None = None,
        progress: PutProgress | None = None,
        stop: threading.Event | None = None,
    ) -> Confirmation:
        def hook(sent: int, saved: UploadState | None) -> None:
            if progress is not None:
                progress(sent, saved)
            if saved is not None and len(saved.parts) == self.stop_after:
                self.stop.set()

        self.clock.putting = True
        try:
            done = self.inner.put(sha256, source, meta, state=state, progress=hook, stop=stop)
        finally:
            self.clock.putting = False
        self.confirmations.append(done)
        return done


def _station(tmp_path: Path, rgw: Rgw, clip_size: int) -> Station:
    bucket = f"pace-{uuid.uuid4().hex[:16]}"
    rgw.client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    keys = tmp_path / "s3-key"
    keys.write_text(
        f"aws_access_key_id = {rgw.access_key}\naws_secret_access_key = {rgw.secret_key}\n"
    )
    keys.chmod(0o600)
    config = tmp_path / "station.toml"
    config.write_text(
        '[station]\nid = "pace-01"\n'
        f'[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        '[delivery]\ntarget = "s3"\n'
        f's3_endpoint = "{rgw.endpoint}"\ns3_bucket = "{bucket}"\n'
        f's3_credentials = "{keys}"\ns3_part_size_mib = 5\nlock_days = 1\n',
        "utf-8",
    )
    rec = tmp_path / "rec" / "DCIM" / "100MEDIA"
    rec.mkdir(parents=True)
    (rec / "V0000.MP4").write_bytes(os.urandom(clip_size))
    run_cli("ingest", tmp_path / "rec", "--config", config, check=0)
    return Station.open(load_config(config), config_file=config)


def test_a_single_put_and_each_part_are_paced_while_they_are_sent(rgw: Rgw, tmp_path: Path) -> None:
    for size in (4 * MIB + 17, 12 * MIB):  # one PUT below the 5 MiB part size; 3 parts
        folder = tmp_path / str(size)
        folder.mkdir()
        clock = FakeClock()
        station = _station(folder, rgw, size)
        try:
            target = _Watched(delivery_target(station), clock)
            report = deliver_due(station, station.conn, target, throttle=clock.throttle(MB))
        finally:
            station.close()
        assert report.delivered == 1 and report.ok
        # every byte paid for at 1 MB/s (less the one second of burst), no more
        assert (size - MB) / MB - 1e-6 <= clock.seconds <= size / MB + 1e-6
        # ... a MiB at a time, while the request was under way, not once it was done
        assert len(clock.slept) >= size // MIB - 2
        assert all(during for _, during in clock.slept), clock.slept


def test_a_resumed_upload_is_charged_only_for_the_parts_it_sends(rgw: Rgw, tmp_path: Path) -> None:
    size = 17 * MIB  # parts of 5, 5, 5 and 2 MiB
    station = _station(tmp_path, rgw, size)
    try:
        clock = FakeClock()
        first = _Watched(delivery_target(station), clock, stop_after=2)
        report = deliver_due(
            station, station.conn, first, stop=first.stop, throttle=clock.throttle(None)
        )
        assert report.delivered == 0 and first.confirmations == []
        (saved,) = station.conn.execute("SELECT parts FROM upload_jobs").fetchone()
        assert saved is not None and saved.count('"number"') == 2

        again = _Watched(delivery_target(station), clock)
        report = deliver_due(station, station.conn, again, throttle=clock.throttle(MB))
    finally:
        station.close()
    assert report.delivered == 1
    (done,) = again.confirmations
    assert (done.parts_reused, done.parts_sent) == (2, 2)
    sent = 5 * MIB + 2 * MIB  # parts 3 and 4; parts 1 and 2 were re-used
    assert (sent - MB) / MB - 1e-6 <= clock.seconds <= sent / MB + 1e-6
