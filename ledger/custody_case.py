"""One case's page of the custody report: its summary, then each of its clips.

A clip shows its five elements with their sources, its technical details and every
custody event the package holds for it, each event's body as labelled fields in the
report's language. Every value from a leaf is escaped (file names, case numbers and
officers' input can hold anything).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo
from html import escape
from typing import Any

from config.common import printable
from ledger.custody_format import (
    parse_time,
    show_duration,
    show_place,
    show_size,
    show_time,
    show_time_text,
)
from ledger.custody_model import CaseCustody, ClipCustody, coverage
from ledger.custody_text import Words
from ledger.elements import Element
from ledger.leaf import Leaf

# Body keys an event's details leave out: hashes and paths shown elsewhere, or data no
# person reads (window hashes, base64 paths, the media object shown as details).
_SKIP = frozenset(
    {
        "clip_id",
        "sha256",
        "blake3",
        "sm3",
        "windows",
        "window_size",
        "window_hash",
        "source_path_b64",
        "media",
        "usb",
        "recorder_clock",
        "confirmed_sha256",
        "kind",
        "verified",
        "recorder_time",
        "recorder_time_corrected",
        "important",
        "case_key",
        "normalised",
    }
)
_MAX_ITEMS = 10


def text(value: Any) -> str:
    """Any value as escaped HTML text; control and bidi characters made visible."""
    return escape(printable(str(value)))


def missing(w: Words) -> str:
    return f'<span class="missing">{escape(w("missing"))}</span>'


def row(label: str, value_html: str | None, w: Words, *, required: bool = True) -> str:
    """A labelled row; an empty value reads "missing" (red) if required, else "—"."""
    if value_html in (None, ""):
        value_html = missing(w) if required else "—"
    return f"<tr><th>{escape(label)}</th><td>{value_html}</td></tr>"


def _value(key: str, value: Any, w: Words, zone: tzinfo) -> str | None:
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return escape(w("yes") if value else w("no"))
    if isinstance(value, int):
        return text(value)
    if isinstance(value, str):
        shown = show_time_text(value, zone)
        return text(shown) if shown is not None else text(w.value(value))
    if isinstance(value, list):
        if key == "clips":
            return text(len(value))
        items = [_value(key, v, w, zone) or "—" for v in value[:_MAX_ITEMS]]
        more = f" … (+{len(value) - _MAX_ITEMS})" if len(value) > _MAX_ITEMS else ""
        return "; ".join(items) + more
    if isinstance(value, dict):
        parts = [
            f"{escape(w.field(str(k)))}: {shown}"
            for k, v in sorted(value.items())
            if (shown := _value(str(k), v, w, zone)) is not None and not isinstance(v, dict)
        ]
        return "; ".join(parts) or None
    return text(value)


def event_fields(leaf: Leaf, w: Words, zone: tzinfo) -> str:
    """An event's body as labelled fields (unknown keys under their own name)."""
    items = []
    for key, value in leaf.body.items():
        if key in _SKIP:
            continue
        shown = _value(key, value, w, zone)
        if shown is not None:
            items.append(f"<li><b>{escape(w.field(key, leaf.kind))}</b>{w.colon}{shown}</li>")
    if not w.known_event(leaf.kind):
        items.insert(0, f"<li><b>{escape(w('event'))}</b>{w.colon}{text(leaf.kind)}</li>")
    return f'<ul class="fields">{"".join(items)}</ul>' if items else ""


def events_table(leaves: Iterable[Leaf], w: Words, zone: tzinfo) -> str:
    rows = []
    for leaf in leaves:
        moment = parse_time(leaf.at, zone)
        at = show_time(moment, zone) if moment is not None else leaf.at
        rows.append(
            f'<tr><td class="num"><a href="leaves/{leaf.index:012d}.json">{leaf.index}</a></td>'
            f'<td class="time">{text(at)}</td><td>{escape(w.event(leaf.kind))}</td>'
            f"<td>{event_fields(leaf, w, zone)}</td></tr>"
        )
    head = "".join(
        f"<th>{escape(w(k))}</th>" for k in ("event_leaf", "event_time", "event", "event_details")
    )
    return f'<table class="events"><tr>{head}</tr>{"".join(rows)}</table>'


def _time_html(element: Element, w: Words, zone: tzinfo) -> str | None:
    if element.moment is None:
        return text(element.value) if element.value else None
    shown = show_time(element.moment, zone)
    if element.end is not None and element.end > element.moment:
        shown += f" {w('until')} {show_time(element.end, zone)}"
    note = f"{w('as_recorded')}: {element.value}"
    if element.corrected:
        note = f"{w('corrected')}; {note}"
    return f'{text(shown)}<div class="note">{text(note)}</div>'


