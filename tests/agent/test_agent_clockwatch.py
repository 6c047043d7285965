"""A set wall clock is noticed against the monotonic clock; ticking time is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.clockwatch import ClockWatch


class Clocks:
    def __init__(self) -> None:
        self.wall_now = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
        self.mono_now = 1000.0

    def tick(self, seconds: float) -> None:
        self.wall_now += timedelta(seconds=seconds)
        self.mono_now += seconds


def test_ticking_is_not_a_jump_and_a_set_clock_is() -> None:
    clocks = Clocks()
    watch = ClockWatch(lambda: clocks.wall_now, lambda: clocks.mono_now)
    clocks.tick(5)
    assert watch.check() is None
    clocks.tick(5)
    clocks.wall_now -= timedelta(hours=1)
    jump = watch.check()
    assert jump is not None
    assert jump.leaf_body() == {
        "from": "2026-11-22T08:00:10.000000Z",
        "to": "2026-11-22T07:00:10.000000Z",
        "source": "detected",
    }
    clocks.tick(5)
    assert watch.check() is None, "the new wall time is the new reference"
