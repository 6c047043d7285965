"""Supervised access to footage (调阅监督): every read of a clip out of the station says
who reads it and why, and is a ``clip.accessed`` leaf committed before a byte is read.

A clip marked privacy or secret (its own mark or a case's, ``agent.sensitivity``) is read
only by a person the station's ``[sensitivity]`` config allows; anyone else is refused
before the output file is made or a byte is read, and the refusal is an
``access.refused`` leaf."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import sqlite3
from pathlib import Path

from agent.database import transaction
from agent.errors import EvidockError
from agent.sensitivity import check_fetch
from agent.station import Station
from hashing import NotRegularFileError
from ledger import Leaf

_CHUNK = 1024 * 1024


class AccessError(EvidockError):
    """The access cannot be granted as asked; the message says what to give."""


class AccessRefused(AccessError):
    """The person may not see what they asked for; the refusal is on record."""


class AccessIntegrityError(EvidockError):
    """The stored clip does not match its ledger digest; nothing is handed out."""

    exit_code = 1


def record_access(
    station: Station,
    conn: sqlite3.Connection,
    clip_id: str,
    *,
    who: str,
    purpose: str,
    action: str,
    via: str,
) -> Leaf:
    """Commit the ``clip.accessed`` leaf of one read, before its first byte (the CLI's
    fetch and export, the API's download and stream alike)."""
    with transaction(conn):
        return station.ledger(conn).append(
            "clip.accessed",
            {"clip_id": clip_id, "who": who, "purpose": purpose, "action": action, "via": via},
        )


def fetch_clip(
    station: Station,
    conn: sqlite3.Connection,
    clip_id: str,
    out: Path,
    *,
    who: str,
    purpose: str,
    via: str = "cli",
) -> str:
    """Copy a clip to ``out`` (a new file) and return its SHA-256, checked on the way."""
    if not who.strip() or not purpose.strip():
        raise AccessError("say who reads the clip (--who) and why (--purpose): access is logged")
    row = conn.execute("SELECT sha256 FROM clips WHERE clip_id = ?", (clip_id,)).fetchone()
    if row is None:
        raise AccessError(f"no clip {clip_id} on this station")
    # Decided first: a refused person's attempt is recorded whatever --out they gave.
    refused = check_fetch(
        conn, station.ledger(conn), station.config.sensitivity, clip_id,
        who=who, purpose=purpose, via=via,
    )  # fmt: skip
    if refused is not None:
        raise AccessRefused(refused)
    _check_new(out)
    try:
        # Made before the access is recorded, so a place that cannot be written is refused
        # without a leaf; no evidence byte is read before the leaf. Its name is new every
        # time: what an interrupted fetch left never blocks another.
        temp, out_fd = _make_temporary(out)
    except OSError as exc:
        raise AccessError(
            f"cannot write {out}: {exc.strerror}; give --out a new file in a folder you may write"
        ) from None
    expected = str(row["sha256"])
    try:
        try:
            record_access(
                station, conn, clip_id, who=who, purpose=purpose, action="download", via=via
            )
            digest = _copy_object(station, clip_id, expected, out_fd, out)
        finally:
            os.close(out_fd)
        if digest != expected:
            raise AccessIntegrityError(
                f"clip {clip_id} in the store does not match its ledger SHA-256: nothing was "
                "handed out; run `evidock verify` and restore it from central storage"
            )
        _publish(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return expected


def _check_new(out: Path) -> None:
    try:
        os.lstat(out)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AccessError(
            f"cannot write {out}: {exc.strerror}; give --out a new file in a folder you may write"
        ) from None
    raise AccessError(f"{out} exists: give a new file name")


def _make_temporary(out: Path) -> tuple[Path, int]:
    temp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return temp, os.open(temp, flags, 0o666)


def _copy_object(station: Station, clip_id: str, sha256: str, out_fd: int, out: Path) -> str:
    """Copy the stored object to ``out_fd``, fsynced; returns the SHA-256 of what was read."""
    try:
        src = station.store.open_object(sha256)
    except FileNotFoundError:
        raise AccessIntegrityError(
            f"clip {clip_id} is missing from the store: run `evidock verify`"
        ) from None
    except NotRegularFileError as exc:
        raise AccessIntegrityError(f"clip {clip_id}: {exc}") from None
    digest = hashlib.sha256()
    with os.fdopen(src, "rb") as reader:
        while True:
            try:
                block = reader.read(_CHUNK)
            except OSError as exc:
                raise AccessIntegrityError(
                    f"reading clip {clip_id} from the store failed ({exc.strerror}): nothing "
                    "was handed out; run `evidock verify`"
                ) from None
            if not block:
                break
            digest.update(block)
            _write(out_fd, block, out)
    try:
        os.fsync(out_fd)
    except OSError as exc:
        raise _write_failed(out, exc) from None
    return digest.hexdigest()


def _write(fd: int, block: bytes, out: Path) -> None:
    view = memoryview(block)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise _write_failed(out, exc) from None


def _write_failed(out: Path, exc: OSError) -> AccessError:
    return AccessError(
        f"writing {out} failed ({exc.strerror}): nothing was handed out (the access is on "
        "record); free space there or give --out elsewhere, then fetch again"
    )


def _publish(temp: Path, out: Path) -> None:
    """Give the checked copy its name, never replacing a file made there meanwhile."""
    try:
        os.link(temp, out)
    except FileExistsError:
        raise AccessError(
            f"{out} was made by someone else while the clip was copied: nothing was handed "
            "out; give a new file name"
        ) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP):
            raise _write_failed(out, exc) from None
        os.rename(temp, out)  # a file system without hard links (FAT): checked absent above
        return
    temp.unlink()
