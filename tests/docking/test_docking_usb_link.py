"""A simulated recorder's USB link: real files read through the station's own opener, at
the link's modeled pace, on a clock the test drives (no wall-clock timing)."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path

import pytest

from docking import USB2_RATE, SimulatorError, UsbLink, link_opener
from hashing import (
    CopyEngine,
    EvidenceStore,
    FileSource,
    HashOptions,
    NotRegularFileError,
    SourceReadError,
    open_source,
)

MB = 1_000_000


class DrivenClock:
    """A clock whose ``sleep`` moves it instead of waiting (thread-safe: the engine's
    read-ahead thread reads); ``frozen`` keeps it still and records each wait instead."""

    def __init__(self, *, frozen: bool = False) -> None:
        self.now = 0.0
        self.frozen = frozen
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        with self._lock:
            self.waits.append(seconds)
            if not self.frozen:
                self.now += seconds


def recorder(root: Path, files: dict[str, int]) -> dict[str, bytes]:
    written = {}
    for name, size in files.items():
        path = root / "DCIM" / "100MEDIA" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        written[name] = os.urandom(size)
        path.write_bytes(written[name])
    return written


def read_all(opener: object, path: Path, chunk: int) -> tuple[bytes, int]:
    """Every byte of ``path`` through ``opener``, and how many reads returned bytes."""
    assert callable(opener)
    src = opener(path)
    out, offset, reads = bytearray(), 0, 0
    try:
        while True:
            buffer = bytearray(chunk)
            got = src.read_into(memoryview(buffer), offset)
            if got == 0:
                return bytes(out), reads
            out += buffer[:got]
            offset += got
            reads += 1
    finally:
        src.close()


def test_the_bytes_read_through_a_link_are_the_files_bytes(tmp_path: Path) -> None:
    root = tmp_path / "REC01"
    written = recorder(root, {"A.MP4": 3 * MB + 17, "A.NMEA": 5_000, "EMPTY.JSON": 0})
    clock = DrivenClock()
    link = UsbLink(USB2_RATE, jitter=0.2, seed=3, clock=clock, sleep=clock.sleep)
    opener = link_opener({root: link}, inner=open_source)
    for name, data in written.items():
        for chunk in (4096, 65_536, 1 << 20):
            got, _ = read_all(opener, root / "DCIM" / "100MEDIA" / name, chunk)
            assert got == data


def test_the_engine_copies_exactly_through_a_link(tmp_path: Path) -> None:
    root = tmp_path / "REC01"
    data = recorder(root, {"A.MP4": 5 * MB + 3})["A.MP4"]
    clock = DrivenClock()
    link = UsbLink(USB2_RATE, seed=1, clock=clock, sleep=clock.sleep)
    engine = CopyEngine(
        EvidenceStore(tmp_path / "store"),
        HashOptions(read_size=1 << 20, window_size=2 << 20),
        open_source=link_opener({root: link}, inner=open_source),
    )
    result = engine.copy(root / "DCIM" / "100MEDIA" / "A.MP4")
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.path.read_bytes() == data
    assert link.bytes == len(data)


def test_k_bytes_take_k_over_the_rate_plus_a_latency_per_request(tmp_path: Path) -> None:
    root = tmp_path / "REC01"
    size = 10 * MB + 5
    recorder(root, {"A.MP4": size})
    path = root / "DCIM" / "100MEDIA" / "A.MP4"
    clock = DrivenClock()
    link = UsbLink(USB2_RATE, latency_s=0.0005, jitter=0.0, clock=clock, sleep=clock.sleep)
    _, reads = read_all(link_opener({root: link}, inner=open_source), path, 1 << 20)
    assert reads == 10 and link.requests == reads
    assert clock.now == pytest.approx(size / USB2_RATE + reads * 0.0005, rel=1e-9)


def test_jitter_stays_within_its_bounds_and_is_the_same_for_the_same_seed(
    tmp_path: Path,
) -> None:
    root = tmp_path / "REC01"
    size = 40 * MB
    recorder(root, {"A.MP4": size})
    path = root / "DCIM" / "100MEDIA" / "A.MP4"

    def modeled(seed: int) -> float:
        clock = DrivenClock()
        link = UsbLink(
            USB2_RATE, latency_s=0.001, jitter=0.2, jitter_period_s=0.1, seed=seed,
            clock=clock, sleep=clock.sleep,
        )  # fmt: skip
        _, reads = read_all(link_opener({root: link}, inner=open_source), path, 1 << 20)
        transfer = clock.now - reads * 0.001
        assert size / (USB2_RATE * 1.2) <= transfer <= size / (USB2_RATE * 0.8)
        return clock.now

    first = modeled(7)
    assert modeled(7) == first
    assert modeled(8) != first
    assert first != pytest.approx(size / USB2_RATE + 40 * 0.001, rel=1e-6)


def test_two_files_on_one_link_share_its_rate(tmp_path: Path) -> None:
    root = tmp_path / "REC01"
    recorder(root, {"A.MP4": 4 * MB, "B.MP4": 4 * MB})
    clock = DrivenClock(frozen=True)  # both files asked for at once: the waits are deadlines
    link = UsbLink(USB2_RATE, latency_s=0.0, jitter=0.0, clock=clock, sleep=clock.sleep)
    opener = link_opener({root: link}, inner=open_source)
    deadlines = interleaved(
        opener, clock, root / "DCIM" / "100MEDIA" / "A.MP4", root / "DCIM" / "100MEDIA" / "B.MP4"
    )
    assert max(deadlines) == pytest.approx(8 * MB / USB2_RATE)
    assert deadlines == sorted(deadlines)


def test_two_links_are_independent(tmp_path: Path) -> None:
    one, two = tmp_path / "REC01", tmp_path / "REC02"
    recorder(one, {"A.MP4": 4 * MB})
    recorder(two, {"A.MP4": 4 * MB})
    clock = DrivenClock(frozen=True)
    links = {
        root: UsbLink(USB2_RATE, latency_s=0.0, jitter=0.0, clock=clock, sleep=clock.sleep)
        for root in (one, two)
    }
    opener = link_opener(links, inner=open_source)
    deadlines = interleaved(
        opener, clock, one / "DCIM" / "100MEDIA" / "A.MP4", two / "DCIM" / "100MEDIA" / "A.MP4"
    )
    assert max(deadlines) == pytest.approx(4 * MB / USB2_RATE)
    assert links[one].bytes == links[two].bytes == 4 * MB


def interleaved(opener: object, clock: DrivenClock, first: Path, second: Path) -> list[float]:
    """Read two files a MB at a time, turn about, at one instant of a frozen clock; the
    waits the links asked for (each the time its bytes arrive)."""
    assert callable(opener)
    files = [opener(first), opener(second)]
    try:
        offset, buffer = 0, memoryview(bytearray(MB))
        while sum([f.read_into(buffer, offset) for f in files]):
            offset += MB
    finally:
        for f in files:
            f.close()
    return list(clock.waits)


def test_an_idle_link_earns_no_credit(tmp_path: Path) -> None:
    root = tmp_path / "REC01"
    recorder(root, {"A.MP4": 2 * MB})
    clock = DrivenClock()
    link = UsbLink(USB2_RATE, latency_s=0.0, jitter=0.0, clock=clock, sleep=clock.sleep)
    src = link_opener({root: link}, inner=open_source)(root / "DCIM" / "100MEDIA" / "A.MP4")
    try:
        buffer = memoryview(bytearray(MB))
        src.read_into(buffer, 0)
        clock.now += 60.0  # the link sat idle for a minute
        before = clock.now
        src.read_into(buffer, MB)
        assert clock.now - before == pytest.approx(MB / USB2_RATE)
    finally:
        src.close()


def test_end_of_file_and_short_reads_pass_through_and_cost_only_their_bytes(
    tmp_path: Path,
) -> None:
    root = tmp_path / "REC01"
    data = recorder(root, {"A.MP4": MB + 100})["A.MP4"]
    clock = DrivenClock()
    link = UsbLink(USB2_RATE, latency_s=0.001, jitter=0.0, clock=clock, sleep=clock.sleep)
    src = link_opener({root: link}, inner=open_source)(root / "DCIM" / "100MEDIA" / "A.MP4")
    try:
        buffer = bytearray(MB)
        assert src.read_into(memoryview(buffer), MB) == 100  # short: the file ends
        assert bytes(buffer[:100]) == data[MB:]
        assert clock.now == pytest.approx(0.001 + 100 / USB2_RATE)
        assert src.read_into(memoryview(buffer), MB + 100) == 0  # end of file: free
        assert (link.requests, link.bytes) == (1, 100)
    finally:
        src.close()


class FailingAt:
    """The real file, but the read at ``offset`` fails like a recorder pulled out."""

    def __init__(self, inner: FileSource, offset: int, error: OSError) -> None:
        self.inner, self.offset, self.error = inner, offset, error

    def stat(self) -> os.stat_result:
        return self.inner.stat()

    def read_into(self, buffer: memoryview, offset: int) -> int:
        if offset >= self.offset:
            raise self.error
        return self.inner.read_into(buffer, offset)

    def close(self) -> None:
        self.inner.close()


def test_an_inner_read_error_passes_through_unchanged(tmp_path: Path) -> None:
    root = tmp_path / "REC01"
    recorder(root, {"A.MP4": 3 * MB})
    error = OSError(errno.EIO, "Input/output error")

    def failing(path: Path, *, beneath: Path) -> FailingAt:
        return FailingAt(open_source(path, beneath=beneath), 2 * MB, error)

    clock = DrivenClock()
    link = UsbLink(USB2_RATE, latency_s=0.0, jitter=0.0, clock=clock, sleep=clock.sleep)
    opener = link_opener({root: link}, inner=failing)
    src = opener(root / "DCIM" / "100MEDIA" / "A.MP4")
    try:
        with pytest.raises(OSError) as raised:
            src.read_into(memoryview(bytearray(MB)), 2 * MB)
        assert raised.value is error
        assert link.requests == 0
    finally:
        src.close()
    engine = CopyEngine(EvidenceStore(tmp_path / "store"), HashOptions(), open_source=opener)
    with pytest.raises(SourceReadError, match="Input/output error"):
        engine.copy(root / "DCIM" / "100MEDIA" / "A.MP4")


def test_a_path_on_no_link_is_refused_not_read_at_disk_speed(tmp_path: Path) -> None:
    root, other = tmp_path / "REC01", tmp_path / "REC02"
    recorder(root, {"A.MP4": 10})
    recorder(other, {"A.MP4": 10})
    opener = link_opener({root: UsbLink(USB2_RATE)}, inner=open_source)
    with pytest.raises(SimulatorError, match="give link_opener a UsbLink"):
        opener(other / "DCIM" / "100MEDIA" / "A.MP4")


def test_the_deepest_volume_root_chooses_the_link(tmp_path: Path) -> None:
    outer = tmp_path / "dock"
    inner_root = outer / "REC01"
    recorder(inner_root, {"A.MP4": 1000})
    clock = DrivenClock()
    links = {
        root: UsbLink(USB2_RATE, jitter=0.0, clock=clock, sleep=clock.sleep)
        for root in (outer, inner_root)
    }
    read_all(link_opener(links, inner=open_source), inner_root / "DCIM" / "100MEDIA" / "A.MP4", MB)
    assert (links[outer].bytes, links[inner_root].bytes) == (0, 1000)


def test_a_folder_swapped_for_a_link_below_the_root_is_refused(tmp_path: Path) -> None:
    # The station's own opener guards every name below the volume's root; the link
    # opener hands it the root, so a test or benchmark through a link keeps that guard.
    root = tmp_path / "REC01"
    recorder(root, {"A.MP4": 10})
    elsewhere = tmp_path / "station-files"
    recorder(elsewhere, {"A.MP4": 10})
    (root / "DCIM" / "100MEDIA" / "A.MP4").unlink()
    (root / "DCIM" / "100MEDIA").rmdir()
    (root / "DCIM" / "100MEDIA").symlink_to(elsewhere / "DCIM" / "100MEDIA")
    opener = link_opener({root: UsbLink(USB2_RATE)}, inner=open_source)
    with pytest.raises(NotRegularFileError, match="symbolic link"):
        opener(root / "DCIM" / "100MEDIA" / "A.MP4")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate_bytes_per_s": 0}, "rate above 0"),
        ({"rate_bytes_per_s": 1, "latency_s": -1}, "latency"),
        ({"rate_bytes_per_s": 1, "jitter": 1.0}, "jitter"),
        ({"rate_bytes_per_s": 1, "jitter_period_s": 0}, "jitter_period_s"),
    ],
)
def test_a_link_refuses_settings_that_model_nothing(
    options: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        UsbLink(**options)  # type: ignore[arg-type]


def test_a_stop_event_as_the_sleep_ends_a_long_wait(tmp_path: Path) -> None:
    # 1 byte/s: 1000 bytes would wait a quarter of an hour; the station's stop ends it.
    root = tmp_path / "REC01"
    data = recorder(root, {"A.MP4": 1000})["A.MP4"]
    stop = threading.Event()
    link = UsbLink(1.0, jitter=0.0, sleep=stop.wait)
    src = link_opener({root: link}, inner=open_source)(root / "DCIM" / "100MEDIA" / "A.MP4")
    buffer = bytearray(4096)
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.append(src.read_into(memoryview(buffer), 0)))
    try:
        reader.start()
        stop.set()
        reader.join(timeout=60)
        assert not reader.is_alive()
        assert got == [1000] and bytes(buffer[:1000]) == data
    finally:
        stop.set()
        reader.join()
        src.close()
