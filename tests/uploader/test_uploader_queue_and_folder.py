"""The durable upload queue (real SQLite file, claims, saved upload state) and the
plain-folder target (digested through the station's hashing pipeline)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import agent.database
import uploader.schema
from agent.database import open_station_db, transaction
from agent.delivery import store_hasher
from hashing import HashOptions
from uploader import (
    LEASE,
    ClaimLost,
    ConfirmationMismatch,
    FolderTarget,
    SourceIntegrityError,
    Target,
    TargetUnavailable,
    UploadedPart,
    UploadQueue,
    UploadState,
    UploadStopped,
)

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
HASHER = store_hasher(HashOptions())


def _folder(root: Path) -> FolderTarget:
    return FolderTarget(root, hasher=HASHER)


def _queue_with(tmp_path: Path, *clips: str) -> UploadQueue:
    queue = UploadQueue(open_station_db(tmp_path / "station.db"))
    with transaction(queue.conn):
        for n, clip in enumerate(clips):
            queue.enqueue(clip, f"{n:x}" * 64, 10, "folder", T0)
    return queue


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
    again.conn.close()


def test_failures_back_off_then_park(tmp_path: Path) -> None:
    queue = _queue_with(tmp_path, "c1")
    (job,) = queue.claim("me", T0)
    assert queue.fail(job, "unreachable", T0, max_attempts=2) == "queued"
    assert queue.claim("me", T0) == []
    (job,) = queue.claim("me", T0 + timedelta(seconds=6))
    assert job.clip_id == "c1"
    assert queue.fail(job, "still unreachable", T0, max_attempts=2) == "parked"
    parked = queue.jobs("parked")
    assert [(j.clip_id, j.attempts, j.last_error, j.claimed_by) for j in parked] == [
        ("c1", 2, "still unreachable", None)
    ]
    assert queue.claim("me", T0 + timedelta(days=1)) == []
    assert not queue.is_delivered("c1")
    queue.conn.close()


def test_a_claimed_job_is_nobody_elses_until_its_lease_runs_out(tmp_path: Path) -> None:
    queue = _queue_with(tmp_path, "c1", "c2")
    other = UploadQueue(open_station_db(tmp_path / "station.db"))
    (mine,) = queue.claim("a", T0)
    (theirs,) = other.claim("b", T0)
    assert (mine.clip_id, theirs.clip_id) == ("c1", "c2")
    assert other.claim("b", T0 + LEASE - timedelta(seconds=1)) == []
    assert queue.claimed(T0) == 2 and queue.due(T0) == []
    # "a" crashed: once its lease ran out, "b" takes c1; "a" can no longer finish it.
    (taken,) = other.claim("b", T0 + LEASE)
    assert (taken.clip_id, taken.claimed_by) == ("c1", "b")
    with transaction(queue.conn):
        assert not queue.complete(mine, "x", T0 + LEASE)
    with pytest.raises(ClaimLost), transaction(queue.conn):
        queue.fail(mine, "late", T0 + LEASE, max_attempts=3)
    with pytest.raises(ClaimLost):
        queue.renew(mine, T0 + LEASE)
    assert not queue.release(mine)
    with transaction(other.conn):
        assert other.complete(taken, "central/c1", T0 + LEASE)
    assert queue.is_delivered("c1")
    with pytest.raises(ValueError, match="not claimed"):
        queue.release(queue.jobs()[0])
    queue.conn.close()
    other.conn.close()


def test_complete_belongs_in_the_transaction_that_records_the_upload(tmp_path: Path) -> None:
    queue = _queue_with(tmp_path, "c1")
    (job,) = queue.claim("a", T0)
    with pytest.raises(RuntimeError, match="inside the transaction"):
        queue.complete(job, "x", T0)
    queue.conn.close()


def test_a_claim_is_taken_by_one_of_many_racing_deliverers(tmp_path: Path) -> None:
    clips = [f"c{n}" for n in range(40)]
    _queue_with(tmp_path, *clips).conn.close()
    start = threading.Barrier(4)
    taken: dict[str, list[str]] = {}

    def claimer(name: str) -> None:
        queue = UploadQueue(open_station_db(tmp_path / "station.db"))
        start.wait()
        mine = taken.setdefault(name, [])
        while jobs := queue.claim(name, T0):
            mine.extend(job.clip_id for job in jobs)
        queue.conn.close()

    threads = [threading.Thread(target=claimer, args=(f"d{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [clip for mine in taken.values() for clip in mine]
    assert sorted(every) == sorted(clips)


def test_upload_state_is_saved_with_the_claim_and_kept_for_the_next_deliverer(
    tmp_path: Path,
) -> None:
    queue = _queue_with(tmp_path, "c1")
    (job,) = queue.claim("a", T0)
    assert job.upload is None
    state = UploadState("upload-7", (UploadedPart(1, 5, "etag-1"), UploadedPart(2, 5, "etag-2")))
    job = queue.renew(job, T0 + timedelta(minutes=1), state=state)
    assert job.upload == state and state.sent == 10
    with transaction(queue.conn):
        assert queue.fail(job, "connection reset", T0, max_attempts=5) == "queued"
    queue.conn.close()
    # A reopened database (a restarted station) hands the state to the next claim.
    again = UploadQueue(open_station_db(tmp_path / "station.db"))
    (resumed,) = again.claim("b", T0 + timedelta(hours=1))
    assert resumed.upload == state and resumed.attempts == 1
    with transaction(again.conn):
        assert again.complete(resumed, "central/c1", T0 + timedelta(hours=1))
    assert again.jobs()[0].upload is None
    again.conn.close()


def test_jobs_queued_before_claims_existed_are_claimed_after_the_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_only = tuple(
        (room, scripts[:1] if room == "uploader" else scripts)
        for room, scripts in agent.database.ROOM_MIGRATIONS
    )
    monkeypatch.setattr(agent.database, "ROOM_MIGRATIONS", first_only)
    old = open_station_db(tmp_path / "station.db")
    old.execute(
        "INSERT INTO upload_jobs (clip_id, sha256, size, target, next_attempt_at, created_at)"
        " VALUES ('c1', ?, 10, 'folder', '2026-11-22T08:00:00.000000Z', "
        "'2026-11-22T08:00:00.000000Z')",
        ("a" * 64,),
    )
    old.close()
    monkeypatch.undo()
    queue = UploadQueue(open_station_db(tmp_path / "station.db"))
    versions = queue.conn.execute(
        "SELECT max(version) FROM schema_migrations WHERE room = 'uploader'"
    ).fetchone()[0]
    assert versions == len(uploader.schema.MIGRATIONS)
    (job,) = queue.claim("a", T0)
    assert (job.clip_id, job.claimed_by, job.upload) == ("c1", "a", None)
    queue.conn.close()


def test_folder_target_confirms_what_it_holds(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(os.urandom(300_000))
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    target: Target = _folder(tmp_path / "central")
    assert target.head(sha) is None
    confirmation = target.put(sha, src, {"clip_id": "c1", "source_path": "DCIM/录像 1.MP4"})
    assert confirmation.size == 300_000 and confirmation.sha256 == sha
    stored = Path(confirmation.location)
    assert stored.read_bytes() == src.read_bytes()
    assert stored.stat().st_mode & 0o222 == 0
    assert "录像" in stored.with_name(f"{sha}.json").read_text("utf-8")
    assert target.head(sha) == confirmation
    # Putting again is a no-op confirmation, even without the source.
    src.unlink()
    assert target.put(sha, src, {}) == confirmation
    assert sorted(p.name for p in stored.parent.iterdir()) == [sha, f"{sha}.json"]


def test_folder_target_detects_other_bytes_under_the_name(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"evidence")
    sha = hashlib.sha256(b"evidence").hexdigest()
    target = _folder(tmp_path / "central")
    held = target.object_path(sha)
    held.parent.mkdir(parents=True)
    held.write_bytes(b"tampered")
    with pytest.raises(ConfirmationMismatch, match="other bytes"):
        target.put(sha, src, {})
    assert held.read_bytes() == b"tampered"


def test_a_missing_source_is_the_stations_integrity_failure_not_the_targets(
    tmp_path: Path,
) -> None:
    target = _folder(tmp_path / "central")
    sha = hashlib.sha256(b"evidence").hexdigest()
    with pytest.raises(SourceIntegrityError, match=r"station's copy .* cannot be read"):
        target.put(sha, tmp_path / "gone.mp4", {})


def test_a_source_with_other_bytes_than_its_name_is_never_stored_under_that_name(
    tmp_path: Path,
) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"replaced")
    sha = hashlib.sha256(b"evidence").hexdigest()
    target = _folder(tmp_path / "central")
    with pytest.raises(SourceIntegrityError, match="not the bytes its name says"):
        target.put(sha, src, {})
    assert target.head(sha) is None
    assert list(target.object_path(sha).parent.iterdir()) == []


def test_a_stopped_put_leaves_nothing_and_the_next_put_stores_the_object(
    tmp_path: Path,
) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    target = _folder(tmp_path / "central")
    stop = threading.Event()
    seen: list[tuple[int, UploadState | None]] = []

    def progress(sent: int, state: UploadState | None) -> None:
        seen.append((sent, state))
        stop.set()

    with pytest.raises(UploadStopped):
        target.put(sha, src, {}, progress=progress, stop=stop)
    assert seen == [(1024 * 1024, None)]
    assert list(target.object_path(sha).parent.iterdir()) == []
    confirmation = target.put(sha, src, {})
    assert confirmation.size == src.stat().st_size


def test_unwritable_central_folder_is_retryable(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"x")
    blocker = tmp_path / "central"
    blocker.write_bytes(b"not a folder")
    with pytest.raises(TargetUnavailable, match="retried"):
        _folder(blocker).put(hashlib.sha256(b"x").hexdigest(), src, {})


def test_anchor_is_write_once(tmp_path: Path) -> None:
    target = _folder(tmp_path / "central")
    where = target.put_anchor("checkpoint-00000005.txt", "origin\n5\nroot\n")
    assert Path(where).read_text() == "origin\n5\nroot\n"
    assert target.put_anchor("checkpoint-00000005.txt", "origin\n5\nroot\n") == where
    with pytest.raises(ConfirmationMismatch, match="write-once"):
        target.put_anchor("checkpoint-00000005.txt", "origin\n5\nother\n")
    assert Path(where).read_text() == "origin\n5\nroot\n"
    assert sorted(p.name for p in target.anchor_dir.iterdir()) == ["checkpoint-00000005.txt"]
    with pytest.raises(Exception, match="bad anchor name"):
        target.put_anchor("../escape", "x")
    with pytest.raises(Exception, match="bad anchor name"):
        target.put_anchor("ok.anchor\n", "x")


def test_the_queue_keeps_one_stored_time_form(tmp_path: Path) -> None:
    queue = _queue_with(tmp_path, "c1")
    queue.claim("a", T0)
    conn = sqlite3.connect(tmp_path / "station.db")
    row = conn.execute("SELECT next_attempt_at, lease_until FROM upload_jobs").fetchone()
    conn.close()
    assert row == ("2026-11-22T08:00:00.000000Z", "2026-11-22T08:10:00.000000Z")
    queue.conn.close()
