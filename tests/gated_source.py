"""A recorder file read as the station reads it, except that one read waits: the test
decides what happens while a copy is part-way through (a stop, a recorder pulled out)."""

from __future__ import annotations

import os
import threading

from hashing import FileSource


class Gated:
    """Reads like the real file, but the read at or after ``offset`` first sets
    ``reached`` and waits for ``release``."""

    def __init__(
        self,
        inner: FileSource,
        offset: int,
        reached: threading.Event,
        release: threading.Event,
    ) -> None:
        self.inner, self.offset = inner, offset
        self.reached, self.release = reached, release

    def stat(self) -> os.stat_result:
        return self.inner.stat()

    def read_into(self, buffer: memoryview, offset: int) -> int:
        if offset >= self.offset:
            self.reached.set()
            assert self.release.wait(60), "the test never released the read"
        return self.inner.read_into(buffer, offset)

    def close(self) -> None:
        self.inner.close()
