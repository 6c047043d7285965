"""What the station knows of each clip, in one place, for completeness, statistics,
search, whole-process coverage and incident matching.

Recordings only (videos, audio, photos): a GPS track, a log or a device-info file is
evidence too, but not a clip these reports count. Read from the catalogue (``clips``,
``clip_media``, ``docking_sessions``, ``cases``, ``incidents``, ``clip_sensitivity``)
and, for which cases hold a clip, from the ledger's one replay of the links
(``ledger.case_members``): never from a second copy of the rules.

A clip's **capture window** is its corrected start and end (``clip_media``: the recorder's
times moved by its clock offset), else its start and end on the recorder's clock, else
the time in its file name plus its duration. Naive times are the recorder's local clock,
read in the station's time zone, as everywhere else. A photo's window is one instant.

Its **five elements** take the sources ``ledger.elements`` gives them (recorder,
assignment, officer input, incident feed, station default), from the catalogue:
case number and object of proof from the link that put the clip in a case (an
incident-feed link says so in its reason), capture time from the window, capture place
from the clip's own coordinates else the station's configured place, collector from the
docking's officer and where that came from.

Its sensitivity is the strictest of its own mark (``evidock clip mark``) and its cases'.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

from agent.media_places import parse_iso6709
from config.case_numbers import SENSITIVITIES, fold_case_number
from ledger import Leaf, Ledger, case_members

ELEMENT_NAMES: Final = (
    "case_number",
    "capture_time",
    "capture_place",
    "collector",
    "object_of_proof",
)
RECORDER: Final = "recorder"
ASSIGNMENT: Final = "assignment"
OFFICER_INPUT: Final = "officer input"
INCIDENT_FEED: Final = "incident feed"
STATION_DEFAULT: Final = "station default"

# docking_sessions.officer_source -> element source (as ledger.elements maps it).
_OFFICER_SOURCES: Final = {
    "cli": OFFICER_INPUT,
    "assignment": ASSIGNMENT,
    "device-info": RECORDER,
    "incident": INCIDENT_FEED,
}


def parse_moment(value: object, zone: tzinfo) -> datetime | None:
    """An aware time from ISO text (``...Z``, an offset, or naive = the station's zone)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)


def link_source(link: Leaf) -> str:
    """Who made a link: the incident feed (its reason says so) or a person."""
    reason = link.body.get("reason")
    return INCIDENT_FEED if isinstance(reason, str) and "incident" in reason else OFFICER_INPUT


@dataclass(frozen=True)
class CaseInfo:
    case_number: str
    subject: str
    category: str
    unit: str
    whole_process: bool
    starts: str | None
    ends: str | None
    sensitivity: str


@dataclass
class ClipFacts:
    clip_id: str
    session_id: str
    recorder: str
    officer: str | None
    officer_source: str | None
    kind: str
    integrity: str | None
    start: datetime | None
    end: datetime | None
    duration_ms: int | None
    place: tuple[float, float] | None
    docked_at: datetime | None
    important: bool = False
    links: dict[str, Leaf] = field(default_factory=dict)  # case number -> its link leaf
    cases: list[CaseInfo] = field(default_factory=list)  # registered cases among links
    unit: str | None = None
    sensitivity: str = "normal"
    elements: dict[str, str | None] = field(default_factory=dict)  # element -> source

    @property
    def missing(self) -> list[str]:
        return [name for name in ELEMENT_NAMES if self.elements.get(name) is None]

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def hours(self) -> float:
        return (self.duration_ms or 0) / 3_600_000

    def as_json(self) -> dict[str, object]:
        return {
            "clip_id": self.clip_id,
            "session_id": self.session_id,
            "recorder": self.recorder,
            "officer": self.officer,
            "unit": self.unit,
            "kind": self.kind,
            "integrity": self.integrity,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "duration_ms": self.duration_ms,
            "place": list(self.place) if self.place else None,
            "cases": sorted(self.links),
            "sensitivity": self.sensitivity,
            "important": self.important,
            "missing": self.missing,
            "elements": self.elements,
        }


def capture_window(
    row: sqlite3.Row | dict[str, object], zone: tzinfo
) -> tuple[datetime, datetime] | None:
    """(start, end) of a clip from its catalogue row (see the module's docstring)."""
    duration = row["duration_ms"]
    length = timedelta(milliseconds=duration) if isinstance(duration, int) else timedelta(0)
    for start_key, end_key in (
        ("start_corrected", "end_corrected"),
        ("start_recorder", "end_recorder"),
        ("recorder_time", None),
    ):
        start = parse_moment(row[start_key], zone)
        if start is None:
            continue
        end = parse_moment(row[end_key], zone) if end_key else None
        if end is None or end < start:
            end = start + length
        return start.astimezone(zone), end.astimezone(zone)
    return None


_CLIPS_SQL = """
SELECT c.clip_id, c.session_id, c.recorder, c.kind, c.recorder_time, c.location AS clip_location,
    coalesce(m.duration_ms, c.duration_ms) AS duration_ms, m.integrity, m.start_corrected,
    m.end_corrected, m.start_recorder, m.end_recorder, m.location,
    s.officer, s.officer_source, s.opened_at, c.leaf_index
FROM clips c
JOIN docking_sessions s ON s.session_id = c.session_id
LEFT JOIN clip_media m ON m.clip_id = c.clip_id
WHERE c.kind IN ('video', 'audio', 'photo')
ORDER BY c.leaf_index
"""


def load_cases(conn: sqlite3.Connection) -> dict[str, CaseInfo]:
    return {
        row["case_number"]: CaseInfo(
            row["case_number"],
            row["subject"],
            row["category"],
            row["unit"],
            bool(row["whole_process"]),
            row["starts"],
            row["ends"],
            row["sensitivity"],
        )
        for row in conn.execute("SELECT * FROM cases")
    }


def officer_units(conn: sqlite3.Connection) -> dict[str, str]:
    """Each officer's unit as the incident feed last gave it (the station's roster)."""
    units: dict[str, str] = {}
    for row in conn.execute(
        "SELECT officer, unit FROM incidents WHERE unit IS NOT NULL AND unit != '' ORDER BY id"
    ):
        units[row["officer"]] = row["unit"]
    return units


def case_numbers(conn: sqlite3.Connection) -> list[str]:
    """Every case number any link names, in its normal form."""
    return sorted(
        {fold_case_number(str(row[0])) for row in conn.execute(
            "SELECT DISTINCT case_number FROM case_links")}
    )  # fmt: skip


def load_clip_facts(
    conn: sqlite3.Connection, ledger: Ledger, *, time_zone: str, station_place: str = ""
) -> list[ClipFacts]:
    """Every clip of the station with what is known of it, in ingest order."""
    zone = ZoneInfo(time_zone)
    cases = load_cases(conn)
    units = officer_units(conn)
    links: dict[str, dict[str, Leaf]] = {}
    for number in case_numbers(conn):
        for clip_id, leaf in case_members(ledger, number).items():
            links.setdefault(clip_id, {})[number] = leaf
    # A clip's own mark (`evidock clip mark`, agent.sensitivity) beside its cases'.
    own = {
        str(row[0]): str(row[1])
        for row in conn.execute("SELECT clip_id, sensitivity FROM clip_sensitivity")
    }
    important = {
        str(leaf.body.get("clip_id"))
        for leaf in ledger.leaves_of_kind("clip.ingested")
        if leaf.body.get("important") is True
    }
    facts = []
    for row in conn.execute(_CLIPS_SQL):
        window = capture_window(row, zone)
        located = parse_iso6709(row["location"] or row["clip_location"])
        clip = ClipFacts(
            clip_id=row["clip_id"],
            session_id=row["session_id"],
            recorder=row["recorder"],
            officer=row["officer"],
            officer_source=row["officer_source"],
            kind=row["kind"],
            integrity=row["integrity"],
            start=window[0] if window else None,
            end=window[1] if window else None,
            duration_ms=row["duration_ms"],
            place=(float(located[0]), float(located[1])) if located else None,
            docked_at=parse_moment(row["opened_at"], zone),
            important=row["clip_id"] in important,
            links=links.get(row["clip_id"], {}),
        )
        clip.cases = [cases[n] for n in sorted(clip.links) if n in cases]
        clip.unit = next((c.unit for c in clip.cases), None) or units.get(clip.officer or "")
        levels = [c.sensitivity for c in clip.cases] + [own.get(clip.clip_id, "normal")]
        ranks = [SENSITIVITIES.index(level) for level in levels if level in SENSITIVITIES]
        clip.sensitivity = SENSITIVITIES[max(ranks, default=0)]
        clip.elements = _elements(clip, station_place)
        facts.append(clip)
    return facts


def _elements(clip: ClipFacts, station_place: str) -> dict[str, str | None]:
    """Element -> its source (None: missing). With several cases, the link that gives
    the most elements (an object of proof) is taken."""
    link = None
    for leaf in clip.links.values():
        if link is None or (
            leaf.body.get("object_of_proof") and not link.body.get("object_of_proof")
        ):
            link = leaf
    proof = link.body.get("object_of_proof") if link is not None else None
    if clip.place is not None:
        place: str | None = RECORDER
    else:
        place = STATION_DEFAULT if station_place.strip() else None
    collector = None
    if clip.officer and clip.officer.strip():
        collector = _OFFICER_SOURCES.get(clip.officer_source or "cli", OFFICER_INPUT)
    return {
        "case_number": link_source(link) if link is not None else None,
        "capture_time": RECORDER if clip.start is not None else None,
        "capture_place": place,
        "collector": collector,
        "object_of_proof": (
            link_source(link)
            if link is not None and isinstance(proof, str) and proof.strip()
            else None
        ),
    }
