"""A copied file becoming a clip: its content-derived id, its ``clip.ingested`` leaf body,
its catalogue row, upload job and sighting (or a ``clip.redocked`` leaf for footage the
station already holds), and capture times corrected by the recorder's clock offset."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agent import media_times, metadata
from agent.clock import iso, utc_now
from agent.outcomes import FileOutcome
from docking import FootageFile, display_path, path_b64
from hashing import CopyResult
from ledger import Ledger
from uploader import UploadQueue


def clip_id_for(sha256: str) -> str:
    # Content-derived so that the same footage docked twice is one clip; 96 bits keep
    # prefix collisions out of reach of anyone crafting files.
    return "c" + sha256[:24]


def corrected_time(recorder_time: str | None, offset_ms: int | None) -> str | None:
    """The recorder's time moved by its clock offset: what the station's clock would have
    said (naive local ISO, like the recorder's own)."""
    if recorder_time is None or offset_ms is None:
        return None
    try:
        moment = datetime.fromisoformat(recorder_time)
    except ValueError:
        return None
    return (moment - timedelta(milliseconds=offset_ms)).isoformat()


@dataclass(frozen=True)
class CopiedClip:
    """A file committed to the store, about to become a clip: its leaf and its row."""

    session_id: str
    recorder: str
    item: FootageFile
    result: CopyResult
    media: metadata.MediaInfo | None
    clip_id: str
    clock_offset_ms: int | None = None
    important: bool = False

    def leaf_body(self) -> dict[str, Any]:
        result, item = self.result, self.item
        return {
            # The recorder's own time from the name, and beside it (never instead of it)
            # that time corrected by the recorder's clock offset measured at docking.
            "recorder_time_corrected": corrected_time(item.recorder_time, self.clock_offset_ms),
            "important": self.important,
            "clip_id": self.clip_id,
            "session_id": self.session_id,
            "sha256": result.sha256,
            "blake3": result.blake3,
            "sm3": result.sm3,
            "size": result.size,
            "window_size": result.window_size,
            "windows": list(result.windows),
            "window_hash": result.window_hash,
            # True when the copy on disk was re-read and matched what the recorder gave.
            "verified": result.verified,
            "recorder": self.recorder,
            "kind": item.kind,
            "source_path": display_path(item.rel_path),
            "source_path_b64": path_b64(item.rel_path),
            "recorder_time": item.recorder_time,
            "media": self.media_body(),
        }

    def media_body(self) -> dict[str, Any] | None:
        """The ``media`` object: ffprobe's view, and the start and end moved by the
        recorder's clock offset measured at docking (media_times.corrected)."""
        if self.media is None:
            return None
        body = self.media.as_leaf_body()
        offset = self.clock_offset_ms
        body["clock_offset_ms"] = offset
        body["start_corrected"] = media_times.corrected(self.media.start, offset)
        body["end_corrected"] = media_times.corrected(self.media.end, offset)
        return body

    def insert(self, conn: sqlite3.Connection, leaf_index: int) -> None:
        result, item, media = self.result, self.item, self.media
        conn.execute(
            "INSERT INTO clips (clip_id, sha256, blake3, sm3, size, kind, recorder, session_id,"
            " source_path, source_path_b64, recorder_time, ingested_at, duration_ms, codec,"
            " creation_time, location, readable, media_problem, leaf_index)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.clip_id,
                result.sha256,
                result.blake3,
                result.sm3,
                result.size,
                item.kind,
                self.recorder,
                self.session_id,
                display_path(item.rel_path),
                path_b64(item.rel_path),
                item.recorder_time,
                iso(utc_now()),
                media.duration_ms if media else None,
                media.codec if media else None,
                media.creation_time if media else None,
                media.location if media else None,
                None if media is None else int(media.readable),
                media.problem if media else None,
                leaf_index,
            ),
        )
        body = self.media_body()
        if body is not None:
            _insert_media(conn, self.clip_id, body, leaf_index)


def _insert_media(
    conn: sqlite3.Connection, clip_id: str, media: dict[str, Any], leaf_index: int
) -> None:
    """The clip's ``clip_media`` row: the leaf's ``media`` object, column by column."""
    track = media.get("track") or {}
    conn.execute(
        "INSERT INTO clip_media (clip_id, integrity, problem, kind, duration_ms, video_codec,"
        " audio_codec, width, height, frame_rate, start_recorder, end_recorder,"
        " start_corrected, end_corrected, clock_offset_ms, location, location_source,"
        " track_points, recorder_serial, leaf_index)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            clip_id,
            media["integrity"],
            media["problem"],
            media["kind"],
            media["duration_ms"],
            media["codec"],
            media["audio_codec"],
            media["width"],
            media["height"],
            media["frame_rate"],
            media["start"],
            media["end"],
            media["start_corrected"],
            media["end_corrected"],
            media["clock_offset_ms"],
            media["location"],
            media["location_source"],
            track.get("points"),
            media["recorder_serial"],
            leaf_index,
        ),
    )


def record_copy(
    conn: sqlite3.Connection, led: Ledger, copied: CopiedClip, outcome: FileOutcome, target: str
) -> None:
    """Put a committed copy on record (in the caller's transaction): a new clip (leaf, row,
    upload job to ``target``) or a sighting of a clip already held (``clip.redocked``);
    either way the sighting a wipe and a re-docking rely on. Fills ``outcome``."""
    result, item, media = copied.result, copied.item, copied.media
    outcome.size, outcome.sha256, outcome.blake3 = result.size, result.sha256, result.blake3
    outcome.sm3, outcome.verified = result.sm3, result.verified
    outcome.resumed_bytes = result.resumed_bytes
    if media is not None:
        outcome.media_readable, outcome.media_problem = media.readable, media.problem
    clip_id = outcome.clip_id = copied.clip_id
    known = conn.execute("SELECT clip_id FROM clips WHERE sha256 = ?", (result.sha256,)).fetchone()
    if known is not None:
        clip_id = outcome.clip_id = known["clip_id"]
        leaf = led.append(
            "clip.redocked",
            {
                "clip_id": clip_id,
                "session_id": copied.session_id,
                "sha256": result.sha256,
                "source_path": outcome.source_path,
                # this docking's own read of the file: what a wipe relies on
                "source_path_b64": path_b64(item.rel_path),
                "verified": result.verified,
                "window_size": result.window_size,
                "windows": list(result.windows),
                "window_hash": result.window_hash,
            },
        )
        outcome.status = "seen"
    else:
        leaf = led.append("clip.ingested", copied.leaf_body())
        copied.insert(conn, leaf.index)
        UploadQueue(conn).enqueue(clip_id, result.sha256, result.size, target, utc_now())
        outcome.status = "new"
    # What the file looked like on the recorder when it was copied: a wipe removes only a
    # file that still is this one, and a recorder left docked is recognised.
    conn.execute(
        "INSERT OR IGNORE INTO sightings (session_id, clip_id, source_path, leaf_index,"
        " size, mtime_ns, first_window, last_window, source_path_b64)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            copied.session_id,
            clip_id,
            outcome.source_path,
            leaf.index,
            item.size,
            item.mtime_ns,
            result.windows[0] if result.windows else None,
            result.windows[-1] if result.windows else None,
            path_b64(item.rel_path),
        ),
    )
    outcome.leaf_index = leaf.index
