"""Whole-process check: where a case's recorded coverage has holes.

For a case that requires whole-process recording (全过程记录), the time between its start
and end (``case create --starts/--ends``; without them, from its first clip's start to its
last clip's end) must be covered by footage. Each recorder's clips in the case give its
coverage (their capture windows, agent.clip_facts, cut to the case's time); all
recorders together give the merged coverage. A gap is a stretch of the case's time that a
coverage leaves uncovered for longer than the threshold (``--max-gap-s``, 60 s by
default): at the start, between clips, or at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from agent.clip_facts import CaseInfo, ClipFacts, parse_moment
from agent.errors import CaseError

DEFAULT_MAX_GAP_S: Final = 60

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def as_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Coverage:
    case: CaseInfo
    start: datetime
    end: datetime
    bounds_from: str  # "case" (its starts/ends) or "clips" (first and last clip)
    max_gap_s: float
    per_recorder: dict[str, list[Gap]] = field(default_factory=dict)
    officers: dict[str, set[str]] = field(default_factory=dict)  # recorder -> officers
    merged: list[Gap] = field(default_factory=list)
    clips: int = 0
    untimed: list[str] = field(default_factory=list)  # clips with no capture time

    def as_json(self) -> dict[str, Any]:
        return {
            "case_number": self.case.case_number,
            "whole_process": self.case.whole_process,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "bounds_from": self.bounds_from,
            "max_gap_s": self.max_gap_s,
            "clips": self.clips,
            "untimed_clips": self.untimed,
            "per_recorder": {
                recorder: {
                    "officers": sorted(self.officers.get(recorder, set())),
                    "gaps": [g.as_json() for g in gaps],
                }
                for recorder, gaps in sorted(self.per_recorder.items())
            },
            "merged": [g.as_json() for g in self.merged],
        }


def gaps_in(
    intervals: Iterable[Interval], start: datetime, end: datetime, min_s: float
) -> list[Gap]:
    """The stretches of [start, end] no interval covers, longer than ``min_s`` seconds."""
    least = timedelta(seconds=min_s)
    found: list[Gap] = []
    reached = start
    for a, b in sorted(intervals):
        if b <= reached:
            continue
        if a > reached:
            hole_end = min(a, end)
            if hole_end - reached > least:
                found.append(Gap(reached, hole_end))
        reached = max(reached, b)
        if reached >= end:
            return found
    if end - reached > least:
        found.append(Gap(reached, end))
    return found


def coverage(case: CaseInfo, clips: list[ClipFacts], zone: Any, max_gap_s: float) -> Coverage:
    """The case's gaps per recorder and merged; CaseError when it has no time to check."""
    if max_gap_s < 0:
        raise CaseError("--max-gap-s must be 0 or more seconds")
    members = [c for c in clips if case.case_number in c.links]
    timed = [c for c in members if c.start is not None and c.end is not None]
    start, end = parse_moment(case.starts, zone), parse_moment(case.ends, zone)
    bounds = "case"
    if start is None or end is None:
        if not timed:
            raise CaseError(
                f"case {case.case_number} has no start and end and no clip with a capture "
                "time: set them with `evidock case edit N --starts ISO --ends ISO`"
            )
        bounds = "clips"
        start = start or min(c.start for c in timed if c.start is not None)
        end = end or max(c.end for c in timed if c.end is not None)
    found = Coverage(case, start, end, bounds, max_gap_s, clips=len(members))
    found.untimed = [c.clip_id for c in members if c.start is None]
    by_recorder: dict[str, list[Interval]] = {}
    for c in timed:
        assert c.start is not None and c.end is not None
        by_recorder.setdefault(c.recorder, []).append((c.start, c.end))
        if c.officer:
            found.officers.setdefault(c.recorder, set()).add(c.officer)
    for recorder, intervals in by_recorder.items():
        found.per_recorder[recorder] = gaps_in(intervals, start, end, max_gap_s)
    found.merged = gaps_in(
        [i for intervals in by_recorder.values() for i in intervals], start, end, max_gap_s
    )
    return found
