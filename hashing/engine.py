"""The copy engine: one read of a recorder's file, every digest, a fsynced and checked copy.

For each chunk: read once (``O_DIRECT`` where the recorder's file system allows it,
by a read-ahead thread) into a buffer of the shared budget, hand the same buffer to
the hash lanes (SHA-256, BLAKE3, window SHA-256, SM3) and write it to the staging
file. After the last chunk: check that the source did not change, fsync, drop the
copy from the page cache, re-read it from disk (``O_DIRECT``) and compare its BLAKE3
with the read's, then rename it into the store. Only then is it evidence.

A copy with a ``resume_key`` keeps its staging file and journal when the recorder
fails or the process dies; the next copy with that key re-hashes the staged windows
from the station's disk (checking each against the journal) and reads the recorder
only from the last journaled window on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from config.window_hash import WINDOW_HASH
from hashing.budget import BufferBudget
from hashing.digests import Digests, StreamDigests
from hashing.diskio import StagingWriter, drop_cache, store_error
from hashing.errors import (
    CopyVerificationError,
    HashingError,
    NotRegularFileError,
    SourceChangedError,
    SourceReadError,
)
from hashing.journal import ResumeJournal, check_resume_key
from hashing.options import HashOptions
from hashing.pool import HashPool
from hashing.reading import ChunkPool, ReadAhead, digest_stream, read_full
from hashing.source import SourceFile, SourceOpener, open_source, open_synced
from hashing.store import EvidenceStore

Progress = Callable[[int], None]


@dataclass(frozen=True)
class CopyResult:
    """A committed copy: its digests, where it lives, and what the copy cost."""

    size: int
    sha256: str
    blake3: str
    sm3: str | None
    window_size: int
    windows: tuple[str, ...]
    path: Path
    deduplicated: bool
    resumed_bytes: int
    source_bytes_read: int
    verified: bool
    window_hash: str = WINDOW_HASH


class _StagedPrefixMismatch(Exception):
    """The staged prefix does not match its journal (power cut, disk fault)."""


@dataclass
class _Staging:
    path: Path
    fd: int
    journal: ResumeJournal | None
    prefix: int

    def restart(self) -> None:
        os.ftruncate(self.fd, 0)
        if self.journal is not None:
            self.journal.reset()
        self.prefix = 0

    def close(self, *, keep: bool) -> None:
        """Keep the staged prefix for a resume (only with a journal) or remove it."""
        os.close(self.fd)
        if keep and self.journal is not None:
            self.journal.close()
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self.journal is not None:
            self.journal.discard()


def _open_staged(path: Path) -> int:
    """A keyed staging file, opened (or made) for writing.

    A copy killed during its verify re-read leaves its staged file read-only: it is made
    0444 with the fsync before the re-read, so that mode is on disk with the data. Root
    writes it anyway; the station's own user first gives it back its write bit (an owner
    needs no write permission for that), so the clip resumes instead of failing with
    EACCES until the staging file is swept, a week later.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        return os.open(path, flags, 0o600)
    except PermissionError:
        pass
    # O_NONBLOCK: whatever sits under that name, opening it must not hang.
    readonly = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if stat.S_ISREG(os.fstat(readonly).st_mode):
            os.fchmod(readonly, 0o600)
    finally:
        os.close(readonly)
    return os.open(path, flags, 0o600)


