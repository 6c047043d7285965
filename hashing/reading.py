"""Reading a stream through the shared buffer budget, and hashing a file already on disk."""

from __future__ import annotations

import mmap
import threading
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


def hash_file(path: Path, options: HashOptions, budget: BufferBudget | None = None) -> Digests:
    """The digests of a file already on disk (a committed object, an export, a check)."""
    if budget is None:
        budget = BufferBudget(IN_FLIGHT * options.read_size, options.read_size)
    read_size = min(options.read_size, budget.read_size)
    source = open_source(path)
    try:
        size = source.stat().st_size
        digests = StreamDigests(options.window_size, sm3=options.sm3, threaded=size > 2 * read_size)
        return digest_stream(source, size, digests, budget, read_size, name=path)
    finally:
        source.close()
