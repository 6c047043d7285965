"""How long the daemon takes to stop a session copying from a slow recorder.

19 files of 10 MiB and one of 200 MiB, read at USB 2.0 speed (35 MB/s) through the
station's source seam; the stop is asked at 1.0 s, while the long clip is being copied.
The baseline, measured in the same run, finishes the file it is on (the CLI's first
Ctrl-C); the daemon abandons it part-way, resumably. Prints both and their ratio.

    .venv/bin/python benchmarks/stop_latency.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.ingest import IngestSession
from agent.station import Station, embedded_config
from hashing import FileSource, open_source

RATE = 35 * 1024 * 1024


class Slow:
    """A recorder file read at ``RATE`` bytes a second."""

    def __init__(self, inner: FileSource) -> None:
        self.inner = inner

    def stat(self) -> os.stat_result:
        return self.inner.stat()

    def read_into(self, buffer: memoryview, offset: int) -> int:
        time.sleep(len(buffer) / RATE)
        return self.inner.read_into(buffer, offset)

    def close(self) -> None:
        self.inner.close()


def _run(root: Path, label: str, *, mid_file: bool) -> float:
    """Seconds from the stop (asked at 1.0 s) to the session's end."""
    station = Station.open(embedded_config(root / label, hashing={"read_size_kib": 256}))
    station.source_opener = lambda path: Slow(open_source(path))
    stop = threading.Event()
    session = IngestSession(station, root / "mount" / "REC20", stop=stop, stop_mid_file=mid_file)
    timer = threading.Timer(1.0, stop.set)
    started = time.monotonic()
    timer.start()
    report = session.run()
    ended = time.monotonic() - started
    timer.join()
    station.close()
    left = sum(1 for o in report.outcomes if o.status == "skipped")
    print(
        f"{label:<28} session ended at {ended:5.2f} s; copied {report.count('new'):2d} of 20 "
        f"files, {left} left on the recorder (resumable)"
    )
    return ended - 1.0


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        media = root / "mount" / "REC20" / "DCIM" / "100MEDIA"
        media.mkdir(parents=True)
        for n in range(20):
            size = 200 if n == 1 else 10  # the stop lands in a long clip (about 6 s)
            (media / f"F{n:02d}.BIN").write_bytes(os.urandom(size * 1024 * 1024))
        print("stop asked at 1.0 s; 19 files of 10 MiB and one of 200 MiB, at 35 MB/s:")
        finish = _run(root, "finish the file (baseline)", mid_file=False)
        part_way = _run(root, "part-way (the daemon)", mid_file=True)
        print(
            f"time from stop to end: {part_way:.2f} s vs {finish:.2f} s baseline "
            f"({part_way / finish:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
