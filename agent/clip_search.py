"""``evidock clips``: find clips by officer, unit, time, case, subject, place, integrity
class and sensitivity.

Every filter given must hold (they narrow one another). Time: the clip's capture window
overlaps the range. Case: any form of the number. Subject: the enforcement subject (当事人)
of a case the clip is in, or of an incident of its officer that names that case, contains
the text (case and width folded). Place: the clip's own coordinates within the radius
(great-circle distance); a clip with no coordinates of its own is never "near". A clip's
sensitivity is the strictest of its own mark and its cases' (normal when none says more).
"""

from __future__ import annotations

import sqlite3
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from agent.clip_facts import ClipFacts
from agent.records_filters import TimeRange, distance_m
from config.case_numbers import fold_case_number


def _folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True)
class ClipQuery:
    officer: str | None = None
    unit: str | None = None
    span: TimeRange = field(default_factory=lambda: TimeRange(None, None))
    case: str | None = None
    subject: str | None = None
    near: tuple[float, float, float] | None = None  # lat, lon, metres
    integrity: str | None = None
    sensitivity: str | None = None


def _subjects(conn: sqlite3.Connection, clip: ClipFacts) -> list[str]:
    found = [c.subject for c in clip.cases]
    if clip.links:
        rows = conn.execute(
            "SELECT case_number, subject FROM incidents WHERE subject IS NOT NULL AND officer = ?",
            (clip.officer or "",),
        )
        found += [r["subject"] for r in rows if r["case_number"] in clip.links]
    return found


def search(conn: sqlite3.Connection, clips: list[ClipFacts], query: ClipQuery) -> list[ClipFacts]:
    case = fold_case_number(query.case) if query.case is not None else None
    subject = _folded(query.subject) if query.subject else None
    found = []
    for clip in clips:
        if query.officer is not None and clip.officer != query.officer:
            continue
        if query.unit is not None and clip.unit != query.unit:
            continue
        if not query.span.overlaps(clip.start, clip.end):
            continue
        if case is not None and case not in clip.links:
            continue
        if query.integrity is not None and (clip.integrity or "not_probed") != query.integrity:
            continue
        if query.sensitivity is not None and clip.sensitivity != query.sensitivity:
            continue
        if query.near is not None:
            lat, lon, metres = query.near
            if clip.place is None or distance_m(clip.place, (lat, lon)) > metres:
                continue
        if subject is not None and not any(subject in _folded(s) for s in _subjects(conn, clip)):
            continue
        found.append(clip)
    return found


def result_json(clips: list[ClipFacts]) -> dict[str, Any]:
    return {"count": len(clips), "clips": [c.as_json() for c in clips]}


def result_lines(clips: list[ClipFacts]) -> list[str]:
    if not clips:
        return ["no clip matches"]
    lines = [f"{len(clips)} clip(s)"]
    for c in clips:
        when = c.start.isoformat(timespec="seconds") if c.start else "no capture time"
        cases = ", ".join(sorted(c.links)) or "no case"
        flags = " important" if c.important else ""
        lines.append(
            f"{c.clip_id}  {when}  {c.officer or '-'}  {c.unit or '-'}  {c.recorder}  "
            f"{c.integrity or 'not probed'}  {c.sensitivity}  {cases}{flags}"
        )
    return lines
