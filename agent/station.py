"""A station's state on disk, opened once: config, data dir, database, store, ledger.

Every thread that writes (one ingest session per docked recorder, the delivery worker)
takes its own SQLite connection from :meth:`Station.connect`; SQLite's single writer
and ``BEGIN IMMEDIATE`` serialise their transactions, so ledger indexes stay contiguous.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from agent.clock import iso, utc_now
from agent.database import DB_NAME, open_station_db
from agent.errors import DataDirError
from agent.identity import (
    StationIdentity,
    StationMismatchError,
    check_same_station,
    ledger_station,
)
from agent.sessions import close_orphaned_sessions
from config import StationConfig, default_config_text, load_config, parse_config
from hashing import (
    BufferBudget,
    CopyEngine,
    EvidenceStore,
    HashOptions,
    SourceOpener,
    open_source,
)
from ledger import Keyring, Ledger, origin_for

KEYS_DIR = "keys"


def embedded_config(data_dir: Path, **sections: dict[str, object]) -> StationConfig:
    """The defaults with everything kept under ``data_dir``: the station db and store,
    ``central/`` as central storage, ``anchors/`` for published checkpoints and
    ``dock/`` as the mount root. Extra section values override keys."""
    import tomllib

    data = tomllib.loads(default_config_text())
    data["paths"]["data_dir"] = str(data_dir)
    data["docking"]["mount_root"] = str(data_dir / "dock")
    data["delivery"]["central_dir"] = str(data_dir / "central")
    data["delivery"]["anchor_dir"] = str(data_dir / "anchors")
    for name, values in sections.items():
        data[name].update(values)
    return parse_config(data, "embedded defaults")


def station_config(data_dir: Path) -> tuple[StationConfig, Path | None]:
    """The config of the station that owns ``data_dir``, for a command given only
    ``--data-dir``: the config file it was made with, or the embedded defaults under
    its own identity (never the built-in station id)."""
    identity = StationIdentity.read(data_dir)
    if identity is not None and identity.config:
        path = Path(identity.config)
        if not path.is_file():
            raise DataDirError(
                f"station {identity.id}'s config {path} (named in {data_dir}/station.json) "
                "is missing: give the station's config with --config FILE"
            )
        return load_config(path), path
    if identity is not None:
        values: dict[str, object] = {
            "id": identity.id,
            "name": identity.name,
            "place": identity.place,
        }
        if identity.time_zone:
            values["time_zone"] = identity.time_zone
        return embedded_config(data_dir, station=values), None
    legacy = ledger_station(data_dir / DB_NAME)
    if legacy is not None:
        return embedded_config(data_dir, station={"id": legacy}), None
    return embedded_config(data_dir), None


def bind_identity(
    config: StationConfig, data_dir: Path, config_file: Path | None
) -> StationIdentity:
    """Check that ``config`` is the data dir's station; record the identity of a new one."""
    source = str(config_file) if config_file else "the built-in defaults"
    identity = StationIdentity.read(data_dir)
    if identity is None:
        legacy = ledger_station(data_dir / DB_NAME)
        if legacy is not None and legacy != config.station.id:
            raise StationMismatchError(
                f"{data_dir} belongs to station {legacy!r}, but {source} is for station "
                f"{config.station.id!r}: give the config of station {legacy!r}"
            )
        identity = StationIdentity(
            id=config.station.id,
            name=config.station.name,
            place=config.station.place,
            time_zone=config.station.time_zone,
            created_at=iso(utc_now()),
            config=str(config_file) if config_file else None,
        )
        identity.write(data_dir)
        return identity
    check_same_station(identity, config.station.id, source, data_dir)
    if config_file is not None and identity.config != str(config_file):
        # The station now runs with this file: later commands given only --data-dir use it.
        identity = identity.with_config(str(config_file))
        identity.write(data_dir)
    return identity


def config_digest(config: StationConfig) -> str:
    return hashlib.sha256(config.model_dump_json().encode("utf-8")).hexdigest()


def _check_writable(data_dir: Path, config_file: Path | None) -> None:
    # Say where the data dir came from: `run` has no --data-dir, its config names it.
    where = f"set paths.data_dir in {config_file}" if config_file else "give another --data-dir"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(
            f"cannot create the data dir {data_dir}: {exc.strerror}; {where} (a folder the "
            "evidock user may write)"
        ) from None
    if not data_dir.is_dir():
        raise DataDirError(f"the data dir {data_dir} is not a folder; {where}")
    probe = data_dir / f".write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        hint = "free some space" if exc.errno == errno.ENOSPC else "fix its permissions"
        raise DataDirError(
            f"the data dir {data_dir} is not writable ({exc.strerror}); {hint}, or {where}"
        ) from None


@dataclass
class Station:
    config: StationConfig
    data_dir: Path
    store: EvidenceStore
    budget: BufferBudget
    options: HashOptions
    conn: sqlite3.Connection = field(repr=False)
    # Where recorder files are opened: the USB seam. Tests put a reader that fails like
    # an unplugged recorder here; the station reads real files through open_source.
    source_opener: SourceOpener = open_source
    # Sessions whose process was gone, closed as incomplete when the station was opened.
    orphans_closed: list[str] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        config: StationConfig,
        data_dir: Path | None = None,
        *,
        config_file: Path | None = None,
    ) -> Station:
        """Open the station for writing; refuses a config that names another station."""
        data_dir = (data_dir or config.paths.data_dir).absolute()
        _check_writable(data_dir, config_file)
        identity = bind_identity(config, data_dir, config_file)
        options = HashOptions.from_config(config.hashing)
        store = EvidenceStore(data_dir / "store").create()
        budget = BufferBudget(config.hashing.buffer_budget_mib * 1024 * 1024, options.read_size)
        conn = open_station_db(data_dir / DB_NAME)
        station = cls(config, data_dir, store, budget, options, conn)
        station.orphans_closed = close_orphaned_sessions(conn, station.ledger(), store)
        if identity.key is None:
            # The key is made with the station, so its identity can name it from the start.
            station.record_key()
        return station

    def keyring(self) -> Keyring:
        """The owner of ``DIR/keys`` for this station."""
        return Keyring(self.data_dir / KEYS_DIR, origin_for(self.station_id))

    def record_key(self) -> None:
        """Settle the keys folder (making the key if there is none) and write the
        current public key into the station's identity."""
        keyring = self.keyring()
        keyring.open(self.ledger())
        identity = StationIdentity.read(self.data_dir)
        if identity is not None:
            identity.with_key(keyring.verifier_text(), keyring.fingerprint()).write(self.data_dir)

    @property
    def station_id(self) -> str:
        return self.config.station.id

    def connect(self) -> sqlite3.Connection:
        """A new connection for a worker thread (the caller closes it)."""
        return open_station_db(self.data_dir / DB_NAME)

    def ledger(self, conn: sqlite3.Connection | None = None) -> Ledger:
        return Ledger(conn or self.conn, station_id=self.station_id, clock=utc_now)

    def engine(self, volume_root: Path | None = None) -> CopyEngine:
        """One copy engine per docked recorder, all drawing on the station's buffer budget.

        With ``volume_root``, the station's own opener opens each file's folders relative to
        the volume's root with ``O_NOFOLLOW`` (a folder swapped for a link after the scan
        is refused); an opener a test put in ``source_opener`` is used as it is.
        """
        opener = self.source_opener
        if volume_root is not None and opener is open_source:
            opener = functools.partial(open_source, beneath=volume_root)
        return CopyEngine(self.store, self.options, budget=self.budget, open_source=opener)

    def close(self) -> None:
        self.conn.close()
