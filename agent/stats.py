"""Recording statistics, per officer or unit and per day, week or month.

Per group and period (a clip's period is the local day, ISO week or month of its
capture start in the station's zone):

- ``clips`` and ``hours`` recorded (the sum of the clips' durations);
- ``linked``: the share of clips in at least one case;
- ``complete``: the share of clips with all five elements (agent.clip_facts);
- ``gaps``: whole-process gaps (agent.whole_process) of cases that require it: by unit,
  the merged gaps of the unit's cases; by officer, the gaps of the recorders the officer
  carried in the case; each in the period of the gap's start;
- docking punctuality: the footage's age at docking (the docking's start minus the
  clip's end), median and oldest.

Beside them, time to safe per recorder from the ``session_times`` view (docked to safe:
verified, delivered and, by the wipe policy, ready to go), median and slowest, of the
sessions docked in the range.
"""

from __future__ import annotations

import sqlite3
import statistics
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Final, Literal

from agent.clip_facts import ClipFacts, load_cases, parse_moment
from agent.errors import CaseError
from agent.records_filters import TimeRange
from agent.whole_process import coverage

By = Literal["officer", "unit"]
Period = Literal["day", "week", "month"]
UNKNOWN: Final = "(unknown)"
ALL: Final = "all"
NO_TIME: Final = "(no time)"


def period_of(moment: datetime | None, period: Period | None, zone: tzinfo) -> str:
    if period is None:
        return ALL
    if moment is None:
        return NO_TIME
    local = moment.astimezone(zone)
    if period == "day":
        return local.strftime("%Y-%m-%d")
    if period == "month":
        return local.strftime("%Y-%m")
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class StatsRow:
    group: str
    period: str
    clips: int = 0
    milliseconds: int = 0
    linked: int = 0
    complete: int = 0
    gaps: int = 0
    gap_seconds: float = 0.0
    ages: list[float] = field(default_factory=list)  # footage age at docking, seconds

    @property
    def hours(self) -> float:
        return self.milliseconds / 3_600_000

    def share(self, part: int) -> float | None:
        return part / self.clips if self.clips else None

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "period": self.period,
            "clips": self.clips,
            "hours": round(self.hours, 4),
            "linked_share": _rounded(self.share(self.linked)),
            "complete_share": _rounded(self.share(self.complete)),
            "gaps": self.gaps,
            "gap_seconds": round(self.gap_seconds, 3),
            "docking_age_median_s": _rounded(
                statistics.median(self.ages) if self.ages else None, 3
            ),
            "docking_age_max_s": _rounded(max(self.ages) if self.ages else None, 3),
        }


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class RecorderSafe:
    recorder: str
    sessions: int
    median_s: float | None
    slowest_s: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "recorder": self.recorder,
            "sessions_safe": self.sessions,
            "median_s": self.median_s,
            "slowest_s": self.slowest_s,
        }


@dataclass
class Stats:
    by: By
    period: Period | None
    rows: list[StatsRow]
    recorders: list[RecorderSafe]

    def as_json(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "period": self.period or ALL,
            "rows": [r.as_json() for r in self.rows],
            "time_to_safe": [r.as_json() for r in self.recorders],
        }


def _group_of(clip: ClipFacts, by: By) -> str:
    value = clip.officer if by == "officer" else clip.unit
    return value or UNKNOWN


def compute_stats(
    conn: sqlite3.Connection,
    clips: list[ClipFacts],
    *,
    by: By,
    period: Period | None,
    span: TimeRange,
    zone: tzinfo,
    max_gap_s: float = 60,
) -> Stats:
    rows: dict[tuple[str, str], StatsRow] = {}

    def row(group: str, moment: datetime | None) -> StatsRow:
        key = (group, period_of(moment, period, zone))
        return rows.setdefault(key, StatsRow(*key))

    for clip in clips:
        if not span.holds(clip.start):
            continue
        r = row(_group_of(clip, by), clip.start)
        r.clips += 1
        r.milliseconds += clip.duration_ms or 0
        r.linked += bool(clip.links)
        r.complete += clip.complete
        if clip.docked_at is not None and clip.end is not None:
            r.ages.append((clip.docked_at - clip.end).total_seconds())
    for case in load_cases(conn).values():
        if not case.whole_process:
            continue
        try:
            cover = coverage(case, clips, zone, max_gap_s)
        except CaseError:
            continue  # no time to check it against: `evidock gaps` says so
        if by == "unit":
            found = [(case.unit or UNKNOWN, gap) for gap in cover.merged]
        else:
            found = [
                (officer, gap)
                for recorder, gaps in cover.per_recorder.items()
                for officer in sorted(cover.officers.get(recorder) or {UNKNOWN})
                for gap in gaps
            ]
        for group, gap in found:
            if span.holds(gap.start):
                r = row(group, gap.start)
                r.gaps += 1
                r.gap_seconds += gap.seconds
    ordered = [rows[key] for key in sorted(rows)]
    return Stats(by, period, ordered, time_to_safe(conn, span, zone))


def time_to_safe(conn: sqlite3.Connection, span: TimeRange, zone: tzinfo) -> list[RecorderSafe]:
    """Median and slowest docked-to-safe time per recorder, of sessions docked in range."""
    waits: dict[str, list[float]] = {}
    for r in conn.execute(
        "SELECT recorder, docked_at, seconds_to_safe FROM session_times ORDER BY recorder"
    ):
        if not span.holds(parse_moment(r["docked_at"], zone)):
            continue
        seconds = waits.setdefault(r["recorder"], [])
        if r["seconds_to_safe"] is not None:
            seconds.append(float(r["seconds_to_safe"]))
    return [
        RecorderSafe(
            recorder,
            len(seconds),
            statistics.median(seconds) if seconds else None,
            max(seconds) if seconds else None,
        )
        for recorder, seconds in sorted(waits.items())
    ]


COLUMNS: Final = (
    "group",
    "period",
    "clips",
    "hours",
    "linked_share",
    "complete_share",
    "gaps",
    "gap_seconds",
    "docking_age_median_s",
    "docking_age_max_s",
)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    hours = seconds / 3600
    return f"{hours:.1f} h" if abs(hours) >= 1 else f"{seconds / 60:.0f} min"


def _pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (a Chinese character takes two)."""
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - shown)


def hours_text(hours: float) -> str:
    return f"{hours:.2f} h" if hours >= 1 else f"{hours * 60:.1f} min"


def table_lines(stats: Stats) -> list[str]:
    head = (
        f"{stats.by:<16} {'period':<10} {'clips':>5} {'hours':>7} {'linked':>6} "
        f"{'complete':>8} {'gaps':>4} {'age at docking (median / oldest)':>34}"
    )
    lines = [head]
    for r in stats.rows:
        j = r.as_json()
        age = f"{_age(j['docking_age_median_s'])} / {_age(j['docking_age_max_s'])}"
        lines.append(
            f"{_pad(r.group, 16)} {r.period:<10} {r.clips:>5} {r.hours:>7.2f} "
            f"{_percent(j['linked_share']):>6} {_percent(j['complete_share']):>8} "
            f"{r.gaps:>4} {age:>34}"
        )
    if not stats.rows:
        lines.append("(no clips in this range)")
    lines.append("")
    lines.append("time to safe per recorder (docked -> safe to take): median, slowest")
    for s in stats.recorders:
        if s.median_s is None:
            lines.append(f"  {s.recorder}: no session safe yet")
        else:
            lines.append(
                f"  {s.recorder}: {s.sessions} session(s), median {_age(s.median_s)}, "
                f"slowest {_age(s.slowest_s)}"
            )
    return lines
