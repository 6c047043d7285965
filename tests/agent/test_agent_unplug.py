"""A recorder unplugged in the middle of a clip: the session ends incomplete, nothing
half-copied is evidence, the recorder keeps the file, and the next docking resumes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from station_cli import ingest_json, run_cli

from agent.anchoring import publish_checkpoint
from agent.delivery import delivery_target
from agent.ingest import IngestSession
from agent.station import Station, embedded_config
from agent.verification import verify_data_dir
from hashing import FileSource, open_source


class UnpluggedAt:
    """Reads like the real file until ``offset``, then fails as a vanished USB device."""

    def __init__(self, inner: FileSource, offset: int) -> None:
        self.inner = inner
        self.offset = offset

    def stat(self) -> os.stat_result:
        return self.inner.stat()

    def read_into(self, buffer: memoryview, offset: int) -> int:
        if offset + len(buffer) > self.offset:
            raise OSError(errno.EIO, "Input/output error")
        return self.inner.read_into(buffer, offset)

    def close(self) -> None:
        self.inner.close()


def test_unplugged_mid_clip_then_redocked_resumes(recorder: Path, tmp_path: Path) -> None:
    big = recorder / "DCIM" / "100MEDIA" / "BIG.MP4"
    big.write_bytes(os.urandom(24 * 1024 * 1024))
    data = tmp_path / "data"
    station = Station.open(embedded_config(data, hashing={"window_mib": 1, "read_size_kib": 256}))

    def unplugging(path: Path) -> FileSource | UnpluggedAt:
        source = open_source(path)
        return UnpluggedAt(source, 10 * 1024 * 1024) if path.name == "BIG.MP4" else source

    station.source_opener = unplugging
    first = IngestSession(station, recorder).run()
    assert not first.ok
    failed = [o for o in first.outcomes if o.status == "failed"]
    assert [o.source_path for o in failed] == ["DCIM/100MEDIA/BIG.MP4"]
    assert "failed at byte" in (failed[0].reason or "")
    row = station.conn.execute(
        "SELECT state FROM docking_sessions WHERE session_id = ?", (first.session_id,)
    ).fetchone()
    assert row["state"] == "incomplete"
    assert big.stat().st_size == 24 * 1024 * 1024, "the recorder keeps its file"
    publish_checkpoint(station, station.conn, delivery_target(station))
    assert verify_data_dir(data).ok, "nothing half-copied was taken for evidence"

    station.source_opener = open_source
    second = IngestSession(station, recorder).run()
    assert second.ok
    redone = next(o for o in second.outcomes if o.source_path == "DCIM/100MEDIA/BIG.MP4")
    assert redone.status == "new"
    assert 8 * 1024 * 1024 <= redone.resumed_bytes <= 10 * 1024 * 1024
    assert {o.status for o in second.outcomes if o is not redone} == {"seen"}
    publish_checkpoint(station, station.conn, delivery_target(station))
    station.close()
    run_cli("verify", "--data-dir", data, check=0)


def test_an_empty_recorder_is_a_session_with_nothing_to_do(tmp_path: Path) -> None:
    empty = tmp_path / "EMPTYREC"
    empty.mkdir()
    result = ingest_json(empty, tmp_path / "data")
    assert result["clips"] == [] and result["problems"] == [] and result["ok"] is True
    proc = run_cli("ingest", empty, "--data-dir", tmp_path / "data", check=0)
    assert "no files" in proc.stdout
