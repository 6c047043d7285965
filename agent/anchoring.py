"""Signed checkpoints and their anchors: made after every docking session and every
``ledger.checkpoint_minutes``, handed to the delivery side where the station cannot
rewrite them (a write-once folder in the embedded default), under the station's id and
key (``anchors/<station id>/<key hash>/``: stations share a bucket or a folder).

The station's keys folder is owned by ``ledger.Keyring``; everything here goes through it.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from agent.delivery import anchor_prefix, delivery_target
from agent.station import KEYS_DIR, Station
from agent.timestamping import after_publish
from ledger import LAST_SIGNED_NAME, Anchor, Keyring, StationKey
from uploader import DeliveryError, FolderTarget, Target

log = logging.getLogger("evidock")

__all__ = [
    "KEYS_DIR",
    "LAST_SIGNED",
    "anchor_files",
    "keyring",
    "publish_checkpoint",
    "rotate_station_key",
    "station_key",
]

LAST_SIGNED = LAST_SIGNED_NAME


def keyring(station: Station) -> Keyring:
    """The owner of ``DIR/keys`` for this station."""
    return station.keyring()


def station_key(station: Station) -> StationKey:
    """The station key, after settling what a crash left in the keys folder."""
    return keyring(station).open(station.ledger())


def publish_checkpoint(
    station: Station, conn: sqlite3.Connection, target: Target | None
) -> Anchor | None:
    """Sign the current tree head (if it grew) and publish its anchor.

    A ledger with no leaves has nothing to sign. Publishing failures (or no usable
    target: ``None``) leave the checkpoint signed and stored; the next call publishes it
    again (anchors are write-once, publishing the same text twice is a no-op).
    """
    ledger = station.ledger(conn)
    if ledger.size() == 0:
        return None
    anchor = station.keyring().sign(ledger)
    # The TSA's token over the anchor (when timestamping is on); a TSA down only waits.
    after_publish(station, conn, target, anchor)
    if target is None:
        return anchor
    try:
        target.put_anchor(anchor.file_name(), anchor.text(), prefix=anchor_prefix(station))
    except DeliveryError as exc:
        log.warning("anchor %s not published yet: %s", anchor.file_name(), exc)
    return anchor


def rotate_station_key(station: Station) -> tuple[str, str, str]:
    """Rotate the station key and publish the checkpoint signed by both keys.

    Returns (retired key, new key, where the target holds the anchor); the keys as
    signed-note verifier key texts. A DeliveryError means the rotation is done but its
    anchor is not published.
    """
    old, new, anchor = station.keyring().rotate(station.ledger())
    station.record_key()
    published = delivery_target(station).put_anchor(
        anchor.file_name(), anchor.text(), prefix=anchor_prefix(station)
    )
    return old.verifier.text(), new.verifier.text(), published


def anchor_files(target: Target) -> list[Path]:
    """The anchor files a folder target holds, every station's, oldest checkpoint first
    (other targets: none on this disk)."""
    if not isinstance(target, FolderTarget) or not target.anchor_dir.is_dir():
        return []
    found = target.anchor_dir.glob("**/*.anchor")
    return sorted((p for p in found if p.is_file()), key=lambda p: (p.name, p))
