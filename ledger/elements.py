"""The five required elements of a clip, from the ledger's leaves alone.

The whole-process recording rules ask every record to carry its case number, capture
time, capture place, collector (采集人) and object of proof (证明对象). Each element is
taken from the leaves that name the clip, with where it came from:

- ``recorder``: what the recorder wrote (file name clock, container tags, GPS track, its
  own device-info);
- ``assignment``: the officer a person assigned the recorder to (``officer.assigned``);
- ``officer input``: typed by an officer or clerk (``--officer``, ``evidock link``);
- ``incident feed``: an incident record imported from the agency's feed;
- ``station default``: the station's configured place, when nothing better is known;
- ``None``: missing: the report says so, it never guesses.

Keys other rooms add to the leaves (``media.start``, ``media.place``, a link's
``collector``, ``place_name`` or ``source``) are read when present and never required.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Final

from ledger.custody_format import Coordinates, parse_place, parse_time
from ledger.leaf import CASE_LINKED, CLIP_INGESTED, DOCKING_OPENED, Leaf

RECORDER: Final = "recorder"
ASSIGNMENT: Final = "assignment"
OFFICER_INPUT: Final = "officer input"
INCIDENT_FEED: Final = "incident feed"
STATION_DEFAULT: Final = "station default"
SOURCES: Final = (RECORDER, ASSIGNMENT, OFFICER_INPUT, INCIDENT_FEED, STATION_DEFAULT)

ELEMENT_NAMES: Final = (
    "case_number",
    "capture_time",
    "capture_place",
    "collector",
    "object_of_proof",
)

# docking.opened's officer_source -> element source ("cli" is the officer typing it).
_OFFICER_SOURCES: Final = {
    "cli": OFFICER_INPUT,
    "assignment": ASSIGNMENT,
    "device-info": RECORDER,
    "incident": INCIDENT_FEED,
}


@dataclass(frozen=True)
class Element:
    """One element's value as recorded, where it came from (None: missing), and, for
    times and places, what it means."""

    value: str | None
    source: str | None
    moment: datetime | None = None  # capture time, aware
    end: datetime | None = None  # capture time: end of the recording when known
    place: Coordinates | None = None  # capture place
    place_name: str | None = None
    place_name_source: str | None = None
    corrected: bool = False  # capture time moved by the recorder's measured clock offset

    @property
    def missing(self) -> bool:
        return self.source is None


@dataclass(frozen=True)
class ClipElements:
    case_number: Element
    capture_time: Element
    capture_place: Element
    collector: Element
    object_of_proof: Element

    def items(self) -> list[tuple[str, Element]]:
        return [(name, getattr(self, name)) for name in ELEMENT_NAMES]

    def missing(self) -> list[str]:
        return [name for name, element in self.items() if element.missing]


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _media(ingested: Leaf) -> dict[str, Any]:
    media = ingested.body.get("media")
    return media if isinstance(media, dict) else {}


def link_source(link: Leaf) -> str:
    """Who made a link: an incident feed (as the feed's import marks it) or a person."""
    body = link.body
    marks = (body.get("source"), body.get("via"), body.get("reason"))
    if body.get("incident") or any(isinstance(m, str) and "incident" in m for m in marks):
        return INCIDENT_FEED
    return OFFICER_INPUT


def _capture_time(ingested: Leaf, zone: tzinfo) -> Element:
    body, media = ingested.body, _media(ingested)
    # The corrected times first (what the station's clock would have said), then what
    # the recorder wrote: the file's own start tag, its file-name clock, the container's
    # creation time. ``start`` may also be an object of both (recorder, corrected).
    start = media.get("start")
    candidates: list[tuple[Any, bool, Any]] = []
    if isinstance(start, dict):
        candidates += [(start.get("corrected"), True, media.get("end")),
                       (start.get("recorder"), False, media.get("end"))]  # fmt: skip
    else:
        candidates += [
            (media.get("start_corrected"), True, media.get("end_corrected")),
            (start, False, media.get("end")),
        ]
    candidates += [
        (body.get("recorder_time_corrected"), True, None),
        (body.get("recorder_time"), False, None),
        (media.get("creation_time"), False, None),
    ]
    for value, corrected, end in candidates:
        moment = parse_time(value, zone)
        if moment is not None:
            return Element(
                str(value),
                RECORDER,
                moment=moment,
                end=_end(end, moment, media.get("duration_ms"), zone),
                corrected=corrected,
            )
    return Element(None, None)


def _end(end: Any, start: datetime, duration_ms: Any, zone: tzinfo) -> datetime | None:
    """The recording's end on the same clock as its start: the file's end tag, else the
    start plus the duration."""
    moment = parse_time(end, zone)
    if moment is not None and moment >= start:
        return moment
    if type(duration_ms) is int and duration_ms >= 0:
        return start + timedelta(milliseconds=duration_ms)
    return None


def _capture_place(ingested: Leaf, link: Leaf | None, station_place: str) -> Element:
    media = _media(ingested)
    name, name_source = None, None
    if link is not None:
        name = _text(link.body.get("place_name")) or _text(link.body.get("place"))
        name_source = link_source(link) if name else None
    for value in (media.get("place"), media.get("location")):
        coordinates = parse_place(value)
        if coordinates is not None:
            shown = value if isinstance(value, str) else None
            return Element(shown, RECORDER, place=coordinates, place_name=name,
                           place_name_source=name_source)  # fmt: skip
    if name is not None:
        return Element(name, name_source, place_name=name, place_name_source=name_source)
    raw = _text(media.get("location"))
    if raw is not None:  # a recorder's place we cannot read: shown as written
        return Element(raw, RECORDER)
    if station_place.strip():
        return Element(station_place.strip(), STATION_DEFAULT)
    return Element(None, None)


def _collector(docking: Leaf | None, link: Leaf | None) -> Element:
    if link is not None and (collector := _text(link.body.get("collector"))):
        return Element(collector, link_source(link))
    if docking is not None and (officer := _text(docking.body.get("officer"))):
        # Dockings recorded before officer_source existed took --officer only.
        source = str(docking.body.get("officer_source") or "cli")
        return Element(officer, _OFFICER_SOURCES.get(source, OFFICER_INPUT))
    return Element(None, None)


def case_link(leaves: Sequence[Leaf], clip_id: str, case_number: str) -> Leaf | None:
    """The latest ``case.linked`` leaf naming this clip (or a session it was seen in)
    for this case."""
    sessions = {
        leaf.body.get("session_id") for leaf in leaves if leaf.body.get("clip_id") == clip_id
    }
    found = None
    for leaf in leaves:
        if leaf.kind != CASE_LINKED or leaf.body.get("case_number") != case_number:
            continue
        target = leaf.body.get("clip_id")
        if target == clip_id or (not target and leaf.body.get("session_id") in sessions):
            found = leaf
    return found


def _first(leaves: Sequence[Leaf], kind: str, key: str, value: Any) -> Leaf | None:
    return next((x for x in leaves if x.kind == kind and x.body.get(key) == value), None)


def clip_elements(
    leaves: Sequence[Leaf],
    clip_id: str,
    case_number: str,
    *,
    zone: tzinfo,
    station_place: str = "",
    link: Leaf | None = None,
) -> ClipElements:
    """The five elements of ``clip_id`` in ``case_number`` from the leaves that name it
    (its ``clip.ingested``, the ``docking.opened`` of its session, its case links)."""
    ingested = _first(leaves, CLIP_INGESTED, "clip_id", clip_id)
    if link is None:
        link = case_link(leaves, clip_id, case_number)
    docking = None
    if ingested is not None:
        session = ingested.body.get("session_id")
        docking = _first(leaves, DOCKING_OPENED, "session_id", session)
    number = (
        Element(str(link.body.get("case_number")), link_source(link))
        if link is not None
        else Element(None, None)
    )
    proof = _text(link.body.get("object_of_proof")) if link is not None else None
    return ClipElements(
        case_number=number,
        capture_time=_capture_time(ingested, zone) if ingested else Element(None, None),
        capture_place=(
            _capture_place(ingested, link, station_place) if ingested else Element(None, None)
        ),
        collector=_collector(docking, link),
        object_of_proof=(
            Element(proof, link_source(link)) if proof and link else Element(None, None)
        ),
    )
