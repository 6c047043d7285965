"""Copying a session's files: each read once off the recorder, then verified, committed
and probed in the background (``agent.finisher``) while the next is read, and recorded
in reading order, one commit per file; what an error leaves is set aside."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from agent import metadata
from agent.clip_record import CopiedClip, clip_id_for, record_copy
from agent.database import transaction
from agent.finisher import Finished, Finisher
from agent.media_places import sidecar_track
from agent.outcomes import (
    NOT_PROBED_STOPPING,
    STOPPED,
    STOPPED_MID_FILE,
    FileOutcome,
    SessionReport,
    not_copied,
)
from agent.station import Station
from docking import FootageFile, RecorderVolume, display_path, path_b64
from hashing import CopyEngine, CopyResult, HashingError, StagedCopy
from ledger import Ledger

log = logging.getLogger("evidock")

# A photo is probed too: it is evidence, and its class says it is a sound picture.
# Clock readings that say what the recorder's clock shows at docking, so that their offset
# may correct capture times. "newest-file" shows the clock at the recorder's last write:
# its offset to the station's now includes the time since then (docs/media.md), so a
# correction by it would move every clip by the footage's age.
LIVE_CLOCKS = frozenset({"device-info"})
PROBED_KINDS = frozenset({"video", "audio", "photo"})


class _CopyStopped(Exception):
    """Raised from the engine's progress callback to abandon a copy part-way."""


def resume_key(serial: str, item: FootageFile) -> str:
    ident = b"\0".join(
        [serial.encode(), item.rel_path, str(item.size).encode(), str(item.mtime_ns).encode()]
    )
    return hashlib.sha256(ident).hexdigest()


