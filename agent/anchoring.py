"""Signed checkpoints and their anchors: made after every docking session and every
``ledger.checkpoint_minutes``, handed to the delivery side where the station cannot
rewrite them (a write-once folder in the embedded default)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from agent.station import Station
from ledger import Anchor, StationKey, make_checkpoint, origin_for
from ledger.anchor import LAST_SIGNED_NAME
from uploader import DeliveryError, FolderTarget

log = logging.getLogger("evidock")

KEYS_DIR = "keys"
LAST_SIGNED = LAST_SIGNED_NAME


def station_key(station: Station) -> StationKey:
    return StationKey.load_or_create(station.data_dir / KEYS_DIR, origin_for(station.station_id))


def publish_checkpoint(
    station: Station, conn: sqlite3.Connection, target: FolderTarget
) -> Anchor | None:
    """Sign the current tree head (if it grew) and publish its anchor.

    A ledger with no leaves has nothing to sign. Publishing failures leave the
    checkpoint signed and stored; the next call publishes it again (anchors are
    write-once, publishing the same text twice is a no-op).
    """
    ledger = station.ledger(conn)
    if ledger.size() == 0:
        return None
    anchor = make_checkpoint(
        ledger,
        [station_key(station)],
        last_signed_file=station.data_dir / KEYS_DIR / LAST_SIGNED,
    )
    try:
        target.put_anchor(anchor.file_name(), anchor.text())
    except DeliveryError as exc:
        log.warning("anchor %s not published yet: %s", anchor.file_name(), exc)
    return anchor


def anchor_files(target: FolderTarget) -> list[Path]:
    if not target.anchor_dir.is_dir():
        return []
    return sorted(p for p in target.anchor_dir.glob("*.anchor") if p.is_file())
