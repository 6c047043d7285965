"""A session reads the recorder's next file while the last one is verified, committed and
probed: the recorder's link is never left idle for the station's own disk work. The
leaves still come in the order the files were read, and a failure of the background
work is the file's problem, never the session's silence."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from agent import copying, ingest, metadata
from agent.anchoring import publish_checkpoint
from agent.delivery import delivery_target
from agent.ingest import IngestSession
from agent.station import Station, embedded_config
from agent.verification import verify_data_dir
from hashing import CopyVerificationError, FileSource, StagedCopy, open_source


def _recorder(root: Path, sizes: list[int]) -> list[Path]:
    folder = root / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    paths = []
    for n, size in enumerate(sizes, start=1):
        path = folder / f"20261122_0830{n:02d}_{n:04d}.MP4"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def _station(tmp_path: Path) -> Station:
    return Station.open(
        embedded_config(tmp_path / "data", hashing={"window_mib": 1, "read_size_kib": 256})
    )


def _probe_waits_for_the_read_of(
    station: Station, name: str, monkeypatch: pytest.MonkeyPatch
) -> list[bool]:
    """The first clip's probe waits until the file ``name`` is being read off the
    recorder; the list it returns says whether that happened (done one after the other,
    it never does: the wait times out)."""
    opened = threading.Event()

    def opener(path: Path) -> FileSource:
        if path.name == name:
            opened.set()
        return open_source(path)

    station.source_opener = opener
    overlapped: list[bool] = []
    real_probe = metadata.probe_media

    def probe(path: Path, **kwargs: object) -> metadata.MediaInfo:
        if not overlapped:
            overlapped.append(opened.wait(20))
        return real_probe(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(metadata, "probe_media", probe)
    return overlapped


def test_the_next_file_is_read_while_the_last_one_is_probed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _recorder(tmp_path / "REC", [3 << 20, 3 << 20, 3 << 20])
    station = _station(tmp_path)
    overlapped = _probe_waits_for_the_read_of(station, files[1].name, monkeypatch)
    report = IngestSession(station, tmp_path / "REC").run()
    station.close()
    assert overlapped == [True]
    assert report.ok
    assert [o.source_path for o in report.outcomes] == [f"DCIM/100MEDIA/{f.name}" for f in files]
    assert [o.status for o in report.outcomes] == ["new", "new", "new"]
    leaves = [o.leaf_index for o in report.outcomes]
    assert leaves == sorted(leaves), "leaves are written in the order the files were read"


def test_a_copy_that_fails_its_verification_in_the_background_is_that_files_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _recorder(tmp_path / "REC", [2 << 20, 2 << 20, 2 << 20])
    station = _station(tmp_path)
    real_commit = StagedCopy.commit

    def commit(self: StagedCopy) -> object:
        if self.name.name == files[1].name:
            self.abandon()
            raise CopyVerificationError("the copy on the station's disk differs (test)")
        return real_commit(self)

    monkeypatch.setattr(StagedCopy, "commit", commit)
    report = IngestSession(station, tmp_path / "REC").run()
    row = station.conn.execute(
        "SELECT state FROM docking_sessions WHERE session_id = ?", (report.session_id,)
    ).fetchone()
    station.close()
    assert [o.status for o in report.outcomes] == ["new", "failed", "new"]
    assert "differs (test)" in (report.outcomes[1].reason or "")
    assert row["state"] == "incomplete"
    assert files[1].exists(), "the recorder keeps the file whose copy failed"


def test_an_unexpected_error_in_the_background_ends_the_session_on_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _recorder(tmp_path / "REC", [2 << 20, 2 << 20])
    station = _station(tmp_path)

    def probe(path: Path, **kwargs: object) -> metadata.MediaInfo:
        raise RuntimeError("probe crashed (test)")

    monkeypatch.setattr(metadata, "probe_media", probe)
    session = IngestSession(station, tmp_path / "REC")
    with pytest.raises(RuntimeError, match="probe crashed"):
        session.run()
    row = station.conn.execute(
        "SELECT state, problems FROM docking_sessions WHERE session_id = ?",
        (session.session_id,),
    ).fetchone()
    assert row["state"] == "incomplete"
    assert "probe crashed" in row["problems"]
    leftover = [t for t in threading.enumerate() if t.name == "evidock-finish"]
    assert leftover == []
    # The copy committed before the probe crashed has no leaf: it is set aside (kept,
    # named in the closing record), so the station still passes its own verification.
    aside = list(station.store.orphans_dir.iterdir())
    assert aside and row["problems"].count("set aside") == len(aside)
    publish_checkpoint(station, station.conn, delivery_target(station))
    station.close()
    assert verify_data_dir(tmp_path / "data").ok


def test_file_records_wait_for_no_fsync_and_the_closing_commit_is_a_full_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # synchronous: 1 = NORMAL (the WAL is synced later), 2 = FULL (synced at commit).
    _recorder(tmp_path / "REC", [1 << 20, 1 << 20])
    station = _station(tmp_path)
    seen: dict[str, list[int]] = {"record": [], "close": []}
    real_record, real_close = copying.record_copy, ingest.close_session

    def record(conn: sqlite3.Connection, *args: object) -> None:
        seen["record"].append(conn.execute("PRAGMA synchronous").fetchone()[0])
        real_record(conn, *args)  # type: ignore[arg-type]

    def close(conn: sqlite3.Connection, *args: object) -> None:
        seen["close"].append(conn.execute("PRAGMA synchronous").fetchone()[0])
        real_close(conn, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(copying, "record_copy", record)
    monkeypatch.setattr(ingest, "close_session", close)
    conn = station.connect()
    report = IngestSession(station, tmp_path / "REC").run(conn)
    after = conn.execute("PRAGMA synchronous").fetchone()[0]
    conn.close()
    station.close()
    assert report.ok
    assert seen == {"record": [1, 1], "close": [2]}
    assert after == 2, "the connection is handed back as it came: every commit synced"


def test_a_clips_sidecar_does_not_make_the_next_clip_wait_for_the_clips_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "REC" / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    first = folder / "20261122_083001_0001.MP4"
    first.write_bytes(os.urandom(3 << 20))
    (folder / "20261122_083001_0001.NMEA").write_bytes(b"$GPRMC,083001.00,A*00\r\n")
    second = folder / "20261122_083102_0002.MP4"
    second.write_bytes(os.urandom(3 << 20))
    station = _station(tmp_path)
    # With room for one file only, the sidecar read in no time would make the session
    # wait for the first clip's probe before it reads the next clip.
    overlapped = _probe_waits_for_the_read_of(station, second.name, monkeypatch)
    report = IngestSession(station, tmp_path / "REC").run()
    station.close()
    assert overlapped == [True]
    assert report.ok
    names = [o.source_path.rsplit("/", 1)[-1] for o in report.outcomes]
    assert names == [first.name, "20261122_083001_0001.NMEA", second.name]
