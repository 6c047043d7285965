"""Supervised access to footage (调阅监督): every read of a clip out of the station says
who reads it and why, and is a ``clip.accessed`` leaf committed before a byte is read."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

from agent.database import transaction
from agent.errors import EvidockError
from agent.station import Station

_CHUNK = 1024 * 1024


class AccessError(EvidockError):
    """The access cannot be granted as asked; the message says what to give."""


class AccessIntegrityError(EvidockError):
    """The stored clip does not match its ledger digest; nothing is handed out."""

    exit_code = 1


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
    if out.exists() or out.is_symlink():
        raise AccessError(f"{out} exists: give a new file name")
    temp = out.with_name(f".{out.name}.part")
    try:
        # The output file is made before the access is recorded, so a place that cannot
        # be written is refused without a leaf; no evidence byte is read before the leaf.
        handle = temp.open("xb")
    except FileExistsError:
        raise AccessError(
            f"{temp} is left from an earlier fetch: remove it, or give another --out"
        ) from None
    except OSError as exc:
        raise AccessError(
            f"cannot write {out}: {exc.strerror}; give --out a new file in a folder you may write"
        ) from None
    expected = str(row["sha256"])
    digest = hashlib.sha256()
    try:
        with handle as dst:
            with transaction(conn):
                station.ledger(conn).append(
                    "clip.accessed",
                    {
                        "clip_id": clip_id,
                        "who": who,
                        "purpose": purpose,
                        "action": "download",
                        "via": via,
                    },
                )
            with station.store.path_for(expected).open("rb") as src:
                while block := src.read(_CHUNK):
                    digest.update(block)
                    dst.write(block)
            dst.flush()
            os.fsync(dst.fileno())
    except FileNotFoundError:
        temp.unlink(missing_ok=True)
        raise AccessIntegrityError(
            f"clip {clip_id} is missing from the store: run `evidock verify`"
        ) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != expected:
        temp.unlink()
        raise AccessIntegrityError(
            f"clip {clip_id} in the store does not match its ledger SHA-256: nothing was "
            "handed out; run `evidock verify` and restore it from central storage"
        )
    temp.rename(out)
    return expected
