"""The station a data dir belongs to, written once when the data dir is made.

``DIR/station.json`` records the station's id, name, place and time zone, the public
key it signs with, and the config file it was made with (none for a station made on the
embedded defaults). Every command that opens the data dir takes the station's identity
from here: a config naming another station is refused, and a built-in default is never
written into an existing station's ledger.

The file is a convenience for people and commands, not a trust root: the auditor's
verifier ignores it and trusts only the key and anchors it is given.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

from agent.errors import DataDirError, EvidockError

IDENTITY_NAME: Final = "station.json"
IDENTITY_FORMAT: Final = "evidock.station@v1"


class StationMismatchError(EvidockError):
    """A config (or a command's defaults) names another station than the data dir's."""


@dataclass(frozen=True)
class StationIdentity:
    id: str
    name: str
    place: str
    time_zone: str
    created_at: str
    config: str | None = None
    key: str | None = None
    key_fingerprint: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"format": IDENTITY_FORMAT, **asdict(self)}

    def with_key(self, key_text: str, fingerprint: str) -> StationIdentity:
        return replace(self, key=key_text, key_fingerprint=fingerprint)

    def with_config(self, config: str | None) -> StationIdentity:
        return replace(self, config=config)

    def write(self, data_dir: Path) -> None:
        """Write (or replace) the identity file atomically, readable by auditors."""
        path = data_dir / IDENTITY_NAME
        tmp = path.with_name(f".{IDENTITY_NAME}.{os.getpid()}.tmp")
        text = json.dumps(self.as_json(), ensure_ascii=False, indent=2) + "\n"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, text.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as exc:
            raise DataDirError(
                f"cannot write {path}: {exc.strerror}; check that the data dir is writable"
            ) from None

    @classmethod
    def read(cls, data_dir: Path) -> StationIdentity | None:
        path = data_dir / IDENTITY_NAME
        try:
            data = json.loads(path.read_text("utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            return None  # a new data dir (or none at all: opening it says why)
        except (OSError, ValueError) as exc:
            raise DataDirError(
                f"{path} cannot be read ({exc}); restore it from backup, or remove it to "
                "have it made again from the ledger"
            ) from None
        if not isinstance(data, dict) or data.get("format") != IDENTITY_FORMAT:
            raise DataDirError(f"{path} is not an evidock station identity ({IDENTITY_FORMAT})")
        try:
            return cls(
                id=str(data["id"]),
                name=str(data.get("name", "")),
                place=str(data.get("place", "")),
                time_zone=str(data.get("time_zone", "")),
                created_at=str(data.get("created_at", "")),
                config=_optional(data.get("config")),
                key=_optional(data.get("key")),
                key_fingerprint=_optional(data.get("key_fingerprint")),
            )
        except KeyError:
            raise DataDirError(f"{path} names no station id; restore it from backup") from None


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def ledger_station(db_path: Path) -> str | None:
    """The station named by the first ledger leaf of an existing database, if any.

    Data dirs made before ``station.json`` existed are adopted from their ledger.
    """
    if not db_path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT data FROM ledger_leaves ORDER BY idx LIMIT 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    if row is None:
        return None
    try:
        station = json.loads(bytes(row[0])).get("station")
    except (ValueError, AttributeError):
        return None
    return station if isinstance(station, str) else None


def check_same_station(identity: StationIdentity, config_id: str, source: str, where: Path) -> None:
    if identity.id != config_id:
        raise StationMismatchError(
            f"{where} belongs to station {identity.id!r}, but {source} is for station "
            f"{config_id!r}: give the config of station {identity.id!r}, or another data dir"
        )