def _place_html(element: Element, w: Words) -> str | None:
    lines = []
    if element.place is not None:
        lines.append(text(show_place(element.place, w.language)))
    if element.place_name:
        name = element.place_name
        if element.place is not None and element.place_name_source:
            name += f"（{w.source(element.place_name_source)}）"
        lines.append(text(name))
    elif element.place is None and element.value:
        lines.append(text(element.value))
    shown = "<br>".join(lines)
    if element.place is not None and element.value:
        shown += f'<div class="note">{text(w("as_recorded"))}: {text(element.value)}</div>'
    return shown or None


def elements_table(clip: ClipCustody, w: Words, zone: tzinfo) -> str:
    rows = []
    for name, element in clip.elements.items():
        if name == "capture_time":
            value = _time_html(element, w, zone)
        elif name == "capture_place":
            value = _place_html(element, w)
        else:
            value = text(element.value) if element.value else None
        source = missing(w) if element.missing else escape(w.source(element.source))
        rows.append(
            f"<tr><th>{escape(w.element(name))}</th><td>{value or missing(w)}</td>"
            f'<td class="source">{source}</td></tr>'
        )
    head = "".join(f"<th>{escape(w(k))}</th>" for k in ("element", "value", "source"))
    return f'<table class="elements"><tr>{head}</tr>{"".join(rows)}</table>'


def _integrity(media: dict[str, Any], w: Words) -> str | None:
    integrity = media.get("integrity")
    if isinstance(integrity, str) and integrity:
        return w.integrity(integrity)
    readable = media.get("readable")
    if readable is True:
        return w.integrity("ok")
    if readable is False:
        return w.integrity("undecodable")
    return None


def _as_recorded(value: Any, w: Words, zone: tzinfo) -> str | None:
    """A time a file or recorder wrote: local to the station, then as it was written."""
    if not isinstance(value, str) or not value:
        return None
    shown = show_time_text(value, zone)
    if shown is None:
        return text(value)
    return f'{text(shown)}<div class="note">{text(w("as_recorded"))}: {text(value)}</div>'


def _frame_rate(value: Any) -> str | None:
    """``30000/1001`` (leaves hold no floats) as ``29.97 fps``."""
    if not isinstance(value, str) or not value:
        return None
    top, _, bottom = value.partition("/")
    try:
        rate = int(top) / int(bottom or "1")
    except (ValueError, ZeroDivisionError):
        return text(value)
    shown = f"{rate:.2f}".rstrip("0").rstrip(".")
    return text(f"{shown} fps") if rate > 0 else None


def details_table(clip: ClipCustody, w: Words, zone: tzinfo) -> str:
    body = clip.ingested.body
    media: dict[str, Any] = body["media"] if isinstance(body.get("media"), dict) else {}
    duration = media.get("duration_ms")
    codecs = ", ".join(str(c) for c in (media.get("codec"), media.get("audio_codec")) if c)
    width, height = media.get("width"), media.get("height")
    rows = [
        ("clip_id", text(clip.clip_id)),
        ("original", text(body.get("source_path") or "")),
        ("recorder", text(body.get("recorder") or "")),
        ("recorder_clock", _as_recorded(body.get("recorder_time"), w, zone)),
        ("creation_time", _as_recorded(media.get("creation_time"), w, zone)),
        ("ingested_at", text(show_time_text(clip.ingested.at, zone) or clip.ingested.at)),
        (
            "duration",
            text(show_duration(duration / 1000, w.language)) if type(duration) is int else None,
        ),
        ("codec", text(codecs)),
        ("resolution", text(f"{width}×{height}") if width and height else None),
        ("frame_rate", _frame_rate(media.get("frame_rate"))),
        (
            "place_from",
            text(w.value(str(media["location_source"]))) if media.get("location_source") else None,
        ),
        ("recorder_serial", text(media.get("recorder_serial") or "")),
        ("integrity", text(i) if (i := _integrity(media, w)) else None),
        ("problem", text(media["problem"]) if media.get("problem") else ""),
        ("size", text(show_size(body.get("size"), w.language) or "")),
        ("verification", text(clip.verification)),
    ]
    cells = "".join(
        row(w.detail(key), value, w, required=False)
        for key, value in rows
        if not (key == "problem" and not value)
    )
    hashes = (
        f'<tr><th>SHA-256</th><td class="hash">{text(body.get("sha256"))}</td></tr>'
        f'<tr><th>BLAKE3</th><td class="hash">{text(body.get("blake3"))}</td></tr>'
    )
    return f'<table class="details">{cells}{hashes}</table>'


