"""What the custody report is made of: the station, the export, each case and its clips.

Plain values, gathered by the exporter from the ledger's leaves and the station's
settings; the renderers (``ledger.custody``, ``ledger.custody_case``) only read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from config import DEFAULT_TIME_ZONE
from ledger.elements import ClipElements
from ledger.leaf import Leaf


@dataclass(frozen=True)
class ReportStation:
    """The station as people know it (config ``station.*``), and the report's language."""

    id: str
    name: str = ""
    place: str = ""
    time_zone: str = DEFAULT_TIME_ZONE
    language: str = "zh-CN"


@dataclass(frozen=True)
class ClipCustody:
    clip_id: str
    file_name: str  # under clips/ in the package
    ingested: Leaf
    elements: ClipElements
    events: Sequence[Leaf]
    verification: str
    sensitivity: str = "normal"  # normal, privacy or secret (marked when not normal)


@dataclass(frozen=True)
class CaseCustody:
    case_number: str
    clips: Sequence[ClipCustody]
    events: Sequence[Leaf] = ()  # the case's own leaves (opened, changed, exported...)


@dataclass(frozen=True)
class ExportFacts:
    exported_at: str  # a leaf time (UTC)
    who: str
    purpose: str
    checkpoint_size: int
    key_text: str
    fingerprint: str


@dataclass(frozen=True)
class Coverage:
    """When a case's clips were recording: total time, first start to last end, and the
    stretches between them with no clip recording."""

    total_seconds: float
    start: datetime | None
    end: datetime | None
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)
    untimed: int = 0


# A pause shorter than this between one clip's end and the next one's start is a
# recorder closing one file and opening the next, not a gap in coverage.
MIN_GAP = timedelta(seconds=2)


def _duration_s(clip: ClipCustody) -> float:
    media = clip.ingested.body.get("media")
    duration = media.get("duration_ms") if isinstance(media, dict) else None
    if type(duration) is int and duration >= 0:
        return duration / 1000
    element = clip.elements.capture_time
    if element.moment is not None and element.end is not None:
        return (element.end - element.moment).total_seconds()
    return 0.0


def coverage(clips: Sequence[ClipCustody]) -> Coverage:
    """The case's coverage, merged over all its recorders."""
    spans: list[tuple[datetime, datetime]] = []
    untimed = 0
    for clip in clips:
        element = clip.elements.capture_time
        if element.moment is None:
            untimed += 1
            continue
        spans.append((element.moment, element.end or element.moment))
    total = sum(_duration_s(clip) for clip in clips)
    if not spans:
        return Coverage(total, None, None, [], untimed)
    spans.sort()
    gaps: list[tuple[datetime, datetime]] = []
    reach = spans[0][1]
    for start, end in spans[1:]:
        if start - reach >= MIN_GAP:
            gaps.append((reach, start))
        reach = max(reach, end)
    return Coverage(total, spans[0][0], reach, gaps, untimed)
