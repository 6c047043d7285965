"""One error boundary for every command: each error class of every room has its exit
code, HTTP status and code in one map, and both command tables run through it."""

from __future__ import annotations

import ast
import importlib
import inspect
import sqlite3
from pathlib import Path

import pytest

from agent import boundary
from agent.boundary import classify

REPO = Path(__file__).resolve().parents[2]
ERROR_MODULES = (
    "agent.errors",
    "agent.access",
    "agent.database",
    "agent.identity",
    "agent.metadata",
    "agent.station_args",
    "agent.verification",
    "config.problems",
    "docking.errors",
    "hashing.errors",
    "ledger.errors",
    "ledger.export",
    "uploader.errors",
)
# Signals between a worker and its supervisor, never the end of a command.
INTERNAL_SIGNALS = {"ProbeStopped", "UploadStopped", "ClaimLost"}


def _error_classes() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for name in ERROR_MODULES:
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(value, Exception)
                and value.__module__ == name
                and value.__name__ not in INTERNAL_SIGNALS
            ):
                found.append(value)
    return found


@pytest.mark.parametrize("error", _error_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_error_of_every_room_is_in_the_one_map(error: type[BaseException]) -> None:
    exc = error.__new__(error)
    Exception.__init__(exc, "what went wrong; what to do")
    outcome = classify(exc)
    assert outcome.code != "internal", f"{error.__name__} would be an internal error"
    assert outcome.exit_code in (1, 2) and 400 <= outcome.http_status < 600


def test_a_bug_is_internal_and_os_and_database_errors_say_what_to_check() -> None:
    bug = classify(ZeroDivisionError("division by zero"))
    assert (bug.exit_code, bug.http_status, bug.code) == (1, 500, "internal")
    assert "EVIDOCK_DEBUG=1" in bug.message
    missing = classify(FileNotFoundError(2, "No such file or directory", "/x/y"))
    assert missing.message == "No such file or directory (/x/y): check the path and its permissions"
    locked = classify(sqlite3.OperationalError("database is locked"))
    assert locked.exit_code == 2 and locked.code == "station_database"


def test_no_command_module_catches_errors_for_itself() -> None:
    # The boundary is written once: the command modules hand every error to run_command.
    for name in ("cli.py", "ledger_cli.py"):
        tree = ast.parse((REPO / "agent" / name).read_text("utf-8"))
        handlers = [
            ast.unparse(node.type) if node.type else "bare"
            for node in ast.walk(tree)
            if isinstance(node, ast.ExceptHandler)
        ]
        broad = [h for h in handlers if h in ("bare", "Exception", "BaseException")]
        assert "USER_ERRORS" not in (REPO / "agent" / name).read_text("utf-8")
        assert len(broad) <= 1, (name, handlers)  # ingest's re-raise after signing
    assert boundary.run_command.__module__ == "agent.boundary"


def test_an_error_naming_a_hostile_file_is_printed_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hashing import SourceReadError

    def fails(args: object) -> int:
        raise SourceReadError("reading DCIM/\x1b[2Jevil\u202e.MP4 failed; dock it again")

    assert boundary.run_command("evidock ingest", fails, None) == 2  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err
    assert "DCIM/\\x1b[2Jevil\\u202e.MP4" in err
