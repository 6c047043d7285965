"""A clip's bytes as the body of a PUT that reports what is sent as it is sent.

The bandwidth limit charges bytes as a put reports them (``PutProgress``); a part of
16 MiB reported only once sent would go out at full speed and be paid for afterwards.
:class:`Body` is the part's bytes as a file-like object: the HTTP client reads it in
small blocks as it writes to the socket, and every ``REPORT_BYTES`` read for sending are
reported (and paced) before they go. Reads for anything else do not count: the request
is built and signed before ``signal_transferring`` (botocore's ``request-created``
event, as ``s3transfer`` does it), and a retry that reads the body again from its start
reports nothing twice (only the furthest point read counts).

:class:`Sending` adds up what the bodies of one put have sent and calls ``PutProgress`` one
call at a time, whichever thread sends (parts go two at a time): the bytes this put has
sent, and the upload's state as parts complete. Re-used parts of a resumed upload are
never reported as sent, so the limit does not charge them.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from uploader.target import PutProgress, UploadedPart, UploadState

MIB = 1024 * 1024
# How often a body reports while it is being sent: small enough to pace a part
# smoothly, large enough that reporting costs nothing next to sending.
REPORT_BYTES = 1 * MIB
# The S3 operations whose body is a clip's bytes.
_CARRYING = ("PutObject", "UploadPart")


class Sending:
    """What one put has sent, reported through ``progress`` one call at a time."""

    def __init__(self, progress: PutProgress | None, upload_id: str | None = None) -> None:
        self._progress = progress
        self._lock = threading.Lock()
        self._upload_id = upload_id
        self._parts: dict[int, UploadedPart] = {}
        self.bytes = 0

    def started(self, upload_id: str) -> None:
        """A new multipart upload: its id is the state to keep."""
        with self._lock:
            self._upload_id, self._parts = upload_id, {}
            if self._progress is not None:
                self._progress(self.bytes, UploadState(upload_id))

    def add(self, count: int) -> None:
        """``count`` more bytes are going out now."""
        with self._lock:
            self.bytes += count
            if self._progress is not None:
                self._progress(self.bytes, None)

    def stored(self, part: UploadedPart) -> None:
        """The server holds ``part`` (sent now, or re-used): a new state to keep."""
        with self._lock:
            self._parts[part.number] = part
            if self._progress is not None and self._upload_id is not None:
                self._progress(self.bytes, self.state())

    def state(self) -> UploadState:
        assert self._upload_id is not None
        return UploadState(self._upload_id, tuple(self._parts[n] for n in sorted(self._parts)))

    @property
    def parts(self) -> list[UploadedPart]:
        return [self._parts[n] for n in sorted(self._parts)]


class Body:
    """``data`` as a seekable file-like body; what is read of it for sending is
    reported to ``sent`` every ``REPORT_BYTES`` (and at its end)."""

    def __init__(self, data: bytes, sent: Sending) -> None:
        self._view = memoryview(data)
        self._size = len(data)
        self._sent = sent
        self._position = 0
        self._reported = 0  # the furthest point read for sending and reported
        self._sending = False

    def __len__(self) -> int:
        return self._size

    def read(self, size: int | None = -1) -> memoryview:
        start = self._position
        end = self._size if size is None or size < 0 else min(self._size, start + size)
        self._position = end
        if self._sending:
            self._report(end)
        return self._view[start:end]

    def _report(self, end: int) -> None:
        if end >= self._reported + REPORT_BYTES or (end == self._size and end > self._reported):
            fresh, self._reported = end - self._reported, end
            self._sent.add(fresh)

    def finish(self) -> None:
        """The request succeeded: whatever was sent and not yet reported, report now."""
        if self._reported < self._size:
            fresh, self._reported = self._size - self._reported, self._size
            self._sent.add(fresh)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = max(0, min(self._size, base + offset))
        return self._position

    def tell(self) -> int:
        return self._position

    def signal_transferring(self) -> None:
        self._sending = True

    def signal_not_transferring(self) -> None:
        self._sending = False


def _not_sending(request: Any, operation_name: str, **_: Any) -> None:
    if operation_name in _CARRYING and isinstance(request.body, Body):
        request.body.signal_not_transferring()


def _sending(request: Any, operation_name: str, **_: Any) -> None:
    if operation_name in _CARRYING and isinstance(request.body, Body):
        request.body.signal_transferring()


def _no_expect(model: Any, params: Any, **_: Any) -> None:
    # The body is in memory: waiting a round trip for the gateway's "100 Continue"
    # before each part would only leave the wire idle (an error answer still comes).
    if model.name in _CARRYING and isinstance(params.get("body"), Body):
        params.get("headers", {}).pop("Expect", None)


def watch_sending(client: Any) -> None:
    """Make ``client``'s bodies count only what is read after the request is signed;
    and send them without waiting for ``100 Continue``."""
    events = client.meta.events
    # Last: after botocore's own handler has added the header.
    events.register_last("before-call.s3", _no_expect, unique_id="evidock-no-expect")
    events.register_first("request-created.s3", _not_sending, unique_id="evidock-not-sending")
    events.register_last("request-created.s3", _sending, unique_id="evidock-sending")
