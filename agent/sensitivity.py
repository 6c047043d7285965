"""Sensitivity (密级): who may view or export a clip, decided before a byte is read.

A clip is ``normal``, ``privacy`` or ``secret``: the strictest of its own mark
(``clip.sensitivity_set`` leaves, the ``clip_sensitivity`` row) and the sensitivity of
every case that holds it now (``cases``; a number with no case record counts as normal).
Who may see each level is the station's ``[sensitivity]`` config
(``config.policy.SensitivitySection``): normal footage anyone who says who and why;
privacy and secret only the people (or roles) listed.

Every refusal is an ``access.refused`` leaf (who, what, why refused, via), committed
before the command says no, so supervisors see attempts as they see accesses. A person
here is the name given on the command line: a claim, not a login (docs/sensitivity.md).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Final, Literal

from agent.database import transaction
from agent.errors import EvidockError
from config.case_numbers import SENSITIVITIES, fold_case_number
from config.policy import SensitivitySection, rank
from ledger import Leaf, Ledger, case_members

_LINKS: Final = ("case.linked", "case.unlinked")
_SEEN: Final = ("clip.ingested", "clip.redocked")
MAX_TEXT: Final = 256

Action = Literal["download", "export", "mark"]


class SensitivityError(EvidockError):
    """A mark that cannot be made as asked (no such clip, no reason); nothing recorded."""


@dataclass(frozen=True)
class ClipSensitivity:
    """A clip's sensitivity and where it comes from."""

    clip_id: str
    level: str  # the strictest of own and the cases'
    own: str = "normal"
    cases: dict[str, str] = field(default_factory=dict)  # case number -> its sensitivity

    def because(self) -> str:
        """Where the level comes from, for a message: ``its own mark``, ``case N``."""
        if self.level == "normal":
            return "normal"
        sources = [f"case {n}" for n, level in sorted(self.cases.items()) if level == self.level]
        if self.own == self.level:
            sources.insert(0, "its own mark")
        return ", ".join(sources)


def _link_numbers(leaves: list[Leaf], *, sessions_only: bool = False) -> set[str]:
    return {
        fold_case_number(leaf.body["case_number"])
        for leaf in leaves
        if leaf.kind in _LINKS
        and isinstance(leaf.body.get("case_number"), str)
        and not (sessions_only and leaf.body.get("clip_id"))
    }


def cases_holding(ledger: Ledger, clip_id: str) -> list[str]:
    """The case numbers (normal form) that hold the clip now: the one replay of links
    (``ledger.case_members``) of every number a link of the clip or its sessions names."""
    own = ledger.find(clip_id=clip_id)
    candidates = _link_numbers(own)
    sessions = {
        str(leaf.body["session_id"])
        for leaf in own
        if leaf.kind in _SEEN and isinstance(leaf.body.get("session_id"), str)
    }
    for session in sorted(sessions):
        candidates |= _link_numbers(ledger.find(session_id=session), sessions_only=True)
    return sorted(n for n in candidates if clip_id in case_members(ledger, n))


def case_holdings(ledger: Ledger) -> dict[str, list[str]]:
    """Clip id -> the case numbers holding it now, for every clip any case holds."""
    numbers = {
        fold_case_number(str(row[0]))
        for row in ledger.conn.execute(
            "SELECT DISTINCT case_number FROM ledger_leaves WHERE kind IN (?, ?)"
            " AND case_number IS NOT NULL",
            _LINKS,
        )
    }
    held: dict[str, list[str]] = {}
    for number in sorted(numbers):
        for clip_id in case_members(ledger, number):
            held.setdefault(clip_id, []).append(number)
    return held


def own_mark(conn: sqlite3.Connection, clip_id: str) -> str:
    row = conn.execute(
        "SELECT sensitivity FROM clip_sensitivity WHERE clip_id = ?", (clip_id,)
    ).fetchone()
    return "normal" if row is None else str(row[0])


def _case_level(conn: sqlite3.Connection, number: str) -> str:
    row = conn.execute("SELECT sensitivity FROM cases WHERE case_number = ?", (number,)).fetchone()
    return "normal" if row is None else str(row[0])


def combine(clip_id: str, own: str, cases: dict[str, str]) -> ClipSensitivity:
    level = max([own, *cases.values()], key=rank)
    return ClipSensitivity(clip_id, level, own, cases)


def clip_sensitivity(
    conn: sqlite3.Connection, ledger: Ledger, clip_id: str, numbers: list[str] | None = None
) -> ClipSensitivity:
    """The clip's sensitivity now; ``numbers``: the cases holding it, when known."""
    held = cases_holding(ledger, clip_id) if numbers is None else numbers
    return combine(clip_id, own_mark(conn, clip_id), {n: _case_level(conn, n) for n in held})


def case_sensitivities(
    conn: sqlite3.Connection, ledger: Ledger, case_number: str
) -> dict[str, ClipSensitivity]:
    """Each clip the case holds now, with its sensitivity (its other cases count too)."""
    return {c: clip_sensitivity(conn, ledger, c) for c in case_members(ledger, case_number)}


def record_refusal(
    conn: sqlite3.Connection,
    ledger: Ledger,
    *,
    who: str,
    purpose: str,
    action: Action,
    via: str,
    level: str,
    reason: str,
    clip_id: str | None = None,
    case_number: str | None = None,
    clips: list[str] | None = None,
) -> Leaf:
    """Commit one ``access.refused`` leaf; the caller then says no (AccessRefused)."""
    body: dict[str, object] = {
        "clip_id": clip_id,
        "case_number": case_number,
        "who": who,
        "purpose": purpose,
        "action": action,
        "via": via,
        "sensitivity": level,
        "reason": reason,
    }
    if clips is not None:
        body["clips"] = clips
    with transaction(conn):
        return ledger.append("access.refused", body)


