"""The ledger writes through config.common's primitives: the keys folder's sweep knows
their temporary names, and a naive clock is still the ledger's own error."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from agent.database import open_station_db
from ledger.errors import LedgerStateError
from ledger.keys import sweep_tmp
from ledger.log import Ledger

REPO = Path(__file__).resolve().parents[2]

# A writer killed after its temporary file was written and before the rename.
KILLED_BEFORE_RENAME = """
import os, sys
from pathlib import Path
from config.common import write_atomic
os.replace = lambda *args: os._exit(9)
write_atomic(Path(sys.argv[1]), b"half a key", 0o600)
"""


def test_sweep_removes_what_a_killed_write_atomic_left_and_nothing_else(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    child = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_RENAME, str(keys / "station.ed25519")],
        cwd=REPO,
        timeout=60,
    )
    assert child.returncode == 9
    (left,) = keys.glob("station.ed25519.*.tmp")
    mine = keys / f"last-checkpoint.{os.getpid()}.1.2.tmp"  # a live writer's
    mine.write_bytes(b"")
    other = keys / "notes.tmp"
    other.write_bytes(b"not a writer's")

    assert sweep_tmp(keys) == [left]
    assert sorted(p.name for p in keys.iterdir()) == sorted([mine.name, other.name])


def test_a_naive_ledger_clock_is_refused_with_the_ledgers_error(tmp_path: Path) -> None:
    conn = open_station_db(tmp_path / "station.db")
    ledger = Ledger(conn, "station-01", clock=datetime.now)
    with pytest.raises(LedgerStateError, match="naive datetime"):
        ledger.append("station.booted", {"version": "1", "config_sha256": "0" * 64})
    assert ledger.size() == 0 and not conn.in_transaction
    conn.close()
