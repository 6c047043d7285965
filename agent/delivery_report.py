"""What a delivery pass says: its counts, the reasons of failing jobs, one log line per
change of a job's state."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from uploader import UploadJob

log = logging.getLogger("evidock")


@dataclass
class DeliveryReport:
    """One pass over the due queue: what was delivered, what failed, what is left."""

    delivered: int = 0
    failed: int = 0
    parked: int = 0
    waiting: int = 0
    parked_total: int = 0
    # parked because the station's own copy is missing or damaged (of parked_total)
    integrity_total: int = 0
    # queued jobs another deliverer holds a live claim on
    busy: int = 0
    # jobs finished by another deliverer after this one's claim ran out
    lost: int = 0
    stopped: bool = False
    data_dir: Path | None = None
    reasons: list[str] = field(default_factory=list)

    def add(self, other: DeliveryReport) -> None:
        """Count another deliverer's pass of the same round (the queue's totals are
        asked again after the round)."""
        self.delivered += other.delivered
        self.failed += other.failed
        self.parked += other.parked
        self.lost += other.lost
        self.stopped = self.stopped or other.stopped
        for reason in other.reasons:
            if len(self.reasons) < 10 and reason not in self.reasons:
                self.reasons.append(reason)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.parked_total == 0

    def lines(self) -> list[str]:
        out = [
            f"delivered {self.delivered}, failed {self.failed} (will be retried), "
            f"parked {self.parked}; left in the queue: {self.waiting} waiting to be "
            f"retried, {self.parked_total} parked for a person"
        ]
        if self.busy:
            out.append(f"  {self.busy} being delivered by another deliverer right now")
        if self.stopped and self.waiting:
            out.append("  stopped before the end of the queue: the rest goes at the next pass")
        out.extend(f"  {reason}" for reason in self.reasons)
        if self.integrity_total:
            where = f" --data-dir {self.data_dir}" if self.data_dir else ""
            out.append(
                f"  {self.integrity_total} parked because the station's own copy is missing "
                f"or damaged: run `evidock verify{where}` to see what happened to the "
                "evidence store; these jobs are never retried"
            )
        if self.parked_total:
            out.append("  parked jobs are not retried: fix the cause, then retry them")
        return out


def note_failure(report: DeliveryReport, job: UploadJob, state: str, reason: str) -> None:
    """Log a job's failure once per change: its first failure, a new reason, parking."""
    line = f"clip {job.clip_id} -> {job.target}: {state} (attempt {job.attempts + 1}): {reason}"
    if state == "parked":
        log.error("%s", line)
    elif job.attempts == 0 or job.last_error != reason:
        log.warning("%s", line)
    if len(report.reasons) < 10 and reason not in {r.split(": ", 2)[-1] for r in report.reasons}:
        report.reasons.append(line)
