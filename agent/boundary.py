"""The one error boundary: every error a command (or, later, an API request) can end with,
mapped once to an exit code, an HTTP status and a stable error code, with one line that
says what to do.

The CLI's ``main`` (``agent.cli``) and the ledger commands (``agent.ledger_cli``) both run
through :func:`run_command`; the API (issue 19) maps the same :class:`Outcome` to its JSON
error shape with :attr:`Outcome.http_status`.

Exit codes: 0 done, 1 done with problems (or an internal error), 2 unusable input or a
station that cannot work as set up, 3 (verify only) intact but not signed by a trusted
checkpoint, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass

from agent.access import AccessError, AccessIntegrityError
from agent.database import DatabaseError
from agent.errors import CaseError, DataDirError, EvidockError, IngestIncomplete, SourceError
from agent.identity import StationMismatchError
from agent.metadata import FfprobeMissingError
from agent.verification import VerificationInputError
from config import ConfigError
from config.common import printable
from docking import DockingError
from hashing import CopyVerificationError, HashingError, StoreFullError
from ledger import ExportIntegrityError, InconsistentCheckpointError, LedgerError, PackageError
from uploader import DeliveryError

Command = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Outcome:
    """How an error ends a command: ``code`` is stable text for scripts and the API."""

    exit_code: int
    http_status: int
    code: str
    message: str


# First match wins: more specific types before their bases.
ERROR_MAP: tuple[tuple[tuple[type[BaseException], ...], int, int, str], ...] = (
    # (types, exit code, HTTP status, code)
    ((InconsistentCheckpointError,), 1, 409, "ledger_inconsistent"),
    ((ExportIntegrityError, AccessIntegrityError, CopyVerificationError), 1, 409, "integrity"),
    ((IngestIncomplete,), 1, 409, "incomplete"),
    ((StationMismatchError,), 2, 409, "wrong_station"),
    ((ConfigError,), 2, 422, "bad_config"),
    ((PackageError, VerificationInputError, SourceError, CaseError), 2, 400, "bad_input"),
    ((AccessError,), 2, 403, "access_refused"),
    ((DataDirError,), 2, 503, "data_dir"),
    ((StoreFullError,), 2, 507, "store_full"),
    ((FfprobeMissingError,), 2, 503, "station_setup"),
    ((DatabaseError, sqlite3.DatabaseError), 2, 503, "station_database"),
    ((HashingError, DockingError), 2, 422, "recorder"),
    ((DeliveryError,), 2, 502, "central_storage"),
    ((LedgerError,), 2, 400, "ledger"),
    ((EvidockError,), 2, 400, "bad_input"),
    ((OSError,), 2, 500, "os"),
)


def classify(exc: BaseException) -> Outcome:
    """The one map from an error to its exit code, HTTP status, code and message."""
    for types, exit_code, status, code in ERROR_MAP:
        if isinstance(exc, types):
            # An error may carry its own exit code (verify's 1 for a failed check).
            own = getattr(exc, "exit_code", None)
            return Outcome(own if isinstance(own, int) else exit_code, status, code, _text(exc))
    return Outcome(
        1,
        500,
        "internal",
        f"internal error ({type(exc).__name__}: {exc}); nothing was changed beyond what the "
        "ledger records; run again with EVIDOCK_DEBUG=1 and report it",
    )


def _text(exc: BaseException) -> str:
    if isinstance(exc, sqlite3.DatabaseError):
        return f"station database error: {exc}; check the data dir's disk and permissions"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}: check the path and its permissions"
    return str(exc)


INTERRUPTED = (
    "interrupted; the session was closed as incomplete on record, and partial copies "
    "resume when the recorder is docked again"
)


def run_command(name: str, func: Command, args: argparse.Namespace) -> int:
    """Run one command; any error ends it with one line on stderr and its exit code."""
    try:
        return func(args)
    except KeyboardInterrupt:
        fresh_line()
        print(f"\n{name}: {INTERRUPTED}", file=sys.stderr)
        return 130
    except Exception as exc:
        outcome = classify(exc)
        if outcome.code == "internal" and os.environ.get("EVIDOCK_DEBUG"):
            raise
        fresh_line()
        # Messages may hold names from a recorder or a package: never raw on a terminal.
        # A config error with several problems lists them one per line (the station's own
        # config file, each line made printable); every other message is one line.
        lines = [outcome.message]
        if isinstance(exc, ConfigError):
            if len(exc.problems) == 1:
                lines = [f"{exc.source}: invalid config: {exc.problems[0]}"]
            else:
                lines = outcome.message.split("\n")
        print(f"{name}: " + "\n".join(printable(line) for line in lines), file=sys.stderr)
        return outcome.exit_code


def fresh_line() -> None:
    # A progress line may be half drawn on the terminal: end it before the message.
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")
