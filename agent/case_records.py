"""Cases as first-class records: opened, changed and closed, each a ledger leaf.

A case is its number (the normal form, ``config.case_numbers``; the typed form is kept
beside it), its enforcement subject (当事人), category, unit, whether whole-process
recording is required, the time it covers, its sensitivity and retention category.
``case.opened``, ``case.changed`` (the changed fields, their new and previous values, who
and why) and ``case.closed`` are the record; the ``cases`` row is the catalogue's copy,
written in the same transaction. Sensitivity and retention are kept here only: who may
see what, and how long footage is kept, are enforced elsewhere.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from agent.cases import check_case_number
from agent.database import transaction
from agent.errors import CaseError
from config.case_numbers import CASE_FIELDS, CaseNumberRule
from ledger import Ledger

MAX_TEXT: Final = 256


@dataclass(frozen=True)
class CaseRecord:
    case_number: str
    case_number_typed: str
    subject: str
    category: str
    unit: str
    whole_process: bool
    starts: str | None
    ends: str | None
    sensitivity: str
    retention: str | None
    opened_by: str | None
    opened_at: str
    opened_leaf: int
    changed_at: str | None
    changed_leaf: int | None
    closed_by: str | None
    closed_at: str | None
    closed_reason: str | None
    closed_leaf: int | None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CASE_FIELDS}

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def text_field(name: str, value: str | None, *, required: bool = False) -> str | None:
    """A free-text field as entered: trimmed, not empty when required, no control chars."""
    if value is None:
        if required:
            raise CaseError(f"give --{name.replace('_', '-')}: a case needs it")
        return None
    text = value.strip()
    if not text:
        if required:
            raise CaseError(f"--{name.replace('_', '-')} is empty: give it as on the case file")
        return None
    if len(text) > MAX_TEXT:
        raise CaseError(f"--{name.replace('_', '-')} is longer than {MAX_TEXT} characters")
    if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in text):
        raise CaseError(f"--{name.replace('_', '-')} holds control characters: type it again")
    return text


def moment(name: str, value: str | None) -> str | None:
    """An ISO time with its offset (``2026-11-22T08:30+08:00``), kept as entered."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise CaseError(
            f"--{name} {text!r} is not an ISO time; write e.g. 2026-11-22T08:30+08:00"
        ) from None
    if parsed.tzinfo is None:
        raise CaseError(f"--{name} {text!r} has no time zone; add the offset, e.g. {text}+08:00")
    return parsed.isoformat()


def _row(row: sqlite3.Row) -> CaseRecord:
    values = dict(row)
    values["whole_process"] = bool(values["whole_process"])
    return CaseRecord(**values)


def find_case(conn: sqlite3.Connection, number: str) -> CaseRecord | None:
    row = conn.execute("SELECT * FROM cases WHERE case_number = ?", (number,)).fetchone()
    return None if row is None else _row(row)


def list_cases(conn: sqlite3.Connection, state: str | None = None) -> list[CaseRecord]:
    """Cases by number; ``state`` "open" or "closed" keeps only those."""
    where = {"open": " WHERE closed_at IS NULL", "closed": " WHERE closed_at IS NOT NULL"}
    rows = conn.execute(f"SELECT * FROM cases{where.get(state or '', '')} ORDER BY case_number")
    return [_row(row) for row in rows]


def _check_times(starts: str | None, ends: str | None) -> None:
    if starts and ends and datetime.fromisoformat(ends) < datetime.fromisoformat(starts):
        raise CaseError(
            f"the case ends ({ends}) before it starts ({starts}): check --starts/--ends"
        )


def create_case(
    conn: sqlite3.Connection,
    ledger: Ledger,
    typed_number: str,
    fields: dict[str, Any],
    *,
    by: str | None,
    rule: CaseNumberRule | None,
) -> CaseRecord:
    """Open a case: one ``case.opened`` leaf and its row. CaseError if the number (in
    any form) names a case already."""
    number = check_case_number(typed_number, rule)
    _check_times(fields["starts"], fields["ends"])
    with transaction(conn):
        existing = find_case(conn, number)
        if existing is not None:
            raise CaseError(
                f"case {number} exists already (entered as {existing.case_number_typed}, "
                f"opened {existing.opened_at}): see `evidock case show {number}`"
            )
        body = {"case_number": number, "case_number_typed": typed_number.strip(), "by": by}
        body.update((name, fields[name]) for name in CASE_FIELDS)
        leaf = ledger.append("case.opened", body)
        conn.execute(
            "INSERT INTO cases (case_number, case_number_typed, subject, category, unit,"
            " whole_process, starts, ends, sensitivity, retention, opened_by, opened_at,"
            " opened_leaf) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                number,
                body["case_number_typed"],
                fields["subject"],
                fields["category"],
                fields["unit"],
                int(fields["whole_process"]),
                fields["starts"],
                fields["ends"],
                fields["sensitivity"],
                fields["retention"],
                by,
                leaf.at,
                leaf.index,
            ),
        )
        made = find_case(conn, number)
    assert made is not None
    return made


def _open_case(conn: sqlite3.Connection, typed_number: str, doing: str) -> CaseRecord:
    number = check_case_number(typed_number)
    case = find_case(conn, number)
    if case is None:
        raise CaseError(f"no case {number} on this station: see `evidock case list`")
    if not case.is_open:
        raise CaseError(
            f"case {number} was closed {case.closed_at} by {case.closed_by}: "
            f"a closed case is not {doing}"
        )
    return case


def edit_case(
    conn: sqlite3.Connection,
    ledger: Ledger,
    typed_number: str,
    changes: dict[str, Any],
    *,
    by: str,
    reason: str,
) -> tuple[CaseRecord, dict[str, Any]]:
    """Change some fields of an open case: one ``case.changed`` leaf naming the fields
    that really change. CaseError (nothing written) if none would."""
    with transaction(conn):
        case = _open_case(conn, typed_number, "edited")
        current = case.fields()
        changed = {k: v for k, v in changes.items() if current[k] != v}
        if not changed:
            raise CaseError(
                f"case {case.case_number} already holds these values: nothing to change"
            )
        merged = {**current, **changed}
        _check_times(merged["starts"], merged["ends"])
        leaf = ledger.append(
            "case.changed",
            {
                "case_number": case.case_number,
                "changes": changed,
                "previous": {k: current[k] for k in changed},
                "by": by,
                "reason": reason,
            },
        )
        values = {k: int(v) if k == "whole_process" else v for k, v in changed.items()}
        assignments = ", ".join(f"{k} = ?" for k in values)
        conn.execute(
            f"UPDATE cases SET {assignments}, changed_at = ?, changed_leaf = ?"
            " WHERE case_number = ?",
            (*values.values(), leaf.at, leaf.index, case.case_number),
        )
        made = find_case(conn, case.case_number)
    assert made is not None
    return made, changed


def close_case(
    conn: sqlite3.Connection, ledger: Ledger, typed_number: str, *, by: str, reason: str
) -> CaseRecord:
    """Close an open case: one ``case.closed`` leaf and its row."""
    with transaction(conn):
        case = _open_case(conn, typed_number, "closed again")
        leaf = ledger.append(
            "case.closed", {"case_number": case.case_number, "by": by, "reason": reason}
        )
        conn.execute(
            "UPDATE cases SET closed_by = ?, closed_at = ?, closed_reason = ?, closed_leaf = ?"
            " WHERE case_number = ?",
            (by, leaf.at, reason, leaf.index, case.case_number),
        )
        made = find_case(conn, case.case_number)
    assert made is not None
    return made
