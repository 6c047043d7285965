"""The delivery bandwidth limit: one token bucket shared by every upload of the station.

A put reports the bytes it has sent as it goes (``PutProgress``); the deliverer hands
each new stretch to :meth:`Throttle.take`, which waits as long as the bytes need at the
rate allowed now. The rate is asked of a schedule at each take (``rate_at``: a moment
-> bytes per second, None for unlimited), so a limit by day and full speed by night
change over as the clock passes the boundary, midnight included. Every delivery worker
takes from the same bucket: N workers share the limit, they do not multiply it.

The bucket holds at most ``burst_seconds`` of the rate (a quiet spell does not save up
a flood) and may go into debt: a stretch larger than what is held is sent, then paid
for by waiting, so pieces of any size (1 MiB blocks, 16 MiB parts) keep the average.
Time comes from an injectable monotonic clock and wall clock, and waiting from an
injectable sleep, so tests drive it on a fake clock without waiting for real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from config.common import utc_now

# bytes per second allowed at a moment (aware datetime); None: unlimited
RateAt = Callable[[datetime], int | None]
# sleep(seconds, stop): wait that long, or less once stop is set
Sleep = Callable[[float, threading.Event | None], None]


def _sleep(seconds: float, stop: threading.Event | None) -> None:
    if stop is not None:
        stop.wait(seconds)
    else:
        time.sleep(seconds)


class Throttle:
    """A shared token bucket following a rate schedule (thread-safe)."""

    def __init__(
        self,
        rate_at: RateAt,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utc_now,
        sleep: Sleep = _sleep,
        burst_seconds: float = 1.0,
    ) -> None:
        self._rate_at = rate_at
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._burst = burst_seconds
        self._lock = threading.Lock()
        self._last = clock()
        self._rate: int | None = None
        self._tokens = 0.0
        self.waited = 0.0  # seconds of waiting asked for, in all

    def rate_now(self) -> int | None:
        """Bytes per second allowed now (None: unlimited)."""
        return self._rate_at(self._wall())

    def take(self, sent: int, stop: threading.Event | None = None) -> float:
        """Count ``sent`` bytes and wait until the rate allows them; returns the seconds
        waited (asked of ``sleep``: less if ``stop`` is set meanwhile)."""
        if sent <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            rate = self._rate_at(self._wall())
            elapsed = max(0.0, now - self._last)
            self._last = now
            if rate is None:
                # Unlimited: nothing owed, nothing saved up for when a limit starts.
                self._rate, self._tokens = None, 0.0
                return 0.0
            cap = rate * self._burst
            if rate != self._rate:
                # A new rate (start, or a schedule boundary): a full bucket at most,
                # and a debt run up at the old rate is paid at the new one.
                self._tokens = cap if self._rate is None else min(self._tokens, cap)
                self._rate = rate
            else:
                self._tokens = min(cap, self._tokens + elapsed * rate)
            self._tokens -= sent
            # A debt stays in the bucket: a taker meanwhile waits for it and its own bytes.
            wait = -self._tokens / rate if self._tokens < 0 else 0.0
            self.waited += wait
        if wait:
            self._sleep(wait, stop)
        return wait
