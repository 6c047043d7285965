"""A plain folder as central storage (the embedded default and the demo's target).

Objects are written as ``objects/ab/<sha256>`` through a temporary name, fsynced and
renamed; the target then re-reads what it holds to confirm size and SHA-256, as a
remote store's confirmation would. Anchors (signed checkpoints) are written once,
read-only, and never replaced by different text.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uploader.errors import ConfirmationMismatch, DeliveryError, TargetUnavailable

_READ = 1024 * 1024
_ANCHOR_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclass(frozen=True)
class Confirmation:
    """What the target says it holds after a put."""

    size: int
    sha256: str
    location: str


def _sha256_of(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(_READ):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(final: Path, write: Any) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.name}.part")
    with temp.open("wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, 0o444)
    os.replace(temp, final)
    _fsync_dir(final.parent)


class FolderTarget:
    """Central storage in a local or mounted folder."""

    name = "folder"

    def __init__(self, root: Path, anchor_dir: Path | None = None) -> None:
        self.root = root
        self.anchor_dir = anchor_dir if anchor_dir is not None else root / "anchors"

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256

    def put(self, sha256: str, source: Path, meta: dict[str, Any]) -> Confirmation:
        """Store ``source`` under its SHA-256 and confirm what the folder now holds."""
        final = self.object_path(sha256)
        try:
            if not final.exists():
                with source.open("rb") as src:
                    _write_durably(final, lambda dst: shutil.copyfileobj(src, dst, _READ))
            meta_path = final.with_name(f"{sha256}.json")
            if not meta_path.exists():
                text = json.dumps(meta, ensure_ascii=False, sort_keys=True, indent=1)
                _write_durably(meta_path, lambda dst: dst.write(text.encode("utf-8")))
            size, held = _sha256_of(final)
        except OSError as exc:
            raise TargetUnavailable(
                f"central folder {self.root} cannot be written ({exc.strerror or exc}); "
                "check that it is mounted and writable — the job will be retried"
            ) from None
        if held != sha256:
            raise ConfirmationMismatch(
                f"central folder holds other bytes for {sha256} at {final} (sha256 {held}); "
                "the clip stays queued and local — investigate that file"
            )
        return Confirmation(size=size, sha256=held, location=str(final))

    def put_anchor(self, name: str, text: str) -> Path:
        """Hand over a signed checkpoint; an anchor is written once and never replaced."""
        if not _ANCHOR_NAME.match(name):
            raise DeliveryError(f"bad anchor name {name!r}")
        final = self.anchor_dir / name
        data = text.encode("utf-8")
        try:
            if final.exists():
                if final.read_bytes() != data:
                    raise ConfirmationMismatch(
                        f"anchor {final} already exists with other content; anchors are "
                        "write-once — investigate before publishing again"
                    )
                return final
            _write_durably(final, lambda dst: dst.write(data))
        except OSError as exc:
            raise TargetUnavailable(
                f"anchor folder {self.anchor_dir} cannot be written: {exc}"
            ) from None
        return final
