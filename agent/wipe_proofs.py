"""What the station's ledger proves about a recorder's files, for a wipe.

The catalogue (``sightings``, ``docking_sessions``) only says where to look; every
verdict is read from leaf bytes: the ``docking.opened`` leaf names the recorder, the
``clip.ingested`` / ``clip.redocked`` leaf names the file and its copy, a
``clip.uploaded`` leaf carries central storage's confirmation.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import cast

from config.window_hash import window_hash_of
from docking import display_path, path_b64, raw_path
from ledger import Leaf, Ledger


@dataclass(frozen=True)
class ClipCopy:
    """A clip leaf proving a file's copy, with what the recorder's file must still match."""

    clip_id: str
    leaf: Leaf
    ingested: Leaf
    window_size: int
    window_hash: str
    first: str | None  # None: an empty file, which has no windows (and is never removed)
    last: str | None


class LedgerProofs:
    """Reads the ledger for one plan; every verdict comes from leaf bytes, the catalogue
    rows only say where to look."""

    def __init__(self, conn: sqlite3.Connection, ledger: Ledger, serial: str) -> None:
        self.conn, self.ledger, self.serial = conn, ledger, serial
        self._clips: dict[str, list[Leaf]] = {}
        self._sessions: dict[str, bool] = {}

    def clip_leaves(self, clip_id: str) -> list[Leaf]:
        if clip_id not in self._clips:
            self._clips[clip_id] = self.ledger.find(clip_id=clip_id)
        return self._clips[clip_id]

    def of_recorder(self, session_id: str, opened_leaf: int) -> bool:
        if session_id not in self._sessions:
            body = self.ledger.leaf(opened_leaf).body
            self._sessions[session_id] = (
                body.get("session_id") == session_id and body.get("recorder") == self.serial
            )
        return self._sessions[session_id]

    def copy(self, row: sqlite3.Row, rel: bytes) -> ClipCopy | str:
        """The leaf proving this sighting, or why it proves nothing."""
        disagree = (
            "the station's catalogue and its ledger disagree about this file: run `evidock verify`"
        )
        if not self.of_recorder(row["session_id"], row["opened_leaf"]):
            return disagree
        leaf = self.ledger.leaf(row["leaf_index"])
        body = leaf.body
        if (
            leaf.kind not in ("clip.ingested", "clip.redocked")
            or body.get("clip_id") != row["clip_id"]
            or body.get("session_id") != row["session_id"]
            or body.get("source_path") != display_path(rel)
            or body.get("source_path_b64", path_b64(rel)) != path_b64(rel)
        ):
            return disagree
        ingested = next(
            (x for x in self.clip_leaves(row["clip_id"]) if x.kind == "clip.ingested"), None
        )
        if ingested is None or ingested.body.get("sha256") != body.get("sha256"):
            return disagree
        # A clip.redocked leaf read the same bytes again; what it does not say itself
        # (whether that read was checked, the windows) its clip's clip.ingested leaf says.
        source = leaf if "windows" in body else ingested
        windows = source.body.get("windows") or []
        ends = (windows[0], windows[-1]) if windows else (None, None)
        if (row["first_window"], row["last_window"]) != ends:
            if source is not leaf:
                return (
                    "copied again with another window size than its first copy "
                    "(hashing.window_mib changed), which its clip.redocked leaf does not "
                    "record: its ends cannot be checked against the ledger"
                )
            return disagree
        if not windows and ingested.body.get("size") != 0:
            return disagree
        return ClipCopy(
            row["clip_id"],
            leaf,
            ingested,
            int(source.body["window_size"]),
            window_hash_of(source.body),
            *ends,
        )

    def verified(self, copy: ClipCopy) -> bool:
        body = copy.leaf.body if "verified" in copy.leaf.body else copy.ingested.body
        return body.get("verified") is True

    def confirmed(self, copy: ClipCopy) -> Leaf | None:
        sha256, size = copy.ingested.body["sha256"], copy.ingested.body["size"]
        for leaf in self.clip_leaves(copy.clip_id):
            body = leaf.body
            if (
                leaf.kind == "clip.uploaded"
                and body.get("sha256") == sha256
                and body.get("confirmed_sha256") == sha256
                and body.get("confirmed_size") == size
            ):
                return leaf
        return None

    def upload_state(self, clip_id: str) -> str:
        row = self.conn.execute(
            "SELECT state, last_error FROM upload_jobs WHERE clip_id = ? ORDER BY id DESC",
            (clip_id,),
        ).fetchone()
        if row is None:
            return "no upload is queued for it"
        if row["state"] == "parked":
            return f"its upload is parked ({row['last_error']}): fix that, then deliver"
        if row["last_error"]:
            return f"its upload failed and will be retried ({row['last_error']})"
        return "its upload is queued: `evidock deliver` (or the daemon) sends it"


def flagged_reason(ingested: Leaf) -> str | None:
    """Why a clip flagged at ingest stays on the recorder for a person to look at."""
    body = ingested.body
    if body.get("size") == 0:
        return (
            "empty file (0 bytes), flagged at ingest: the recorder may have failed while "
            "recording; kept for a person to look at"
        )
    media = body.get("media")
    if isinstance(media, dict) and media.get("readable") is False:
        problem = media.get("problem") or "unknown problem"
        return f"flagged at ingest ({problem}); kept for a person to look at"
    return None


def sightings_of(conn: sqlite3.Connection, serial: str) -> dict[bytes, list[sqlite3.Row]]:
    """Every recorded copy of this recorder's files by raw name, newest first."""
    rows = conn.execute(
        "SELECT s.*, d.opened_leaf FROM sightings s JOIN docking_sessions d"
        " ON d.session_id = s.session_id WHERE d.recorder = ? ORDER BY s.leaf_index DESC",
        (serial,),
    ).fetchall()
    found: dict[bytes, list[sqlite3.Row]] = {}
    for row in rows:
        b64 = row["source_path_b64"]
        rel = raw_path(str(row["source_path"]), b64)
        found.setdefault(rel, []).append(row)
    return found


def newest_session(conn: sqlite3.Connection, serial: str) -> sqlite3.Row | None:
    return cast(
        sqlite3.Row | None,
        conn.execute(
            "SELECT session_id, state, owner FROM docking_sessions WHERE recorder = ?"
            " ORDER BY opened_at DESC, rowid DESC LIMIT 1",
            (serial,),
        ).fetchone(),
    )
