"""How a command names its station: ``--config FILE`` or ``--data-dir DIR``, either enough.

One place for every command (the evidock CLI and the ledger's subcommands), so that a
station is always opened under its own identity and with its own config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.anchoring import publish_checkpoint
from agent.boundary import fresh_line
from agent.database import DB_NAME
from agent.delivery import delivery_target
from agent.errors import EvidockError
from agent.station import Station, station_config
from config import StationConfig, load_config
from config.common import printable
from uploader import DeliveryError, Target


class UsageError(EvidockError):
    """The command line cannot be used as given; the message says what to give."""


def add_station_options(p: argparse.ArgumentParser, *, read_only: bool = False) -> None:
    p.add_argument(
        "--config",
        help="station config file; enough on its own (its paths.data_dir is the data dir)",
    )
    p.add_argument(
        "--data-dir",
        help="station data dir"
        + (" (a copy will do)" if read_only else "")
        + "; without --config the station's own identity and config are read from it",
    )


def resolve_station(args: argparse.Namespace) -> tuple[StationConfig, Path | None, Path]:
    """The config, its file (None: embedded defaults) and the data dir a command names.

    ``--config FILE`` alone is enough (its ``paths.data_dir``; ``--data-dir`` overrides
    it). ``--data-dir DIR`` alone takes the station's identity and config from the data
    dir itself, so no built-in default is ever written into an existing station.
    """
    config_arg = getattr(args, "config", None)
    data_arg = getattr(args, "data_dir", None)
    if config_arg:
        config_file = Path(config_arg).absolute()
        config = load_config(config_file)
        data_dir = Path(data_arg).absolute() if data_arg else config.paths.data_dir.absolute()
        return config, config_file, data_dir
    if not data_arg:
        raise UsageError("say which station: give --config FILE or --data-dir DIR")
    data_dir = Path(data_arg).absolute()
    config, recorded = station_config(data_dir)
    return config, recorded, data_dir


def station_data_dir(args: argparse.Namespace) -> Path:
    """The data dir of an existing station, for commands that only read it.

    Reads no config file when ``--data-dir`` is given: an auditor's copy of a data dir
    verifies without the station's config.
    """
    if getattr(args, "data_dir", None):
        data_dir = Path(args.data_dir)
    elif getattr(args, "config", None):
        data_dir = load_config(Path(args.config)).paths.data_dir
    else:
        raise UsageError("say which station: give --data-dir DIR (or --config FILE)")
    if not (data_dir / DB_NAME).is_file():
        raise UsageError(f"{data_dir} holds no station (no {DB_NAME}): give the station's data dir")
    return data_dir


def open_station(args: argparse.Namespace, *, create: bool = False) -> Station:
    """Open the station a command names for writing; only ingest may make a new one."""
    config, config_file, data_dir = resolve_station(args)
    if not create and not (data_dir / DB_NAME).is_file():
        raise UsageError(
            f"{data_dir} holds no station (no {DB_NAME}): give the station's data dir "
            "(--data-dir) or its config (--config)"
        )
    return Station.open(config, data_dir, config_file=config_file)


def sign(station: Station) -> None:
    """Commands that append leaves outside the daemon sign a checkpoint before returning.

    The checkpoint is signed even when the delivery target cannot be used now (an S3
    access key that cannot be read, say): what the command recorded is covered, and the
    anchor is published by the next command or the daemon that can reach the target.
    """
    try:
        target: Target | None = delivery_target(station)
    except DeliveryError as exc:
        fresh_line()
        print(
            printable(f"evidock: checkpoint signed, its anchor not published yet: {exc}"),
            file=sys.stderr,
        )
        target = None
    publish_checkpoint(station, station.conn, target)
