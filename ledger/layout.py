"""The evidence package folder on disk: preparing OUT, its file names, listing, sums.

Shared by the exporter that writes a package and the verifier that reads one.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Final

from blake3 import blake3

from ledger.errors import PackageError

MANIFEST_FORMAT: Final = "evidock.export@v1"
ANCHOR_FILE: Final = "checkpoint.anchor"
SUMS_FILES: Final = ("SHA256SUMS", "B3SUMS")
_UNSAFE = re.compile(r"[^\w.\-]+")
_READ = 1 << 20
_PROBE = ".evidock-write-test"


def safe_name(name: str) -> str:
    """A file name safe in a sums file and on any file system (letters, digits, . _ -)."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "clip"
    return cleaned[:120]


def prepare_out(out: Path) -> Path | None:
    """Make sure ``out`` is a new or empty folder we can write, before any leaf is written.

    Returns the topmost folder this call created (to remove on failure), or None.
    """
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise PackageError(
                f"{out} exists and is not a folder: give a new folder for the package"
            )
        try:
            if any(out.iterdir()):
                raise PackageError(f"{out} is not empty: give a new folder for the package")
        except OSError as exc:
            raise PackageError(
                f"cannot read {out}: {exc.strerror}: give a folder you can write"
            ) from None
        created = None
    else:
        created = out
        while not created.parent.exists() and created.parent != created:
            created = created.parent
        try:
            out.mkdir(parents=True)
        except OSError as exc:
            raise PackageError(
                f"cannot create {out}: {exc.strerror}: give a new folder you can write"
            ) from None
    probe = out / _PROBE
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        remove_written(out, created)
        raise PackageError(
            f"cannot write in {out}: {exc.strerror}: give a folder you can write"
        ) from None
    return created


def remove_written(out: Path, created: Path | None) -> None:
    """Remove what an export wrote: the folders it created, or the content of ``out``."""
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
        return
    for child in out.iterdir() if out.is_dir() else []:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def package_files(out: Path) -> list[str]:
    """Every file of the package but the sums files, as sorted POSIX relative paths."""
    names = []
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and rel not in SUMS_FILES:
            names.append(rel)
    return sorted(names)


def write_sums(out: Path) -> None:
    sha_lines, b3_lines = [], []
    for rel in package_files(out):
        sha, b3 = hashlib.sha256(), blake3()
        with (out / rel).open("rb") as f:
            while chunk := f.read(_READ):
                sha.update(chunk)
                b3.update(chunk)
        sha_lines.append(f"{sha.hexdigest()}  {rel}\n")
        b3_lines.append(f"{b3.hexdigest()}  {rel}\n")
    (out / "SHA256SUMS").write_text("".join(sha_lines), "utf-8")
    (out / "B3SUMS").write_text("".join(b3_lines), "utf-8")