class StagedCopy:
    """A file read once into a synced staging file, not yet verified nor committed.

    Exactly one of :meth:`commit` and :meth:`abandon` is called, from any one thread.
    """

    def __init__(
        self,
        engine: CopyEngine,
        name: Path,
        staging: _Staging,
        digests: Digests,
        resumed_bytes: int,
        source_bytes_read: int,
    ) -> None:
        self._engine = engine
        self.name = name
        self.staging = staging
        self.digests = digests
        self.resumed_bytes = resumed_bytes
        self.source_bytes_read = source_bytes_read
        self._closed = False

    @property
    def size(self) -> int:
        return self.digests.size

    def commit(self) -> CopyResult:
        """Re-read the copy from disk (``verify = "reread"``), compare, and rename it into
        the store; a :class:`HashingError` if it is not committed."""
        self._close_once()
        keep = False
        try:
            return self._engine._commit(self)
        except HashingError:
            raise
        except BaseException:
            keep = True  # a bug or an interrupt: the resume re-checks the journal
            raise
        finally:
            self.staging.close(keep=keep)

    def abandon(self) -> None:
        """Keep the staged file and its journal for a resume; commit nothing."""
        self._close_once()
        self.staging.close(keep=True)

    def _close_once(self) -> None:
        if self._closed:
            raise RuntimeError(f"the staged copy of {self.name} was already committed or abandoned")
        self._closed = True


