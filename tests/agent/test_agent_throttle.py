"""The bandwidth limit on a fake clock: the token bucket keeps its rate for pieces of any
size and for several takers at once, follows the schedule across midnight in the
station's time zone, and paces the bytes a real put sends; rates and windows in the
config are checked with what to write. No timed asserts: the clock is the test's."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from station_cli import run_cli

from agent.delivery import deliver_due, delivery_target
from agent.station import Station
from config import load_config
from config.delivery import BandwidthWindow, parse_rate, rate_at
from uploader import Throttle

MB = 1_000_000


class FakeClock:
    """Monotonic seconds and the wall clock moving together; sleeping moves both."""

    def __init__(self, wall: datetime) -> None:
        self.seconds = 0.0
        self.start = wall
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.seconds

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    def sleep(self, seconds: float, stop: threading.Event | None) -> None:
        self.slept.append(seconds)
        self.seconds += seconds


def _throttle(clock: FakeClock, rate: object) -> Throttle:
    return Throttle(
        rate if callable(rate) else (lambda moment: rate),  # type: ignore[arg-type,return-value]
        clock=clock.monotonic,
        wall=clock.wall,
        sleep=clock.sleep,
    )


@pytest.mark.parametrize("piece", [64 * 1024, 1024 * 1024, 16 * 1024 * 1024])
def test_the_bucket_keeps_its_rate_for_pieces_of_any_size(piece: int) -> None:
    clock = FakeClock(datetime(2026, 11, 22, 4, 0, tzinfo=UTC))
    throttle = _throttle(clock, 2 * MB)
    total = 200 * MB
    for _ in range(total // piece):
        throttle.take(piece)
    sent = (total // piece) * piece
    # one second of burst at most, and never slower than the rate (less one piece)
    assert (sent - 2 * MB) / (2 * MB) - 1e-6 <= clock.seconds
    assert clock.seconds <= sent / (2 * MB) + 1e-6


def test_two_takers_share_one_limit() -> None:
    clock = FakeClock(datetime(2026, 11, 22, 4, 0, tzinfo=UTC))
    throttle = _throttle(clock, 1 * MB)
    waits = {"a": 0.0, "b": 0.0}
    for _ in range(50):  # two workers taking turns: together, not each, at the rate
        for who in waits:
            waits[who] += throttle.take(MB)
    assert 99.0 - 1e-6 <= clock.seconds <= 100.0 + 1e-6
    assert waits["a"] > 0 and waits["b"] > 0


def test_a_debt_is_waited_for_by_the_next_taker_too() -> None:
    clock = FakeClock(datetime(2026, 11, 22, 4, 0, tzinfo=UTC))
    # Sleeping moves no time here: every take comes at the same moment, as from threads.
    throttle = Throttle(lambda moment: MB, clock=clock.monotonic, wall=clock.wall,
                        sleep=lambda seconds, stop: None)  # fmt: skip
    throttle.take(MB)  # the full bucket
    # Two takers at the same moment (neither has slept yet): the second waits for both.
    first = throttle.take(3 * MB)
    second = throttle.take(MB)
    assert (first, second) == (3.0, 4.0)


def test_unlimited_waits_for_nothing_and_saves_nothing_up() -> None:
    clock = FakeClock(datetime(2026, 11, 22, 4, 0, tzinfo=UTC))
    throttle = _throttle(clock, None)
    assert all(throttle.take(100 * MB) == 0.0 for _ in range(10))
    assert clock.slept == []


def test_the_schedule_is_followed_across_midnight_in_the_stations_zone() -> None:
    # 20 Mbit/s by day, full speed 20:00-07:00 Beijing time.
    window = BandwidthWindow.model_validate({"from": "20:00", "to": "07:00", "rate": "unlimited"})
    schedule = (window,)

    def rate(moment: datetime) -> int | None:
        return rate_at("20Mbit", schedule, "Asia/Shanghai", moment)

    # 19:59 in Beijing is 11:59 UTC; then each hour on to 07:59 the next morning
    clock = FakeClock(datetime(2026, 11, 22, 11, 59, tzinfo=UTC))
    throttle = _throttle(clock, rate)
    day_rate = 20 * MB // 8
    paced = []
    for hour in range(13):
        clock.seconds = hour * 3600.0
        local = (clock.wall() + timedelta(hours=8)).strftime("%H:%M")
        paced.append((local, throttle.take(10 * day_rate) > 0))
    expected = [("19:59", True)]
    expected += [(f"{h % 24:02d}:59", False) for h in range(20, 31)]
    expected += [("07:59", True)]
    assert paced == expected
    assert clock.slept == [pytest.approx(9.0), pytest.approx(9.0)]


def test_a_window_within_one_day_and_the_first_window_wins() -> None:
    lunch = BandwidthWindow.model_validate({"from": "12:00", "to": "13:30", "rate": "2MB"})
    also = BandwidthWindow.model_validate({"from": "13:00", "to": "14:00", "rate": "1MB"})
    at = datetime(2026, 11, 22, 5, 15, tzinfo=UTC)  # 13:15 in Beijing
    assert rate_at("unlimited", (lunch, also), "Asia/Shanghai", at) == 2 * MB
    assert rate_at("unlimited", (also, lunch), "Asia/Shanghai", at) == MB
    assert rate_at("unlimited", (lunch,), "Asia/Shanghai", at + timedelta(hours=1)) is None
    assert rate_at("unlimited", (lunch,), "Europe/Berlin", at) is None  # 06:15 there


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("20Mbit", 2_500_000),
        ("20 Mbit/s", 2_500_000),
        ("20Mbps", 2_500_000),
        ("512kbit", 64_000),
        ("2.5MB", 2_500_000),
        ("512KiB", 524_288),
        ("1GiB/s", 2**30),
        ("unlimited", None),
        ("Unlimited", None),
    ],
)
def test_rates_in_bits_or_bytes(text: str, rate: int | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize(
    ("text", "word"),
    [("fast", "not a rate"), ("20mb", "unknown unit"), ("8kbit", "too slow"), ("", "not a rate")],
)
def test_bad_rates_say_what_to_write(text: str, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        parse_rate(text)


def test_bad_bandwidth_keys_are_config_errors_with_their_key(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text(
        '[station]\nid = "thr-01"\n[delivery]\nbandwidth = "fast"\nworkers = 0\n'
        'bandwidth_schedule = [{from = "7:00", to = "20:00", rate = "1MB"},'
        ' {from = "20:00", to = "20:00", rate = "1MB"}]\n',
        "utf-8",
    )
    proc = run_cli("check-config", config, check=2)
    assert "delivery.bandwidth: " in proc.stderr and "not a rate" in proc.stderr
    assert "delivery.workers" in proc.stderr
    assert '"7:00" is not a time of day' in proc.stderr
    assert 'from and to are both "20:00"' in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_real_put_is_paced_by_the_limit(tmp_path: Path) -> None:
    """The folder target's copy reports its blocks; each is paid for at the rate."""
    config = tmp_path / "station.toml"
    config.write_text(
        '[station]\nid = "thr-02"\n'
        f'[paths]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n',
        "utf-8",
    )
    rec = tmp_path / "rec" / "DCIM" / "100MEDIA"
    rec.mkdir(parents=True)
    sizes = [3 * 1024 * 1024 + 17, 5 * 1024 * 1024]
    for n, size in enumerate(sizes):
        (rec / f"V{n:04d}.MP4").write_bytes(bytes([n + 1]) * size)
    run_cli("ingest", tmp_path / "rec", "--config", config, check=0)
    clock = FakeClock(datetime(2026, 11, 22, 4, 0, tzinfo=UTC))
    throttle = _throttle(clock, MB)
    station = Station.open(load_config(config), config_file=config)
    try:
        report = deliver_due(station, station.conn, delivery_target(station), throttle=throttle)
    finally:
        station.close()
    assert report.delivered == 2 and report.ok
    total = sum(sizes)
    # every byte sent was paid for (less the one second of burst), no more
    assert (total - MB) / MB - 1e-6 <= clock.seconds <= total / MB + 1e-6
    assert len(clock.slept) >= 8  # paced block by block, not once at the end
