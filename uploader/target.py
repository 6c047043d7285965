"""What a delivery target offers: the seam between the upload queue and central storage.

A target stores evidence under its SHA-256 (content addressed, so a put is idempotent),
says what it holds for a SHA-256 (``head``), and keeps anchors write-once. A put may
be long (gigabytes to a remote store): it reports progress with the state a resumed
put needs (an S3 multipart upload's id and completed parts), and it stops between
pieces when asked, so that a later put given that state continues where it left off.

The agent hands a target one :data:`Hasher` (its hashing pipeline) where whole files
must be digested: this room does not import ``hashing``.

Anchors of many stations share one target: each station's go under
``anchors/<station id>/<key hash>/`` (the ``prefix`` a put is given), and ``anchors()``
reads them back for a verifier. ``held`` and ``read_range`` let a later check
(``evidock reverify --central``) see what a target holds now under a confirmed name.

A target is shared between threads (uploads on the delivery worker, anchors from
checkpointing): it keeps no per-call state on itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Confirmation:
    """What the target says it holds: the size and SHA-256 it confirmed, and where."""

    size: int
    sha256: str
    location: str


@dataclass(frozen=True)
class UploadedPart:
    """One completed part of a multipart upload (S3: part number and ETag)."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class UploadState:
    """Where a resumable put stands: kept on the job row, handed back to the next put.

    A target that cannot resume (the folder target copies in one go) never reports one.
    """

    upload_id: str
    parts: tuple[UploadedPart, ...] = ()

    @property
    def sent(self) -> int:
        return sum(part.size for part in self.parts)


ANCHORS_ROOT = "anchors"


@dataclass(frozen=True)
class HeldAnchor:
    """An anchor as central storage holds it: its name below ``anchors/``
    (``<station id>/<key hash>/checkpoint-<size>.anchor``, or a station's older
    ``checkpoint-<size>.anchor`` straight in the folder), its text and where it is; and
    the trusted-timestamp token kept beside it (``<name>.tsr``), where the target reads
    tokens back (S3) and one is there."""

    name: str
    text: str
    location: str
    token: bytes | None = None


@dataclass(frozen=True)
class HeldObject:
    """What a target holds under a clip's name now: its size and SHA-256 (S3: as its
    metadata states it; a folder: its bytes re-hashed), where, and S3's ETag and version."""

    size: int
    sha256: str
    location: str
    etag: str | None = None
    version_id: str | None = None


# progress(bytes this put has sent so far, state to save or None). Called as the bytes
# go (S3: every MiB read for sending, within a PUT or a part, so a bandwidth limit paces
# them) and as parts complete; re-used parts of a resumed upload are never counted as
# sent. May be called from the put's sender threads, never two calls at once. May raise
# to abandon the put (the state saved so far stays).
PutProgress = Callable[[int, UploadState | None], None]


class Digest(Protocol):
    """The part of a file's digests a target needs (``hashing.Digests`` has it)."""

    @property
    def size(self) -> int: ...

    @property
    def sha256(self) -> str: ...


# Digests of a whole file on disk; raises OSError when the file cannot be read.
Hasher = Callable[[Path], Digest]


class Target(Protocol):
    """Central storage for evidence and anchors (``FolderTarget`` now, S3 next)."""

    @property
    def name(self) -> str:
        """The target's name in the config, the queue and ``clip.uploaded`` leaves."""
        ...

    def head(self, sha256: str) -> Confirmation | None:
        """What the target holds under ``sha256`` (its confirmed size and SHA-256), or None.

        Raises ``TargetUnavailable`` when it cannot tell now.
        """
        ...

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
        """Store ``source`` under ``sha256`` and confirm what the target then holds.

        ``state`` continues an earlier put of the same object. Between pieces ``stop``
        is looked at: once set, ``UploadStopped`` is raised and the put can be resumed.
        Raises ``SourceIntegrityError`` when ``source`` is missing, unreadable or not
        the bytes ``sha256`` names (nothing is then stored under that name),
        ``TargetUnavailable`` (retry later) or ``ConfirmationMismatch`` (the target
        holds other bytes under that name).
        """
        ...

    def put_anchor(self, name: str, text: str, *, prefix: str | None = None) -> str:
        """Publish an anchor (a signed checkpoint) once; returns where it is held.

        ``prefix`` is the station's place among the anchors (``anchors/<station id>/<key
        hash>``); None: the target's own (S3: the prefix it was made with; a folder: the
        anchor folder itself, as before stations shared one). Publishing the same text
        again is a no-op; different text under a name already taken raises
        ``ConfirmationMismatch`` and never replaces what is there.
        """
        ...

    def anchors(self, station_id: str | None = None) -> list[HeldAnchor]:
        """The anchors the target holds: one station's (and the folder's older ones
        named by size alone, whoever wrote them), or every station's. S3: every version
        of each, so a second text under a name is seen too. ``TargetUnavailable`` when
        it cannot be read now."""
        ...

    def held(self, sha256: str, version_id: str | None = None) -> HeldObject | None:
        """What the target holds under ``sha256`` now (S3: the current version, or the
        version named), or None: nothing there."""
        ...

    def read_range(
        self, sha256: str, offset: int, length: int, version_id: str | None = None
    ) -> bytes:
        """``length`` bytes from ``offset`` of the object (fewer at its end)."""
        ...


@runtime_checkable
class AnchorBytesTarget(Protocol):
    """A target that also keeps bytes beside its anchors (S3: a checkpoint's
    trusted-timestamp token, ``<anchor name>.tsr``), as write-once as the anchors."""

    def put_anchor_bytes(self, name: str, data: bytes, *, prefix: str | None = None) -> str:
        """Publish ``data`` once under ``name`` among the station's anchors (``prefix``
        as ``put_anchor``'s); the same bytes again is a no-op, other bytes raise
        ``ConfirmationMismatch``. Returns where it is held."""
        ...