class CopyEngine:
    """Copies files of one recorder into the evidence store.

    One file is read at a time (:meth:`copy`, or :meth:`stage`); a staged copy may be
    committed in another thread while the next file is staged.
    """

    def __init__(
        self,
        store: EvidenceStore,
        options: HashOptions,
        *,
        budget: BufferBudget | None = None,
        open_source: SourceOpener = open_source,
        hash_pool: HashPool | None = None,
    ) -> None:
        if budget is None:
            budget = BufferBudget(options.buffer_budget_bytes, options.read_size)
        if options.read_size > budget.read_size:
            raise ValueError(
                f"read_size {options.read_size} is larger than the budget's buffers "
                f"({budget.read_size}); make the BufferBudget with the same read_size"
            )
        self.store = store.create()
        self.options = options
        self.budget = budget
        self._open_source = open_source
        self.hash_pool = hash_pool or HashPool.shared()

    def copy(
        self, source: Path, *, resume_key: str | None = None, progress: Progress | None = None
    ) -> CopyResult:
        """Copy ``source`` into the store; raises a :class:`HashingError` if not committed."""
        return self.stage(source, resume_key=resume_key, progress=progress).commit()

    def stage(
        self, source: Path, *, resume_key: str | None = None, progress: Progress | None = None
    ) -> StagedCopy:
        """Read ``source`` once into a synced staging file with every digest; the recorder
        is not read again after this returns. :meth:`StagedCopy.commit` verifies and
        commits it (in another thread if the caller likes: the next file of the recorder
        can be read meanwhile); :meth:`StagedCopy.abandon` keeps it for a resume."""
        if resume_key is not None:
            check_resume_key(resume_key)
        src = self._open_source(source)
        try:
            before = src.stat()
            if not stat.S_ISREG(before.st_mode):
                raise NotRegularFileError(
                    f"{source} is not a regular file; evidock copies only regular files"
                )
            staging = self._open_staging(resume_key, before)
            try:
                return self._stage(source, src, before, staging, progress)
            except SourceReadError:
                staging.close(keep=True)
                raise
            except HashingError:
                staging.close(keep=False)
                raise
            except BaseException:
                # A bug or an interrupt: the journal is re-checked on resume, so keep it.
                staging.close(keep=True)
                raise
        finally:
            src.close()

    def _open_staging(self, key: str | None, before: os.stat_result) -> _Staging:
        staging_dir = self.store.staging_dir
        try:
            if key is None:
                path = staging_dir / f"anon-{uuid.uuid4().hex}.part"
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                try:
                    # Held until the copy ends: EvidenceStore.sweep_staging leaves it alone.
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    path.unlink()
                    raise
                return _Staging(path, fd, None, 0)
            journal = ResumeJournal.open(
                staging_dir,
                key,
                size=before.st_size,
                mtime_ns=before.st_mtime_ns,
                window_size=self.options.window_size,
                window_hash=WINDOW_HASH,
            )
        except OSError as exc:
            raise store_error(exc, "creating a staging file") from exc
        path = staging_dir / f"{key}.part"
        try:
            fd = _open_staged(path)
            staged = os.fstat(fd)
        except OSError as exc:
            journal.close()
            raise store_error(exc, "opening a staging file") from exc
        if staged.st_nlink != 1 or not stat.S_ISREG(staged.st_mode):
            # Another name shares this inode (an interrupted commit): never write through it.
            os.close(fd)
            path.unlink()
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            staged = os.fstat(fd)
        windows = min(len(journal.windows), staged.st_size // self.options.window_size)
        if windows < len(journal.windows):
            journal.truncate(windows)
        staging = _Staging(path, fd, journal, windows * self.options.window_size)
        os.ftruncate(fd, staging.prefix)
        return staging

    def _stage(
        self,
        name: Path,
        src: SourceFile,
        before: os.stat_result,
        staging: _Staging,
        progress: Progress | None,
    ) -> StagedCopy:
        resumed = staging.prefix
        try:
            digests, source_bytes = self._stream(name, src, before, staging, progress)
        except _StagedPrefixMismatch:
            staging.restart()
            resumed = 0
            digests, source_bytes = self._stream(name, src, before, staging, progress)
        try:
            os.fchmod(staging.fd, 0o444)
            os.fsync(staging.fd)
            drop_cache(staging.fd)
        except OSError as exc:
            raise store_error(exc, f"syncing the copy of {name}") from exc
        return StagedCopy(self, name, staging, digests, resumed, source_bytes)

    def _commit(self, staged: StagedCopy) -> CopyResult:
        name, staging, digests = staged.name, staged.staging, staged.digests
        verified = self.options.verify == "reread"
        if verified:
            self._verify(name, staging, digests)
        try:
            path, deduplicated = self.store.commit(staging.path, digests.sha256)
        except OSError as exc:
            raise store_error(exc, f"committing the copy of {name}") from exc
        return CopyResult(
            size=digests.size,
            sha256=digests.sha256,
            blake3=digests.blake3,
            sm3=digests.sm3,
            window_size=digests.window_size,
            windows=digests.windows,
            window_hash=digests.window_hash,
            path=path,
            deduplicated=deduplicated,
            resumed_bytes=staged.resumed_bytes,
            source_bytes_read=staged.source_bytes_read,
            verified=verified,
        )

    def _stream(
        self,
        name: Path,
        src: SourceFile,
        before: os.stat_result,
        staging: _Staging,
        progress: Progress | None,
    ) -> tuple[Digests, int]:
        """Read, hash and stage every byte; returns the digests and bytes read from ``src``."""
        size, prefix, read_size = before.st_size, staging.prefix, self.options.read_size
        digests = StreamDigests(
            self.options.window_size,
            sm3=self.options.sm3,
            threaded=size > 2 * read_size,
            pool=self.hash_pool,
        )
        pool = ChunkPool(self.budget)
        writer = StagingWriter(staging.fd, prefix)
        staged_file = open_synced(staging.path) if prefix else None

        def read(view: memoryview, offset: int) -> None:
            if offset >= prefix:
                self._read_source(name, src, before, view, offset)
            elif staged_file is None or read_full(staged_file, view, offset) != len(view):
                raise _StagedPrefixMismatch

        def chunks() -> Iterator[tuple[int, int]]:
            offset = 0
            while offset < size:
                # A chunk never straddles the staged prefix's end.
                n = min(read_size, size - offset, prefix - offset if offset < prefix else size)
                yield offset, n
                offset += n

        reads = ReadAhead(pool, read, chunks())
        source_bytes = journaled = 0
        try:
            for offset, buffer, view in reads:
                from_staging = offset < prefix
                release = pool.release_after(buffer, digests.users + 1)
                digests.feed(view, release)
                try:
                    if not from_staging:
                        writer.write(view, offset)
                except OSError as exc:
                    raise store_error(exc, f"copying {name}") from exc
                finally:
                    release.done()
                n = len(view)
                if not from_staging:
                    source_bytes += n
                journaled = self._journal(staging, digests.completed_windows, journaled)
                if progress is not None:
                    progress(n)
            self._check_unchanged(name, src, before)
            result = digests.finish()
        except SourceReadError:
            # Journal the windows the lanes finished, so a resume re-reads as little as can be.
            digests.close()
            self._journal(staging, digests.completed_windows, journaled)
            raise
        finally:
            digests.close()
            reads.close()
            writer.close()
            if staged_file is not None:
                staged_file.close()
        self._journal(staging, list(result.windows), journaled)
        return result, source_bytes

    def _read_source(
        self, name: Path, src: SourceFile, before: os.stat_result, view: memoryview, offset: int
    ) -> None:
        try:
            got = read_full(src, view, offset)
        except OSError as exc:
            raise SourceReadError(
                f"reading {name} failed at byte {offset} ({exc.strerror}); the recorder may "
                "be unplugged or failing: check the cable and dock it again (the copy resumes "
                "where it stopped)"
            ) from exc
        if got != len(view):
            self._check_unchanged(name, src, before)
            raise SourceReadError(
                f"{name} ended early: {offset + got} of {before.st_size} bytes could be read; "
                "the recorder may be unplugged or failing: dock it again"
            )

    def _check_unchanged(self, name: Path, src: SourceFile, before: os.stat_result) -> None:
        try:
            grew = read_full(src, memoryview(bytearray(1)), before.st_size) > 0
            now = src.stat()
        except OSError as exc:
            raise SourceReadError(
                f"reading {name} failed at its end ({exc.strerror}); dock the recorder again"
            ) from exc
        if grew or now.st_size != before.st_size or now.st_mtime_ns != before.st_mtime_ns:
            raise SourceChangedError(
                f"{name} changed while it was copied (size {before.st_size} -> {now.st_size}, "
                "or its modification time moved); it is still being written: stop recording "
                "or wait until the recorder has closed the file, then dock it again"
            )

    def _journal(self, staging: _Staging, windows: list[str], journaled: int) -> int:
        """Check re-hashed staged windows against the journal; journal the new ones."""
        if staging.journal is None:
            return len(windows)
        staged_windows = staging.prefix // self.options.window_size
        try:
            for index in range(journaled, len(windows)):
                if index < staged_windows:
                    if windows[index] != staging.journal.windows[index]:
                        raise _StagedPrefixMismatch
                else:
                    staging.journal.append(windows[index])
        except OSError as exc:
            raise store_error(exc, "writing the resume journal") from exc
        return len(windows)

    def _verify(self, name: Path, staging: _Staging, read: Digests) -> None:
        """Re-read the synced copy from disk and compare its BLAKE3 with the read's.

        The re-read goes through ``O_DIRECT`` (the pages were dropped as well), so the
        bytes come back from the disk, not from the page cache that was written from.
        """
        digests = StreamDigests(
            self.options.window_size,
            sm3=False,
            windows=False,
            sha256=False,
            threaded=read.size > 2 * self.options.read_size,
            pool=self.hash_pool,
        )
        try:
            reread = open_synced(staging.path)
        except OSError as exc:
            raise CopyVerificationError(
                f"the copy of {name} could not be opened again on the station's disk ({exc}); "
                "nothing was committed: check the data disk, then dock the recorder again"
            ) from exc
        try:
            disk = digest_stream(
                reread,
                read.size,
                digests,
                self.budget,
                self.options.read_size,
                name=staging.path,
            )
            on_disk = reread.stat().st_size
        except (SourceReadError, SourceChangedError, OSError) as exc:
            raise CopyVerificationError(
                f"the copy of {name} could not be re-read from the station's disk ({exc}); "
                "nothing was committed: check the data disk, then dock the recorder again"
            ) from exc
        finally:
            reread.close()
        if (disk.blake3, on_disk) != (read.blake3, read.size):
            raise CopyVerificationError(
                f"the copy of {name} on the station's disk differs from the bytes read from "
                f"the recorder (read blake3 {read.blake3}, disk blake3 {disk.blake3}, "
                f"{on_disk} of {read.size} bytes); nothing was committed: check the "
                "station's disk and memory, keep the recorder as is and report it"
            )
