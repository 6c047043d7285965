"""Reading a stream through the shared buffer budget, and hashing a file already on disk."""

from __future__ import annotations

import mmap
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from hashing.budget import BufferBudget
from hashing.digests import ChunkRelease, Digests, StreamDigests
from hashing.errors import SourceChangedError, SourceReadError
from hashing.options import HashOptions
from hashing.source import SourceFile, open_source

# Chunks one stream may have in flight (read ahead of the hash lanes and the writer):
# enough to keep 2 cores busy, small enough that 24 recorders fit the default budget.
IN_FLIGHT = 4


def read_full(source: SourceFile, buffer: memoryview, offset: int) -> int:
    """Fill ``buffer`` from ``offset``; fewer bytes only at end of file."""
    got = 0
    while got < len(buffer):
        n = source.read_into(buffer[got:], offset + got)
        if n == 0:
            break
        got += n
    return got


class ChunkPool:
    """One stream's share of a :class:`BufferBudget`: at most ``IN_FLIGHT`` buffers."""

    def __init__(self, budget: BufferBudget) -> None:
        self._budget = budget
        self._slots = threading.Semaphore(min(IN_FLIGHT, budget.capacity))

    def take(self) -> mmap.mmap:
        self._slots.acquire()
        return self._budget.acquire()

    def give_back(self, buffer: mmap.mmap) -> None:
        self._budget.release(buffer)
        self._slots.release()

    def release_after(self, buffer: mmap.mmap, users: int) -> ChunkRelease:
        return ChunkRelease(users, lambda: self.give_back(buffer))


ChunkReader = Callable[[memoryview, int], None]
_Read = tuple[int, mmap.mmap, memoryview] | BaseException | None


class ReadAhead:
    """Reads a stream's chunks in a thread of its own, in order, ahead of the consumer.

    With ``O_DIRECT`` there is no kernel read-ahead: this thread keeps the disk busy
    while the consumer writes and hashes. It reads only into buffers of ``pool`` (so
    no more than the pool's share is in flight); ``read(view, offset)`` fills a whole
    chunk or raises, and its exception reaches the consumer in order, after every
    chunk before it. Iterate once; ``close()`` stops the thread and returns every
    buffer the consumer was not given.
    """

    def __init__(self, pool: ChunkPool, read: ChunkReader, chunks: Iterator[tuple[int, int]]):
        self._pool = pool
        self._read = read
        self._chunks = chunks
        self._ready: queue.SimpleQueue[_Read] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="evidock-read", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for offset, n in self._chunks:
                buffer = self._pool.take()
                if self._stop.is_set():
                    self._pool.give_back(buffer)
                    return
                view = memoryview(buffer)[:n]
                try:
                    self._read(view, offset)
                except BaseException:
                    view.release()
                    self._pool.give_back(buffer)
                    raise
                self._ready.put((offset, buffer, view))
                if self._stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, in order
            self._ready.put(exc)
        finally:
            self._ready.put(None)

    def __iter__(self) -> Iterator[tuple[int, mmap.mmap, memoryview]]:
        while (item := self._ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
        self._ended = True

    def close(self) -> None:
        """Stop reading and give back the buffers read but not consumed.

        Call it once, after the consumer's lanes were drained: the reader may be
        waiting for a buffer that only they, or the chunks given back here, free.
        """
        self._stop.set()
        while not self._ended and (item := self._ready.get()) is not None:
            if isinstance(item, tuple):
                _offset, buffer, view = item
                view.release()
                self._pool.give_back(buffer)
        self._thread.join()


def digest_stream(
    source: SourceFile,
    size: int,
    digests: StreamDigests,
    budget: BufferBudget,
    read_size: int,
    *,
    name: Path,
) -> Digests:
    """Read exactly ``size`` bytes of ``source`` into ``digests`` and finish them."""
    pool = ChunkPool(budget)
    offset = 0
    try:
        while offset < size:
            n = min(read_size, size - offset)
            buffer = pool.take()
            view = memoryview(buffer)[:n]
            try:
                got = read_full(source, view, offset)
            except OSError as exc:
                pool.give_back(buffer)
                raise SourceReadError(
                    f"reading {name} failed at byte {offset}: {exc.strerror}; check the disk"
                ) from exc
            if got != n:
                pool.give_back(buffer)
                raise SourceChangedError(
                    f"{name} ended at byte {offset + got}, {size} were expected; "
                    "it was changed while it was read, read it again"
                )
            release = pool.release_after(buffer, digests.users)
            digests.feed(view, release)
            offset += n
        return digests.finish()
    finally:
        digests.close()


def hash_file(
    path: Path,
    options: HashOptions,
    budget: BufferBudget | None = None,
    *,
    sha256_only: bool = False,
) -> Digests:
    """The digests of a file already on disk (a committed object, an export, a check);
    with ``sha256_only`` just its size and SHA-256 (the other digests are empty)."""
    if budget is None:
        budget = BufferBudget(IN_FLIGHT * options.read_size, options.read_size)
    read_size = min(options.read_size, budget.read_size)
    source = open_source(path)
    try:
        size = source.stat().st_size
        digests = StreamDigests(
            options.window_size,
            sm3=options.sm3 and not sha256_only,
            windows=not sha256_only,
            blake3_=not sha256_only,
            threaded=size > 2 * read_size,
        )
        return digest_stream(source, size, digests, budget, read_size, name=path)
    finally:
        source.close()
