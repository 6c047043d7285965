"""Reading an incident feed, from a file or an MQTT message: rows of case number,
officer, start, end, subject, category (and, where the agency gives it, the officer's
unit).

A CSV file has a header naming its columns (any order; extra columns are ignored); a
JSON file is a list of objects with the same keys. A message (``read_message``) is one
such object, a list of them, or an object with the list under ``incidents`` beside a
``request_id`` and ``by``; its rows are numbered by their place in the list. A row that
cannot be used is rejected with its line (row) number and why; the other rows are kept.
Times carry their offset (``2026-11-20T09:00:00+08:00``): a feed's time without one is
refused, never guessed. Case numbers are normalised and checked against the station's
rule. Files and messages share one row parser (``feed_of``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from agent.cases import check_case_number
from agent.errors import EvidockError
from config.case_numbers import CaseNumberRule

REQUIRED: Final = ("case_number", "officer", "start", "end")
OPTIONAL: Final = ("subject", "category", "unit")
MAX_FEED_BYTES: Final = 16 * 1024 * 1024
MAX_TEXT: Final = 256


class FeedError(EvidockError):
    """The feed file cannot be used at all (missing, not CSV/JSON, no usable header)."""


@dataclass(frozen=True)
class Incident:
    line: int
    case_number: str  # normal form
    case_number_typed: str
    officer: str
    start: datetime  # aware, UTC
    end: datetime
    subject: str | None
    category: str | None
    unit: str | None

    def as_leaf(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "case_number": self.case_number,
            "case_number_typed": self.case_number_typed,
            "officer": self.officer,
            "start": utc_text(self.start),
            "end": utc_text(self.end),
            "subject": self.subject,
            "category": self.category,
            "unit": self.unit,
        }


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str

    def as_leaf(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass(frozen=True)
class Feed:
    source: str
    data: bytes
    incidents: list[Incident]
    rejected: list[Rejected]


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _RowError(Exception):
    pass


def _text(row: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _RowError(f"{key} is missing")
        return None
    if not isinstance(value, str):
        raise _RowError(f"{key} is not text")
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise _RowError(f"{key} is longer than {MAX_TEXT} characters")
    if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in text):
        raise _RowError(f"{key} holds control characters")
    return text


def _moment(row: dict[str, Any], key: str) -> datetime:
    text = _text(row, key, required=True)
    assert text is not None
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise _RowError(
            f"{key} {text!r} is not an ISO time (e.g. 2026-11-20T09:00+08:00)"
        ) from None
    if moment.tzinfo is None:
        raise _RowError(f"{key} {text!r} has no offset; write e.g. {text}+08:00")
    return moment.astimezone(UTC)


def _incident(line: int, row: dict[str, Any], rule: CaseNumberRule | None) -> Incident:
    typed = _text(row, "case_number", required=True)
    assert typed is not None
    try:
        number = check_case_number(typed, rule)
    except EvidockError as exc:
        raise _RowError(str(exc)) from None
    officer = _text(row, "officer", required=True)
    assert officer is not None
    start, end = _moment(row, "start"), _moment(row, "end")
    if end < start:
        raise _RowError(f"end {utc_text(end)} is before start {utc_text(start)}")
    return Incident(
        line,
        number,
        typed,
        officer,
        start,
        end,
        *(_text(row, key, required=False) for key in OPTIONAL),
    )


def _rows_csv(text: str, name: str) -> list[tuple[int, dict[str, Any] | str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().casefold() for h in (reader.fieldnames or [])]
    lacking = [key for key in REQUIRED if key not in header]
    if lacking:
        raise FeedError(
            f"{name}: line 1: the header lacks {', '.join(lacking)}; the first line names "
            f"the columns: {','.join(REQUIRED + OPTIONAL)}"
        )
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, Any] | str]] = []
    try:
        # A row's line is where it ends (a quoted field may span lines).
        for row in reader:
            line = reader.line_num
            if None in row:
                rows.append((line, "more fields than the header names"))
            elif any(value is None for value in row.values()):
                rows.append((line, "fewer fields than the header names"))
            elif any(str(value).strip() for value in row.values()):
                rows.append((line, dict(row)))
    except csv.Error as exc:
        rows.append((reader.line_num, f"not CSV: {exc}"))
    return rows


def _rows_json(text: str, name: str) -> list[tuple[int, dict[str, Any] | str]]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FeedError(
            f"{name}: line {exc.lineno}: not JSON ({exc.msg}); give a list of objects"
        ) from None
    if not isinstance(items, list):
        raise FeedError(f"{name}: line 1: a JSON feed is a list of objects")
    # The line of each object: where the decoder finds its opening brace.
    decoder, rows = json.JSONDecoder(), []
    position = text.index("[") + 1
    for item in items:
        while text[position] in " \t\r\n,":
            position += 1
        line = text.count("\n", 0, position) + 1
        _value, position = decoder.raw_decode(text, position)
        rows.append((line, item if isinstance(item, dict) else "not an object"))
    return rows


@dataclass(frozen=True)
class FeedMessage:
    """An incident message as read, before its rows are checked (``feed_of``)."""

    rows: list[tuple[int, dict[str, Any] | str]]
    request_id: str | None = None  # the sender's, for a reply
    by: str | None = None
    problem: str | None = None  # why nothing in it can be used (not JSON, ...)


#: The keys of a message that wraps its rows (any other object is one row).
ENVELOPE: Final = ("schema", "request_id", "by", "incidents")


def read_message(payload: bytes) -> FeedMessage:
    """The rows of an incident message; never raises (a message that cannot be used at
    all says why in ``problem``, with its request id when it could be read)."""
    if len(payload) > MAX_FEED_BYTES:
        return FeedMessage([], problem=f"larger than {MAX_FEED_BYTES // 2**20} MiB")
    try:
        body = json.loads(payload.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        return FeedMessage([], problem=f"not UTF-8 JSON ({exc})")
    request_id = by = None
    if isinstance(body, dict) and "incidents" in body:
        extra = sorted(set(body) - set(ENVELOPE))
        rid = body.get("request_id")
        request_id = rid if isinstance(rid, str) else None
        if extra:
            return FeedMessage([], request_id, None, f"unknown keys {', '.join(extra)}")
        try:
            by = _text(body, "by", required=False)
        except _RowError as exc:
            return FeedMessage([], request_id, None, str(exc))
        items: Any = body["incidents"]
        if isinstance(items, dict):
            items = [items]
    else:
        items = [body] if isinstance(body, dict) else body
    if not isinstance(items, list):
        return FeedMessage(
            [], request_id, by, 'give an incident object, a list of them, or {"incidents": [...]}'
        )
    rows = [(n, i if isinstance(i, dict) else "not an object") for n, i in enumerate(items, 1)]
    return FeedMessage(rows, request_id, by)


def feed_of(
    source: str,
    data: bytes,
    rows: list[tuple[int, dict[str, Any] | str]],
    rule: CaseNumberRule | None,
    *,
    numbered: str = "line",
) -> Feed:
    """The incidents of a feed's rows and its rejected ones (the one row parser, for
    files and messages alike); FeedError if no row can be used. ``numbered``: what the
    numbers count, as the error says (a file's lines, a message's rows)."""
    incidents, rejected = [], []
    for line, row in rows:
        if isinstance(row, str):
            rejected.append(Rejected(line, row))
            continue
        row = {str(k).strip().casefold(): v for k, v in row.items()}
        try:
            incidents.append(_incident(line, row, rule))
        except _RowError as exc:
            rejected.append(Rejected(line, str(exc)))
    if not incidents:
        shown = "; ".join(f"{numbered} {r.line}: {r.reason}" for r in rejected[:3])
        raise FeedError(f"{source}: no usable incident ({shown or 'no rows'})")
    return Feed(source, data, incidents, rejected)


def read_feed(path: Path, rule: CaseNumberRule | None) -> Feed:
    """The incidents of a feed file and its rejected lines; FeedError if it is unusable."""
    name = path.name
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FEED_BYTES + 1)
    except FileNotFoundError:
        raise FeedError(f"{path} does not exist: give the incident feed file") from None
    except IsADirectoryError:
        raise FeedError(f"{path} is a folder: give the incident feed file") from None
    except OSError as exc:
        raise FeedError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_FEED_BYTES:
        raise FeedError(f"{path} is larger than {MAX_FEED_BYTES // 2**20} MiB: split the feed")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FeedError(f"{name}: line {line}: not UTF-8 text; save the feed as UTF-8") from None
    if not text.strip():
        raise FeedError(f"{name} is empty: nothing to import")
    is_json = path.suffix.casefold() == ".json" or text.lstrip().startswith("[")
    rows = _rows_json(text, name) if is_json else _rows_csv(text, name)
    return feed_of(name, data, rows, rule)
