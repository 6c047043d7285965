"""The durable upload queue (real SQLite file) and the plain-folder target."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.database import open_station_db, transaction
from uploader import ConfirmationMismatch, FolderTarget, TargetUnavailable, UploadQueue

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_enqueue_is_idempotent_and_survives_reopen(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    conn = open_station_db(db)
    queue = UploadQueue(conn)
    with transaction(conn):
        queue.enqueue("c1", "a" * 64, 10, "folder", T0)
        queue.enqueue("c1", "a" * 64, 10, "folder", T0)
    conn.close()
    again = UploadQueue(open_station_db(db))
    assert [j.clip_id for j in again.due(T0)] == ["c1"]


def test_failures_back_off_then_park(tmp_path: Path) -> None:
    conn = open_station_db(tmp_path / "station.db")
    queue = UploadQueue(conn)
    queue.enqueue("c1", "b" * 64, 1, "folder", T0)
    job = queue.due(T0)[0]
    queue.mark_failed(job, "unreachable", T0, max_attempts=2)
    assert queue.due(T0) == []
    assert [j.clip_id for j in queue.due(T0 + timedelta(seconds=6))] == ["c1"]
    job = queue.due(T0 + timedelta(seconds=6))[0]
    queue.mark_failed(job, "still unreachable", T0, max_attempts=2)
    parked = queue.jobs("parked")
    assert [(j.clip_id, j.attempts, j.last_error) for j in parked] == [
        ("c1", 2, "still unreachable")
    ]
    assert queue.due(T0 + timedelta(days=1)) == []
    assert not queue.is_delivered("c1")


def test_folder_target_confirms_what_it_holds(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(os.urandom(300_000))
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    target = FolderTarget(tmp_path / "central")
    confirmation = target.put(sha, src, {"clip_id": "c1", "source_path": "DCIM/录像 1.MP4"})
    assert confirmation.size == 300_000 and confirmation.sha256 == sha
    stored = Path(confirmation.location)
    assert stored.read_bytes() == src.read_bytes()
    assert stored.stat().st_mode & 0o222 == 0
    assert "录像" in stored.with_name(f"{sha}.json").read_text("utf-8")
    # Putting again is a no-op confirmation.
    assert target.put(sha, src, {}) == confirmation


def test_folder_target_detects_other_bytes_under_the_name(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"evidence")
    sha = hashlib.sha256(b"evidence").hexdigest()
    target = FolderTarget(tmp_path / "central")
    held = target.object_path(sha)
    held.parent.mkdir(parents=True)
    held.write_bytes(b"tampered")
    with pytest.raises(ConfirmationMismatch, match="other bytes"):
        target.put(sha, src, {})


def test_unwritable_central_folder_is_retryable(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"x")
    blocker = tmp_path / "central"
    blocker.write_bytes(b"not a folder")
    with pytest.raises(TargetUnavailable, match="retried"):
        FolderTarget(blocker).put(hashlib.sha256(b"x").hexdigest(), src, {})


def test_anchor_is_write_once(tmp_path: Path) -> None:
    target = FolderTarget(tmp_path / "central")
    path = target.put_anchor("checkpoint-00000005.txt", "origin\n5\nroot\n")
    assert path.read_text() == "origin\n5\nroot\n"
    assert target.put_anchor("checkpoint-00000005.txt", "origin\n5\nroot\n") == path
    with pytest.raises(ConfirmationMismatch, match="write-once"):
        target.put_anchor("checkpoint-00000005.txt", "origin\n5\nother\n")
    with pytest.raises(Exception, match="bad anchor name"):
        target.put_anchor("../escape", "x")
