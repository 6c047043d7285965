"""A plain folder as central storage (the embedded default, the demo's target, a NAS).

Objects are written as ``objects/ab/<sha256>``: copied to a temporary name, fsynced,
digested with the agent's hasher, and linked into place only if they are the bytes
their name says (a link never replaces what another writer put there first). What the
folder holds is confirmed by reading it back, as a remote store's confirmation would.
Anchors (signed checkpoints) are written once, read-only, and never replaced, under the
names an S3 target gives them: ``<anchor folder>/<station id>/<key hash>/checkpoint-<size>
.anchor``, so stations sharing one folder never collide. A station that wrote
``checkpoint-<size>.anchor`` straight into the folder before keeps those: they are read
back with the rest.

A folder copy is quick to redo, so the folder target keeps no resumable state: a
stopped put leaves nothing behind and the next one starts over.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config.common import fsync_dir, write_new
from uploader.errors import (
    ConfirmationMismatch,
    DeliveryError,
    SourceIntegrityError,
    TargetUnavailable,
    UploadStopped,
)
from uploader.target import (
    ANCHORS_ROOT,
    Confirmation,
    Digest,
    Hasher,
    HeldAnchor,
    HeldObject,
    PutProgress,
    UploadState,
)

_BLOCK = 1024 * 1024
_ANCHOR_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


class FolderTarget:
    """Central storage in a local or mounted folder (implements ``uploader.Target``)."""

    name = "folder"

    def __init__(self, root: Path, anchor_dir: Path | None = None, *, hasher: Hasher) -> None:
        self.root = root
        self.anchor_dir = anchor_dir if anchor_dir is not None else root / "anchors"
        self._hasher = hasher

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256

    def _unavailable(self, exc: OSError) -> TargetUnavailable:
        return TargetUnavailable(
            f"central folder {self.root} cannot be written ({exc.strerror or exc}); "
            "check that it is mounted and writable — the job will be retried"
        )

    def head(self, sha256: str) -> Confirmation | None:
        """Read back what the folder holds under ``sha256`` (None: nothing)."""
        final = self.object_path(sha256)
        try:
            mode = os.lstat(final).st_mode
            if not stat.S_ISREG(mode):
                raise ConfirmationMismatch(
                    f"central folder holds something other than a file at {final}; "
                    "the clip stays queued and local — investigate that path"
                )
            held = self._hasher(final)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._unavailable(exc) from None
        return Confirmation(size=held.size, sha256=held.sha256, location=str(final))

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
        """Store ``source`` under its SHA-256 and confirm what the folder now holds."""
        final = self.object_path(sha256)
        held = self.head(sha256)
        if held is None:
            copied = self._copy_in(sha256, source, final, progress, stop)
            held = (
                Confirmation(size=copied.size, sha256=copied.sha256, location=str(final))
                if copied is not None
                else self.head(sha256)
            )
        if held is None or held.sha256 != sha256:
            raise ConfirmationMismatch(
                f"central folder holds other bytes for {sha256} at {final} "
                f"(sha256 {held.sha256 if held else 'none'}); "
                "the clip stays queued and local — investigate that file"
            )
        meta_path = final.with_name(f"{sha256}.json")
        text = json.dumps(dict(meta), ensure_ascii=False, sort_keys=True, indent=1)
        try:
            # The first description of an object stays: a later writer's is not kept.
            write_new(meta_path, text.encode("utf-8"), 0o444)
        except OSError as exc:
            raise self._unavailable(exc) from None
        return held

    def _copy_in(
        self,
        sha256: str,
        source: Path,
        final: Path,
        progress: PutProgress | None,
        stop: threading.Event | None,
    ) -> Digest | None:
        """Copy ``source`` to ``final`` through a temporary name; its digests, or None
        when another writer linked the object first."""
        try:
            src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise _unreadable(source, exc.strerror or str(exc)) from None
        temp = final.with_name(f".{sha256}.{os.getpid()}.{threading.get_ident()}.part")
        out = -1
        try:
            if not stat.S_ISREG(os.fstat(src).st_mode):
                raise _unreadable(source, "not a regular file")
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise self._unavailable(exc) from None
            sent = 0
            while True:
                if stop is not None and stop.is_set():
                    raise UploadStopped(f"stopped after {sent} bytes of {sha256}; not stored")
                try:
                    block = os.read(src, _BLOCK)
                except OSError as exc:
                    raise _unreadable(source, exc.strerror or str(exc)) from None
                if not block:
                    break
                try:
                    view = memoryview(block)
                    while view:
                        view = view[os.write(out, view) :]
                except OSError as exc:
                    raise self._unavailable(exc) from None
                sent += len(block)
                if progress is not None:
                    progress(sent, None)
            try:
                os.fchmod(out, 0o444)
                os.fsync(out)
                os.close(out)
                out = -1
                copied = self._hasher(temp)
            except OSError as exc:
                raise self._unavailable(exc) from None
            if copied.sha256 != sha256:
                raise SourceIntegrityError(
                    f"the station's copy {source} is not the bytes its name says "
                    f"(it reads as sha256 {copied.sha256}); nothing was stored centrally"
                )
            try:
                os.link(temp, final)
            except FileExistsError:
                return None
            except OSError as exc:
                raise self._unavailable(exc) from None
            try:
                fsync_dir(final.parent)
            except OSError as exc:
                raise self._unavailable(exc) from None
            return copied
        finally:
            os.close(src)
            if out >= 0:
                os.close(out)
            temp.unlink(missing_ok=True)

    def put_anchor(self, name: str, text: str, *, prefix: str | None = None) -> str:
        """Hand over a signed checkpoint; an anchor is written once and never replaced."""
        folder = self.anchor_dir
        for part in _scope(prefix):
            folder = folder / part
        if not _is_name(name):
            raise DeliveryError(f"bad anchor name {name!r}")
        final = folder / name
        data = text.encode("utf-8")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not write_new(final, data, 0o444) and final.read_bytes() != data:
                raise ConfirmationMismatch(
                    f"anchor {final} already exists with other content; anchors are "
                    "write-once — investigate before publishing again"
                )
        except OSError as exc:
            raise TargetUnavailable(f"anchor folder {folder} cannot be written: {exc}") from None
        return str(final)

    def anchors(self, station_id: str | None = None) -> list[HeldAnchor]:
        """One station's anchors (every key's), or every station's, and the older ones
        straight in the folder (whichever station wrote them: the reader tells)."""
        if station_id is not None and not _is_name(station_id):
            raise DeliveryError(f"bad station id {station_id!r}")
        stations = "*" if station_id is None else station_id
        try:
            found = [
                *self.anchor_dir.glob("*.anchor"),
                *self.anchor_dir.glob(f"{stations}/*/*.anchor"),
            ]
            held = []
            for path in sorted(found):
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue  # a link or a folder is no anchor of ours
                name = path.relative_to(self.anchor_dir).as_posix()
                held.append(
                    HeldAnchor(name, path.read_bytes().decode("utf-8", "replace"), str(path))
                )
        except OSError as exc:
            raise TargetUnavailable(
                f"anchor folder {self.anchor_dir} cannot be read ({exc.strerror or exc}); "
                "check that it is mounted"
            ) from None
        return held

    def held(self, sha256: str, version_id: str | None = None) -> HeldObject | None:
        """What the folder holds under ``sha256``, its bytes re-hashed (a folder keeps no
        versions: ``version_id`` is not looked at)."""
        confirmed = self.head(sha256)
        if confirmed is None:
            return None
        return HeldObject(confirmed.size, confirmed.sha256, confirmed.location)

    def read_range(
        self, sha256: str, offset: int, length: int, version_id: str | None = None
    ) -> bytes:
        try:
            fd = os.open(self.object_path(sha256), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise self._unavailable(exc) from None
        try:
            return os.pread(fd, length, offset)
        except OSError as exc:
            raise self._unavailable(exc) from None
        finally:
            os.close(fd)


def _is_name(part: str) -> bool:
    return bool(_ANCHOR_NAME.fullmatch(part)) and part not in (".", "..")


def _scope(prefix: str | None) -> list[str]:
    """The folders below the anchor folder that ``anchors/<station>/<key hash>`` names."""
    if prefix is None:
        return []
    parts = prefix.split("/")
    if parts[0] == ANCHORS_ROOT:
        parts = parts[1:]
    if not parts or not all(_is_name(part) for part in parts):
        raise DeliveryError(f"bad anchor prefix {prefix!r}")
    return parts


def _unreadable(source: Path, why: str) -> SourceIntegrityError:
    return SourceIntegrityError(
        f"the station's copy {source} cannot be read ({why}); nothing was stored centrally"
    )
