"""What became of each file of a docking session, and the session's report.

A file is ``new`` or ``seen`` (stored, by this docking or an earlier one), ``known``
(unchanged since a session copied it: not read again, docking.recheck = "metadata"),
``failed``, ``refused`` or ``skipped`` (left on the recorder, with the reason).
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from docking import FootageFile, display_path, path_b64, raw_path

SAFE_STATUSES = frozenset({"new", "seen", "known"})

STOPPED = "not copied: the session was stopped before this file; it stays on the recorder"
STOPPED_MID_FILE = (
    "copy stopped part-way: the station was stopping; the file stays on the recorder and "
    "docking it again resumes the copy"
)
NOT_PROBED_STOPPING = (
    "not probed: the station was stopping while ffprobe ran (the clip itself is stored "
    "and verified)"
)


@dataclass
class FileOutcome:
    """What became of one entry of the volume (``status``: new, seen, failed, refused)."""

    source_path: str
    status: str
    size: int | None = None
    sha256: str | None = None
    blake3: str | None = None
    sm3: str | None = None
    clip_id: str | None = None
    kind: str | None = None
    source_path_b64: str | None = None
    reason: str | None = None
    media_readable: bool | None = None
    media_problem: str | None = None
    resumed_bytes: int = 0
    verified: bool = False
    leaf_index: int | None = None

    @property
    def warning(self) -> str | None:
        """Why a stored clip deserves a look (kept and flagged, never dropped)."""
        if self.status not in ("new", "seen"):
            return None
        if self.size == 0:
            return "empty file (0 bytes): the recorder may have failed while recording"
        if self.media_readable is False:
            return f"media not readable: {self.media_problem or 'unknown problem'}"
        return None


@dataclass
class SessionReport:
    session_id: str
    recorder: str
    source: str
    officer: str | None
    outcomes: list[FileOutcome] = field(default_factory=list)
    case_number: str | None = None

    # Set when the whole volume matched a finished session and nothing was read: the
    # session that already holds it (no new session is opened).
    already_safe_in: str | None = None
    # Where it sits and who carried it: set when the session is opened.
    slot: str | None = None
    usb: dict[str, Any] | None = None
    officer_source: str = "none"
    # The recorder's clock at docking and how far it is ahead (+) of the station's.
    recorder_clock: str | None = None
    clock_method: str | None = None
    clock_offset_ms: int | None = None

    @property
    def ok(self) -> bool:
        return all(o.status in SAFE_STATUSES for o in self.outcomes)

    @property
    def problems(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status not in SAFE_STATUSES]

    @property
    def flagged(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.warning is not None]

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def as_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "recorder": self.recorder,
            "source": self.source,
            "officer": self.officer,
            "case_number": self.case_number,
            "ok": self.ok,
            "new": self.count("new"),
            "seen": self.count("seen"),
            "clips": [asdict(o) for o in self.outcomes if o.status in ("new", "seen")],
            "problems": [asdict(o) for o in self.problems],
        }


def not_copied(item: FootageFile, reason: str) -> FileOutcome:
    return FileOutcome(
        source_path=display_path(item.rel_path),
        source_path_b64=path_b64(item.rel_path),
        status="skipped",
        kind=item.kind,
        size=item.size,
        reason=reason,
    )


def known_files(
    conn: sqlite3.Connection, serial: str
) -> dict[tuple[bytes, int, int], tuple[str, str]]:
    """(name, size, mtime) of every file a session of this recorder copied -> (clip id,
    session id): what a recorder left docked still holds needs no second read."""
    rows = conn.execute(
        "SELECT g.source_path, g.source_path_b64, g.size, g.mtime_ns, g.clip_id, g.session_id"
        " FROM sightings g JOIN docking_sessions s ON s.session_id = g.session_id"
        " WHERE s.recorder = ? AND g.size IS NOT NULL AND g.mtime_ns IS NOT NULL"
        " ORDER BY g.leaf_index",
        (serial,),
    )
    known: dict[tuple[bytes, int, int], tuple[str, str]] = {}
    for row in rows:
        raw = row["source_path_b64"]
        name = raw_path(str(row["source_path"]), raw)
        known[(name, int(row["size"]), int(row["mtime_ns"]))] = (
            str(row["clip_id"]),
            str(row["session_id"]),
        )
    return known


def known_outcome(item: FootageFile, match: tuple[str, str]) -> FileOutcome:
    clip_id, session_id = match
    return FileOutcome(
        source_path=display_path(item.rel_path),
        source_path_b64=path_b64(item.rel_path),
        status="known",
        kind=item.kind,
        size=item.size,
        clip_id=clip_id,
        reason=f"unchanged since session {session_id} copied it (same name, size and "
        'modification time): not read again (docking.recheck = "metadata")',
    )
