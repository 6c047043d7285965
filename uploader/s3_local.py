"""The station's copy of a clip as the S3 target reads it: at any offset, or part by part
on a thread of its own, ahead of the parts being sent.

A multipart put spends most of its station time on the copy itself: reading each part,
its MD5 (the part's Content-MD5, and the ETag S3 gives it) and the whole file's SHA-256,
fed in order. :class:`PartReader` does that work for part N+1 while part N is on the
wire (hashlib and ``os.pread`` let go of the GIL on large buffers). It holds at most
``held`` parts at once: a part counts from the moment it is read until its sender lets
go of it (:meth:`PartReader.done_with`), so memory stays bounded however slow the
network is.
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from uploader.errors import SourceIntegrityError


class LocalCopy:
    """The station's copy of a clip, open for reading at any offset."""

    def __init__(self, source: Path) -> None:
        self.source = source
        try:
            self.fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise self.unreadable(exc.strerror or str(exc)) from None
        try:
            info = os.fstat(self.fd)
        except OSError as exc:
            os.close(self.fd)
            raise self.unreadable(exc.strerror or str(exc)) from None
        if not stat.S_ISREG(info.st_mode):
            os.close(self.fd)
            raise self.unreadable("not a regular file")
        self.size = info.st_size

    def unreadable(self, why: str) -> SourceIntegrityError:
        return SourceIntegrityError(
            f"the station's copy {self.source} cannot be read ({why}); nothing was stored centrally"
        )

    def not_its_name(self, sha256: str, found: str) -> SourceIntegrityError:
        return SourceIntegrityError(
            f"the station's copy {self.source} is not the bytes its name says (it reads as "
            f"sha256 {found}); nothing was stored centrally"
        )

    def read(self, offset: int, length: int) -> bytes:
        chunks: list[bytes] = []
        while length > 0:
            try:
                chunk = os.pread(self.fd, length, offset)
            except OSError as exc:
                raise self.unreadable(exc.strerror or str(exc)) from None
            if not chunk:
                raise self.unreadable(f"it ends before byte {offset}")
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> LocalCopy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def content_md5(data: bytes) -> tuple[str, str]:
    """(Content-MD5 header value, the ETag S3 gives such a body or part)."""
    digest = hashlib.md5(data, usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode(), f'"{digest.hexdigest()}"'


@dataclass(frozen=True)
class Part:
    """One part of the copy, read and hashed: its bytes, Content-MD5 and ETag."""

    number: int
    offset: int
    data: bytes
    md5: str
    etag: str

    @property
    def size(self) -> int:
        return len(self.data)


class PartReader:
    """Reads parts 1..count of ``copy`` in order on a thread of its own, each with its
    MD5, feeding the whole file's SHA-256 in order; :meth:`next` hands them out.

    At most ``held`` parts are in memory at once (read, waiting, or being sent): the
    reader waits for :meth:`done_with` before reading one more. Use it as a context
    manager: leaving it stops the thread, whatever happened.
    """

    def __init__(self, copy: LocalCopy, part_size: int, count: int, held: int) -> None:
        self._copy = copy
        self._part_size = part_size
        self._count = count
        self._room = threading.Semaphore(held)
        self._ready: queue.SimpleQueue[Part | BaseException] = queue.SimpleQueue()
        self._quit = threading.Event()
        self._whole = hashlib.sha256()
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="evidock-s3-read", daemon=True)

    def __enter__(self) -> PartReader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._quit.set()
        self._room.release()  # wakes a reader waiting for room; it then sees the quit
        self._thread.join()

    def _run(self) -> None:
        try:
            for number in range(1, self._count + 1):
                self._room.acquire()
                if self._quit.is_set():
                    return
                offset = (number - 1) * self._part_size
                data = self._copy.read(offset, min(self._part_size, self._copy.size - offset))
                self._whole.update(data)
                md5, etag = content_md5(data)
                self._ready.put(Part(number, offset, data, md5, etag))
        except BaseException as exc:  # handed to the put's thread, raised there
            self._ready.put(exc)

    def next(self) -> Part:
        """The next part in order (waits for it); the reader's error if it failed."""
        item = self._ready.get()
        if isinstance(item, BaseException):
            raise item
        if item.number == self._count:
            self._finished = True
        return item

    def done_with(self, part: Part) -> None:
        """``part`` is no longer held (sent, or re-used without sending)."""
        self._room.release()

    def sha256(self) -> str:
        """The whole file's SHA-256, once every part was handed out."""
        if not self._finished:
            raise RuntimeError("the whole file's SHA-256 is known only after its last part")
        return self._whole.hexdigest()