def not_allowed(who: str, level: str) -> str:
    """The ``reason`` of a refusal leaf, and the heart of its message."""
    return f"{who} is not on the [sensitivity] {level} list of this station"


def check_fetch(
    conn: sqlite3.Connection,
    ledger: Ledger,
    policy: SensitivitySection,
    clip_id: str,
    *,
    who: str,
    purpose: str,
    via: str,
) -> str | None:
    """None if ``who`` may read the clip; else records the refusal and returns the one
    line to refuse with."""
    found = clip_sensitivity(conn, ledger, clip_id)
    if policy.allows(who, found.level):
        return None
    leaf = record_refusal(
        conn, ledger, who=who, purpose=purpose, action="download", via=via,
        level=found.level, reason=not_allowed(who, found.level), clip_id=clip_id,
    )  # fmt: skip
    return (
        f"clip {clip_id} is {found.level} ({found.because()}): {who} may not view it; "
        f"nothing was read; the attempt is recorded (ledger leaf {leaf.index}); ask someone "
        f"on the station's [sensitivity] {found.level} list"
    )


def check_export(
    conn: sqlite3.Connection,
    ledger: Ledger,
    policy: SensitivitySection,
    case_number: str,
    *,
    who: str,
    purpose: str,
    via: str,
) -> tuple[dict[str, str], str | None]:
    """Each clip's level (for the package), and None if ``who`` may export them all;
    else the refusal is recorded and the one line to refuse with is returned. A case
    is exported whole or not at all: one clip ``who`` may not see refuses the export."""
    found = case_sensitivities(conn, ledger, case_number)
    levels = {c: s.level for c, s in found.items()}
    barred = [c for c, level in levels.items() if not policy.allows(who, level)]
    if not barred:
        return levels, None
    level = max((levels[c] for c in barred), key=rank)
    number = fold_case_number(case_number)
    leaf = record_refusal(
        conn, ledger, who=who, purpose=purpose, action="export", via=via, level=level,
        reason=not_allowed(who, level), case_number=number, clips=barred,
    )  # fmt: skip
    shown = ", ".join(barred[:3]) + (f" and {len(barred) - 3} more" if len(barred) > 3 else "")
    return levels, (
        f"case {number} holds {level} footage ({shown}): {who} may not export it; nothing "
        f"was exported; the attempt is recorded (ledger leaf {leaf.index}); ask someone on "
        f"the station's [sensitivity] {level} list"
    )


@dataclass(frozen=True)
class Mark:
    clip_id: str
    level: str
    previous: str
    leaf_index: int | None  # None: nothing changed
    refused: str | None = None  # the one line to refuse with (a leaf recorded it)


def _text(name: str, value: str) -> str:
    text = value.strip()
    if not text:
        raise SensitivityError(f"--{name} is empty: say {'who' if name == 'by' else 'why'}")
    if len(text) > MAX_TEXT:
        raise SensitivityError(f"--{name} is longer than {MAX_TEXT} characters")
    if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in text):
        raise SensitivityError(f"--{name} holds control characters: type it again")
    return text


def mark_clip(
    conn: sqlite3.Connection,
    ledger: Ledger,
    policy: SensitivitySection,
    clip_id: str,
    level: str,
    *,
    by: str,
    reason: str,
    via: str = "cli",
) -> Mark:
    """Set the clip's own sensitivity: one ``clip.sensitivity_set`` leaf and its row.

    Raising a mark is open to anyone who says who and why (it only protects); changing
    a privacy or secret mark needs a person allowed at that level, else the attempt is
    an ``access.refused`` leaf (action ``mark``) and ``refused`` says so.
    """
    if level not in SENSITIVITIES:
        raise SensitivityError(f"{level!r} is not a sensitivity: write normal, privacy or secret")
    by, reason = _text("by", by), _text("reason", reason)
    with transaction(conn):
        if conn.execute("SELECT 1 FROM clips WHERE clip_id = ?", (clip_id,)).fetchone() is None:
            raise SensitivityError(
                f"no clip {clip_id} on this station: see `evidock ingest --json`"
            )
        previous = own_mark(conn, clip_id)
        if previous == level:
            return Mark(clip_id, level, previous, None)
        if not policy.allows(by, previous):
            leaf = record_refusal(
                conn, ledger, who=by, purpose=reason, action="mark", via=via, level=previous,
                reason=not_allowed(by, previous), clip_id=clip_id,
            )  # fmt: skip
            return Mark(
                clip_id, level, previous, None,
                f"clip {clip_id} is marked {previous}: {by} may not change that mark; the "
                f"attempt is recorded (ledger leaf {leaf.index}); ask someone on the "
                f"station's [sensitivity] {previous} list",
            )  # fmt: skip
        leaf = ledger.append(
            "clip.sensitivity_set",
            {"clip_id": clip_id, "sensitivity": level, "previous": previous, "by": by,
             "reason": reason},
        )  # fmt: skip
        conn.execute(
            "INSERT INTO clip_sensitivity (clip_id, sensitivity, set_by, reason, set_at,"
            " leaf_index) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (clip_id) DO UPDATE SET"
            " sensitivity = excluded.sensitivity, set_by = excluded.set_by,"
            " reason = excluded.reason, set_at = excluded.set_at,"
            " leaf_index = excluded.leaf_index",
            (clip_id, level, by, reason, leaf.at, leaf.index),
        )
    return Mark(clip_id, level, previous, leaf.index)
