"""The restart budget of the daemon's ingest workers, per volume (as Frigate's watchdog
keeps one per camera): a volume whose worker failed is tried again after a back-off, at
most ``RESTART_LIMIT`` times in ``RESTART_WINDOW_SECONDS``, then left until the recorder
is docked again. Not thread-safe on its own: the daemon holds its lock around it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

RESTART_LIMIT = 3
RESTART_WINDOW_SECONDS = 600
RESTART_DELAYS = (5.0, 30.0, 120.0)


@dataclass
class _Budget:
    failures: list[float] = field(default_factory=list)
    retry_at: float | None = None


class RestartBudget:
    def __init__(self) -> None:
        self._volumes: dict[Path, _Budget] = {}

    def forget(self, volume: Path) -> None:
        """A new docking, a removal or a good session: the volume starts afresh."""
        self._volumes.pop(volume, None)

    def failed(self, volume: Path, now: float, *, stopping: bool) -> tuple[int, float | None]:
        """Count a failure; (failures in the window, when to try again or None: not again
        until it is docked again)."""
        budget = self._volumes.setdefault(volume, _Budget())
        budget.failures = [t for t in budget.failures if now - t < RESTART_WINDOW_SECONDS]
        budget.failures.append(now)
        tries = len(budget.failures)
        if tries >= RESTART_LIMIT or stopping:
            budget.retry_at = None
        else:
            budget.retry_at = now + RESTART_DELAYS[min(tries, len(RESTART_DELAYS)) - 1]
        return tries, budget.retry_at

    def take_due(self, now: float) -> list[Path]:
        """The volumes whose back-off is over (each handed out once)."""
        due = [v for v, b in self._volumes.items() if b.retry_at is not None and b.retry_at <= now]
        for volume in due:
            self._volumes[volume].retry_at = None
        return due