class FileCopier:
    """The copying half of :class:`agent.ingest.IngestSession` (its attributes below)."""

    station: Station
    stop: threading.Event | None
    stop_mid_file: bool
    on_bytes: Callable[[int], None] | None
    on_file: Callable[[], None] | None
    _volume: RecorderVolume | None
    _unrecorded: list[CopyResult]

    def _copy_all(
        self,
        conn: sqlite3.Connection,
        led: Ledger,
        report: SessionReport,
        serial: str,
        to_read: list[FootageFile],
    ) -> None:
        """Read the recorder's files one after the other; each staged copy is verified,
        committed and probed in the background while the next file is read (the
        recorder's link stays busy), and recorded here, in order."""
        engine = self.station.engine(volume_root=self._volume_root())
        with Finisher(self._finish) as finisher:
            try:
                self._copy_each(conn, led, report, serial, to_read, engine, finisher)
            except BaseException:
                # Copies committed in the background but not recorded have no leaf:
                # _abandon sets them aside, as a start-up does after a crash.
                self._unrecorded = finisher.abort()
                raise

    def _copy_each(
        self,
        conn: sqlite3.Connection,
        led: Ledger,
        report: SessionReport,
        serial: str,
        to_read: list[FootageFile],
        engine: CopyEngine,
        finisher: Finisher,
    ) -> None:
        for item in to_read:
            if self.stop is not None and self.stop.is_set():
                self._settle(conn, led, report, serial, finisher)
                report.outcomes.append(not_copied(item, STOPPED))
                continue
            self._settle(conn, led, report, serial, finisher, only_ready=True)
            outcome = FileOutcome(
                source_path=display_path(item.rel_path),
                source_path_b64=path_b64(item.rel_path),
                status="failed",
                kind=item.kind,
                size=item.size,
            )
            staged = self._stage(engine, serial, item, outcome)
            if staged is None:
                # Outcomes stay in reading order: the files before it come first.
                self._settle(conn, led, report, serial, finisher)
                self._done(conn, report, item, outcome)
                if self.on_file:
                    self.on_file()
                continue
            while finisher.full():
                self._settle_one(conn, led, report, serial, finisher)
            finisher.submit(item, outcome, staged)
        self._settle(conn, led, report, serial, finisher)

    def _set_aside_unrecorded(self, conn: sqlite3.Connection) -> list[dict[str, str]]:
        """Set aside the copies this session committed but could not record (no leaf
        names them: kept out of the audited evidence, never deleted; the recorder, never
        wiped, still holds the files)."""
        problems = []
        for result in self._unrecorded:
            known = conn.execute("SELECT 1 FROM clips WHERE sha256 = ?", (result.sha256,))
            if result.deduplicated or known.fetchone() is not None:
                continue
            target = self.station.store.set_aside(result.sha256)
            if target is not None:
                problems.append(
                    {
                        "path": str(target.relative_to(self.station.store.root)),
                        "reason": "a copy committed without its ledger leaf when the session "
                        "stopped; set aside, the recorder still holds the file",
                    }
                )
        self._unrecorded = []
        return problems

    def _volume_root(self) -> Path:
        assert self._volume is not None
        return self._volume.root

    def _stage(
        self, engine: CopyEngine, serial: str, item: FootageFile, outcome: FileOutcome
    ) -> StagedCopy | None:
        """Read one file off the recorder; None (and why, in ``outcome``) if it was not."""
        try:
            return engine.stage(
                item.path, resume_key=resume_key(serial, item), progress=self._progress()
            )
        except HashingError as exc:
            outcome.reason = str(exc)
        except _CopyStopped:
            outcome.status, outcome.reason = "skipped", STOPPED_MID_FILE
        return None

    def _finish(
        self, item: FootageFile, staged: StagedCopy, committed: Callable[[CopyResult], None]
    ) -> Finished:
        """In the finisher's thread: verify and commit a staged copy (saying so to
        ``committed`` at once), then probe it."""
        try:
            result = staged.commit()
        except HashingError as exc:
            return Finished(None, str(exc), None)
        committed(result)
        media = self._probe(item, result.path) if item.kind in PROBED_KINDS else None
        return Finished(result, None, media)

    def _settle(
        self,
        conn: sqlite3.Connection,
        led: Ledger,
        report: SessionReport,
        serial: str,
        finisher: Finisher,
        *,
        only_ready: bool = False,
    ) -> None:
        """Record the files the finisher holds, in order: all of them (waiting for each),
        or ``only_ready``: those finished already, up to the first that is not."""
        while not only_ready or finisher.ready():
            if not self._settle_one(conn, led, report, serial, finisher):
                return

    def _settle_one(
        self,
        conn: sqlite3.Connection,
        led: Ledger,
        report: SessionReport,
        serial: str,
        finisher: Finisher,
    ) -> bool:
        """Record the oldest file the finisher holds (waiting for it); False if none."""
        taken = finisher.take()
        if taken is None:
            return False
        item, outcome, finished = taken
        with transaction(conn):
            if finished.result is None:
                outcome.reason = finished.problem
            else:
                self._record(
                    conn, led, report, serial, item, outcome, finished.result, finished.media
                )
            # The file's progress is in the same commit as its leaf: one write per file.
            self._done(conn, report, item, outcome)
        if self.on_file:
            self.on_file()
        return True

    def _done(
        self,
        conn: sqlite3.Connection,
        report: SessionReport,
        item: FootageFile,
        outcome: FileOutcome,
    ) -> None:
        report.outcomes.append(outcome)
        conn.execute(
            "UPDATE docking_sessions SET files_done = files_done + 1,"
            " bytes_done = bytes_done + ? WHERE session_id = ?",
            (item.size, report.session_id),
        )

    def _record(
        self,
        conn: sqlite3.Connection,
        led: Ledger,
        report: SessionReport,
        serial: str,
        item: FootageFile,
        outcome: FileOutcome,
        result: CopyResult,
        media: metadata.MediaInfo | None,
    ) -> None:
        """The committed copy becomes a clip (or a sighting of a known one), on record
        (in the caller's transaction)."""
        copied = CopiedClip(
            report.session_id,
            serial,
            item,
            result,
            media,
            clip_id_for(result.sha256),
            report.clock_offset_ms if report.clock_method in LIVE_CLOCKS else None,
            self._important(item),
        )
        record_copy(conn, led, copied, outcome, self.station.config.delivery.target)

    def _important(self, item: FootageFile) -> bool:
        volume = self._volume
        return volume is not None and bool(volume.profile.is_important(item.rel_path))

    def _progress(self) -> Callable[[int], None] | None:
        """The engine's progress callback; with ``stop_mid_file`` it also abandons the
        copy when the stop is set (the engine keeps a copy abandoned this way in staging,
        with its journal, so the next docking resumes it)."""
        on_bytes, stop = self.on_bytes, self.stop
        if not self.stop_mid_file or stop is None:
            return on_bytes

        def progress(n: int) -> None:
            if on_bytes is not None:
                on_bytes(n)
            if stop.is_set():
                raise _CopyStopped

        return progress

    def _probe(self, item: FootageFile, path: Path) -> metadata.MediaInfo:
        """Probe the committed copy at ``path``; a GPS sidecar of the recording (same
        stem, beside ``item`` on the recorder) gives its place when the clip has none."""
        sidecar = sidecar_track(item.path) if item.kind == "video" else None
        try:
            return metadata.probe_media(path, stop=self.stop, sidecar=sidecar)
        except metadata.ProbeStopped:
            # The copy is committed and verified: it gets its leaf now, with this reason
            # and no class (not judged), rather than be left in the store without one.
            return metadata.MediaInfo(None, problem=NOT_PROBED_STOPPING)
