"""Noticing when the station's wall clock is set: a jump between the wall clock and the
monotonic clock is recorded as a ``clock.adjusted`` leaf, so that station times on
either side of it are read with that in mind."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agent.clock import iso

TOLERANCE_SECONDS = 2.0


@dataclass(frozen=True)
class ClockJump:
    expected: datetime
    found: datetime

    def leaf_body(self) -> dict[str, str]:
        return {"from": iso(self.expected), "to": iso(self.found), "source": "detected"}


class ClockWatch:
    def __init__(
        self,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        tolerance: float = TOLERANCE_SECONDS,
    ) -> None:
        self.wall = wall
        self.monotonic = monotonic
        self.tolerance = tolerance
        self._wall0 = wall()
        self._mono0 = monotonic()

    def check(self) -> ClockJump | None:
        """The jump since the last check, if the wall clock moved unlike elapsed time."""
        wall, mono = self.wall(), self.monotonic()
        expected = self._wall0 + timedelta(seconds=mono - self._mono0)
        self._wall0, self._mono0 = wall, mono
        if abs((wall - expected).total_seconds()) > self.tolerance:
            return ClockJump(expected, wall)
        return None
