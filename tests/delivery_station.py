"""A station with ingested clips waiting for delivery, and targets for the delivery tests.

The targets here implement ``uploader.Target`` in front of real folders: one that lets
another deliverer run in the middle of a put (a race made certain, not hoped for), and
one that uploads in parts with an upload id, as S3 multipart does (the real S3 target
and its RGW tests come with the S3 delivery work), so resuming can be tested here.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from station_cli import run_cli

from agent.station import Station, embedded_config
from uploader import (
    Confirmation,
    FolderTarget,
    PutProgress,
    UploadedPart,
    UploadState,
    UploadStopped,
)


def ingested_station(tmp_path: Path, clips: int, size: int = 280) -> Station:
    """A station whose data dir holds ``clips`` ingested clips, all queued for delivery."""
    folder = tmp_path / "rec" / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    for n in range(clips):
        body = f"clip {n} ".encode()
        (folder / f"V{n:04d}.MP4").write_bytes((body * (size // len(body) + 1))[:size])
    data = tmp_path / "data"
    run_cli("ingest", tmp_path / "rec", "--data-dir", data, check=0)
    return Station.open(embedded_config(data))


def uploaded_per_clip(data: Path) -> Counter[str]:
    """How many ``clip.uploaded`` leaves each clip has."""
    conn = sqlite3.connect(data / "station.db")
    try:
        rows = conn.execute("SELECT clip_id FROM ledger_leaves WHERE kind = 'clip.uploaded'")
        return Counter(row[0] for row in rows)
    finally:
        conn.close()


def clip_ids(data: Path) -> list[str]:
    conn = sqlite3.connect(data / "station.db")
    try:
        return sorted(row[0] for row in conn.execute("SELECT clip_id FROM upload_jobs"))
    finally:
        conn.close()


def job_rows(data: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(data / "station.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM upload_jobs ORDER BY id")]
    finally:
        conn.close()


class MeanwhileTarget:
    """A folder target whose first put runs ``meanwhile`` (another deliverer) first."""

    def __init__(self, inner: FolderTarget, meanwhile: Callable[[], None]) -> None:
        self.inner = inner
        self.name = inner.name
        self._meanwhile: Callable[[], None] | None = meanwhile

    def head(self, sha256: str) -> Confirmation | None:
        return self.inner.head(sha256)

    def put(self, sha256: str, source: Path, meta: Mapping[str, Any], **options: Any) -> Any:
        meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return self.inner.put(sha256, source, meta, **options)

    def put_anchor(self, name: str, text: str) -> str:
        return self.inner.put_anchor(name, text)


class PartsTarget:
    """Central storage that takes an object in parts under an upload id, as S3 multipart
    does: parts go to ``uploads/<id>/<n>``; the object is assembled and confirmed once
    every part is there. ``after_part`` is called after each part it receives."""

    name = "folder"

    def __init__(self, root: Path, part_size: int, after_part: Callable[[int], None]) -> None:
        self.root = root
        self.part_size = part_size
        self.after_part = after_part
        self.received: list[tuple[str, int]] = []  # (sha256, part number) in order
        self.lock = threading.Lock()

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256

    def head(self, sha256: str) -> Confirmation | None:
        path = self.object_path(sha256)
        if not path.exists():
            return None
        data = path.read_bytes()
        return Confirmation(len(data), hashlib.sha256(data).hexdigest(), str(path))

    def put(
        self,
        sha256: str,
        source: Path,
        meta: Mapping[str, Any],
        *,
        state: UploadState | None = None,
        progress: PutProgress | None = None,
        stop: threading.Event | None = None,
    ) -> Confirmation:
        held = self.head(sha256)
        if held is not None:
            return held
        data = source.read_bytes()
        if state is None:
            state = UploadState(upload_id=secrets.token_hex(8))
        parts_dir = self.root / "uploads" / state.upload_id
        parts_dir.mkdir(parents=True, exist_ok=True)
        done = {part.number for part in state.parts}
        count = max(1, -(-len(data) // self.part_size))
        for number in range(1, count + 1):
            if number in done:
                continue
            if stop is not None and stop.is_set():
                raise UploadStopped(f"stopped before part {number} of {sha256}")
            piece = data[(number - 1) * self.part_size : number * self.part_size]
            (parts_dir / str(number)).write_bytes(piece)
            with self.lock:
                self.received.append((sha256, number))
            etag = hashlib.md5(piece).hexdigest()
            state = UploadState(
                state.upload_id, (*state.parts, UploadedPart(number, len(piece), etag))
            )
            if progress is not None:
                progress(state.sent, state)
            self.after_part(number)
        whole = b"".join((parts_dir / str(n)).read_bytes() for n in range(1, count + 1))
        self.object_path(sha256).parent.mkdir(parents=True, exist_ok=True)
        self.object_path(sha256).write_bytes(whole)
        held = self.head(sha256)
        assert held is not None
        return held

    def put_anchor(self, name: str, text: str) -> str:
        path = self.root / "anchors" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(text)
        return str(path)
