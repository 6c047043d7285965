"""The station's ingest, scan then copy, with a folder swapped for a link in between.

This is the whole path of the check-then-open race: ``on_plan`` runs after the scan
and before the first copy, where a hostile recorder (or a person at the station)
could swap ``DCIM/100MEDIA`` for a link to station files of the same names and sizes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from agent.ingest import IngestSession
from agent.station import Station, embedded_config

MEDIA = "DCIM/100MEDIA"


def test_ingest_refuses_a_folder_swapped_for_a_link_after_the_scan(
    recorder: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "station-files"
    media = recorder / MEDIA
    forged: set[str] = set()

    def swap(files: int, nbytes: int) -> None:
        outside.mkdir()
        for clip in sorted(media.iterdir()):
            data = os.urandom(clip.stat().st_size)
            (outside / clip.name).write_bytes(data)
            forged.add(hashlib.sha256(data).hexdigest())
        shutil.move(media, tmp_path / "moved-away")
        media.symlink_to(outside, target_is_directory=True)

    station = Station.open(embedded_config(tmp_path / "data"))
    try:
        report = IngestSession(station, recorder, on_plan=swap).run()
        stored = {
            hashlib.sha256(path.read_bytes()).hexdigest()
            for _, path in station.store.iter_objects()
        }
    finally:
        station.close()
    assert forged and not forged & stored, "a station file was committed as evidence"
    from_media = [o for o in report.outcomes if o.source_path.startswith(MEDIA)]
    assert from_media and all(o.status == "failed" for o in from_media)
    assert all("symbolic link" in (o.reason or "") for o in from_media)
