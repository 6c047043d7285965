"""`evidock ingest --json` on a recorder of real ffmpeg-made clips: each clip's integrity
class, times (recorder's clock and corrected by the docking's clock offset) and place are
in its `clip.ingested` leaf and its `clip_media` row; broken clips are kept and flagged;
`evidock verify` passes."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from media_clips import make_all
from station_cli import ingest_json, run_cli

from agent import metadata
from agent.anchoring import publish_checkpoint
from agent.delivery import delivery_target
from agent.ingest import IngestSession
from agent.station import Station, embedded_config
from agent.verification import verify_data_dir

FOLDER = "DCIM/100MEDIA"
NAMES = {
    "plus8": "20261122_083015_0001.MP4",
    "sidecar": "20261122_083020_0002.MP4",
    "gps_stream": "20261122_083025_0003.MP4",
    "truncated_moov_at_end": "20261122_083030_0004.MP4",
    "photo": "20261122_083035_0005.JPG",
    "stub": "20261122_083045_0007.MP4",
}


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = make_all(tmp_path_factory.mktemp("media"))
    root = tmp_path_factory.mktemp("mount") / "RX0042"
    (root / FOLDER).mkdir(parents=True)
    (root / "RECORD").mkdir()
    (root / "DEVICE.INF").write_text("serial=RX0042\nmodel=EVIDOCK-SIM\n", encoding="ascii")
    for key, name in NAMES.items():
        shutil.copyfile(made[key], root / FOLDER / name)
    sidecar = made["sidecar"].with_suffix(".NMEA")
    shutil.copyfile(sidecar, root / FOLDER / NAMES["sidecar"].replace(".MP4", ".NMEA"))
    shutil.copyfile(made["audio"], root / "RECORD" / "20261122_083040_0006.WAV")
    return root


def _media(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Each ingested clip's leaf body by its name on the recorder."""
    found = {}
    for (data,) in conn.execute("SELECT data FROM ledger_leaves WHERE kind = 'clip.ingested'"):
        body = json.loads(data)["body"]
        found[body["source_path"].rpartition("/")[2]] = body
    return found


def test_ingest_records_class_times_and_place_in_leaf_and_catalogue(
    volume: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    result = ingest_json(volume, data, "--officer", "000777")  # flagged clips are stored
    by_name = {c["source_path"].rpartition("/")[2]: c for c in result["clips"]}
    assert all(c["status"] == "new" for c in result["clips"])  # broken ones kept, not dropped
    assert by_name[NAMES["stub"]]["media_readable"] is False
    conn = sqlite3.connect(data / "station.db")
    conn.row_factory = sqlite3.Row
    try:
        leaves = _media(conn)
        (offset,) = conn.execute("SELECT clock_offset_ms FROM docking_sessions").fetchone()
        rows = {
            r["source_path"].rpartition("/")[2]: r
            for r in conn.execute(
                "SELECT c.source_path, m.* FROM clip_media m JOIN clips c USING (clip_id)"
            )
        }
    finally:
        conn.close()
    # newest-file clock: the names are days behind the station. That is the clock at the
    # last write, not at docking, so it corrects nothing (docs/media.md).
    assert offset is not None

    plus8 = leaves[NAMES["plus8"]]["media"]
    assert plus8["integrity"] == "ok" and plus8["readable"] is True
    assert plus8["start"] == "2026-11-22T00:30:15.000000Z"
    assert plus8["end"] == "2026-11-22T00:30:17.000000Z"
    assert plus8["clock_offset_ms"] is None
    assert plus8["start_corrected"] is None and plus8["end_corrected"] is None
    assert leaves[NAMES["plus8"]]["recorder_time_corrected"] is None
    assert plus8["recorder_serial"] == "RX-0042" and plus8["frame_rate"] == "15/1"

    side = leaves[NAMES["sidecar"]]["media"]
    assert side["location"] == "+31.230400+121.473700/"
    assert side["location_source"] == "nmea-sidecar"
    assert side["track"]["file"] == "20261122_083020_0002.NMEA"
    assert leaves[NAMES["gps_stream"]]["media"]["location_source"] == "nmea-stream"

    assert leaves[NAMES["truncated_moov_at_end"]]["media"]["integrity"] == "truncated"
    assert leaves[NAMES["stub"]]["media"]["integrity"] == "truncated"
    photo = leaves[NAMES["photo"]]["media"]
    assert (photo["integrity"], photo["kind"]) == ("ok", "image")
    assert leaves["20261122_083040_0006.WAV"]["media"]["kind"] == "audio"
    assert leaves["20261122_083020_0002.NMEA"]["media"] is None  # a sidecar is not probed

    # The catalogue row says what the leaf says.
    assert set(rows) == set(NAMES.values()) | {"20261122_083040_0006.WAV"}
    for name, row in rows.items():
        media = leaves[name]["media"]
        assert row["integrity"] == media["integrity"]
        assert row["problem"] == media["problem"]
        assert row["start_corrected"] == media["start_corrected"]
        assert row["location"] == media["location"]
    assert rows[NAMES["sidecar"]]["track_points"] == 2
    run_cli("verify", "--data-dir", data, check=0)


def test_a_clip_that_makes_ffprobe_hang_is_kept_flagged_and_the_session_goes_on(
    volume: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small deadline so the test does not wait the real 20 s: the hang is real ffprobe
    # on a live HLS playlist that never ends.
    monkeypatch.setattr(metadata, "PROBE_BASE_SECONDS", 1.0)
    root = tmp_path / "REC"
    (root / FOLDER).mkdir(parents=True)
    shutil.copyfile(volume / FOLDER / NAMES["plus8"], root / FOLDER / "20261122_090000_0002.MP4")
    (root / FOLDER / "20261122_085900_0001.MP4").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.0,\nmissing.ts\n",
        encoding="ascii",
    )
    station = Station.open(embedded_config(tmp_path / "data"))
    report = IngestSession(station, root).run()
    # The hung clip is the first read: the station went on to the next one.
    assert report.ok and [o.status for o in report.outcomes] == ["new", "new"]
    hung, after = report.outcomes
    assert hung.media_readable is False and after.media_readable is True
    assert hung.media_problem == "ffprobe did not finish within 1 s (killed): not fully read"
    conn = sqlite3.connect(tmp_path / "data" / "station.db")
    try:
        classes = dict(
            conn.execute(
                "SELECT c.source_path, m.integrity FROM clip_media m JOIN clips c USING (clip_id)"
            ).fetchall()
        )
    finally:
        conn.close()
    assert classes == {
        f"{FOLDER}/20261122_085900_0001.MP4": "undecodable",
        f"{FOLDER}/20261122_090000_0002.MP4": "ok",
    }
    publish_checkpoint(station, station.conn, delivery_target(station))
    station.close()
    assert verify_data_dir(tmp_path / "data").ok
