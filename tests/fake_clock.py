"""A monotonic clock the test moves: for the watcher, the USB detector and the daemon,
so tests drive time instead of sleeping on the wall clock."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
