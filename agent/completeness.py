"""Completeness: which clips lack any of the five required elements, per officer and unit.

The elements and their sources are agent.clip_facts' (the same sources the custody
report names). A clip's officer is its docking's collector; its unit is the unit of a
case it belongs to, else its officer's unit as the incident feed gives it, else unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.clip_facts import ELEMENT_NAMES, ClipFacts

UNKNOWN = "(unknown)"


@dataclass
class Group:
    officer: str
    unit: str
    clips: int = 0
    incomplete: list[ClipFacts] = field(default_factory=list)

    def missing_counts(self) -> dict[str, int]:
        return {
            name: sum(1 for c in self.incomplete if name in c.missing) for name in ELEMENT_NAMES
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "officer": self.officer,
            "unit": self.unit,
            "clips": self.clips,
            "incomplete": len(self.incomplete),
            "missing": self.missing_counts(),
            "clips_missing": [
                {
                    "clip_id": c.clip_id,
                    "missing": c.missing,
                    "start": c.start.isoformat() if c.start else None,
                    "cases": sorted(c.links),
                }
                for c in self.incomplete
            ],
        }


def completeness(
    clips: list[ClipFacts], *, officer: str | None = None, unit: str | None = None
) -> list[Group]:
    """Groups (officer, unit), sorted, with every clip counted and the incomplete listed."""
    groups: dict[tuple[str, str], Group] = {}
    for clip in clips:
        who, where = clip.officer or UNKNOWN, clip.unit or UNKNOWN
        if officer is not None and clip.officer != officer:
            continue
        if unit is not None and clip.unit != unit:
            continue
        group = groups.setdefault((who, where), Group(who, where))
        group.clips += 1
        if not clip.complete:
            group.incomplete.append(clip)
    return [groups[key] for key in sorted(groups)]


def report_json(groups: list[Group]) -> dict[str, Any]:
    return {
        "clips": sum(g.clips for g in groups),
        "incomplete": sum(len(g.incomplete) for g in groups),
        "groups": [g.as_json() for g in groups],
    }


def report_lines(groups: list[Group]) -> list[str]:
    total = sum(g.clips for g in groups)
    missing = sum(len(g.incomplete) for g in groups)
    lines = [f"{missing} of {total} clip(s) lack one or more of the five elements"]
    for g in groups:
        lines.append(
            f"officer {g.officer}, unit {g.unit}: {len(g.incomplete)} of {g.clips} incomplete"
        )
        for c in g.incomplete:
            when = c.start.isoformat(timespec="seconds") if c.start else "no capture time"
            lines.append(f"  {c.clip_id}  {when}  missing: {', '.join(c.missing)}")
    return lines