def sensitivity_mark(level: str, w: Words) -> str:
    """A visible mark of a privacy or secret clip (nothing for normal)."""
    if level not in ("privacy", "secret"):
        return ""
    return f'<span class="mark {level}">{escape(w("mark_" + level))}</span> '


def clip_article(clip: ClipCustody, n: int, total: int, w: Words, zone: tzinfo) -> str:
    return (
        f'<article class="clip" id="clip-{n}"><h3>{sensitivity_mark(clip.sensitivity, w)}'
        f"{escape(w('record'))} {n}/{total}{w.colon}"
        f"<code>clips/{text(clip.file_name)}</code></h3>"
        f"<h4>{escape(w('elements'))}</h4>{elements_table(clip, w, zone)}"
        f"<h4>{escape(w('details'))}</h4>{details_table(clip, w, zone)}"
        f"<h4>{escape(w('events'))}</h4>{events_table(clip.events, w, zone)}</article>"
    )


def _span(start: datetime | None, end: datetime | None, zone: tzinfo, w: Words) -> str | None:
    if start is None or end is None:
        return None
    return text(f"{show_time(start, zone)} {w('until')} {show_time(end, zone)}")


def summary_table(case: CaseCustody, w: Words, zone: tzinfo) -> str:
    cover = coverage(case.clips)
    gaps: str | None
    if cover.gaps:
        gaps = "<br>".join(
            text(
                w(
                    "gap_row",
                    start=show_time(a, zone),
                    end=show_time(b, zone),
                    length=show_duration((b - a).total_seconds(), w.language),
                )
            )
            for a, b in cover.gaps
        )
    else:
        gaps = text(w("no_gaps")) if cover.start is not None else None
    if cover.untimed:
        gaps = (gaps + "<br>" if gaps else "") + text(w("unknown_times", n=cover.untimed))
    incomplete = []
    for n, clip in enumerate(case.clips, 1):
        if names := clip.elements.missing():
            absent = "、".join(w.element(name) for name in names)
            incomplete.append(f"{n}. {text(clip.file_name)}{w.colon}{text(absent)}")
    rows = [
        row(w("case_number"), text(case.case_number), w),
        row(w("clip_count"), text(len(case.clips)), w),
        row(w("total_duration"), text(show_duration(cover.total_seconds, w.language)), w),
        row(w("span"), _span(cover.start, cover.end, zone, w), w),
        row(w("gaps"), gaps, w),
        row(w("incomplete"), "<br>".join(incomplete) or text(w("all_complete")), w),
    ]
    return f'<table class="summary">{"".join(rows)}</table>'


def hashes_table(case: CaseCustody, w: Words, zone: tzinfo) -> str:
    rows = []
    for n, clip in enumerate(case.clips, 1):
        moment = clip.elements.capture_time.moment
        rows.append(
            f'<tr><td class="num"><a href="#clip-{n}">{n}</a></td>'
            f"<td><code>clips/{text(clip.file_name)}</code></td>"
            f'<td class="time">{text(show_time(moment, zone)) if moment else missing(w)}</td>'
            f'<td class="hash">{text(clip.ingested.body.get("sha256"))}</td></tr>'
        )
    head = (
        f"<th>#</th><th>{escape(w('file'))}</th><th>{escape(w.element('capture_time'))}</th>"
        "<th>SHA-256</th>"
    )
    return f'<table class="hashes"><tr>{head}</tr>{"".join(rows)}</table>'


def case_section(case: CaseCustody, w: Words, zone: tzinfo) -> str:
    """One case: a page of its own (print CSS), its summary first, then its clips."""
    events = (
        f"<h3>{escape(w('events'))}</h3>{events_table(case.events, w, zone)}" if case.events else ""
    )
    clips = "".join(
        clip_article(clip, n, len(case.clips), w, zone) for n, clip in enumerate(case.clips, 1)
    )
    return (
        f'<section class="case"><h2>{escape(w("case"))} {text(case.case_number)}</h2>'
        f"<h3>{escape(w('summary'))}</h3>{summary_table(case, w, zone)}"
        f"<h3>{escape(w('hashes'))}</h3>{hashes_table(case, w, zone)}{events}{clips}</section>"
    )
