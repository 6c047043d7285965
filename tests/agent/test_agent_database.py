"""The station database opened by several processes at once, as at a station's first start
(the daemon and an IT command started together)."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agent.database import ROOM_MIGRATIONS, DatabaseError, open_station_db


def _open(path: str, start: Any, out: Any) -> None:
    start.wait(10)
    try:
        open_station_db(Path(path)).close()
        out.put("ok")
    except Exception as exc:  # reported to the test, which names it
        out.put(f"{type(exc).__name__}: {exc}")


def test_concurrent_first_opens_all_succeed_and_migrate_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    failures: list[str] = []
    for run in range(8):
        db = tmp_path / f"run{run}" / "station.db"
        db.parent.mkdir()
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(str(db), start, out)) for _ in range(6)]
        for proc in procs:
            proc.start()
        start.set()
        for proc in procs:
            proc.join(60)
        results = [out.get(timeout=5) for _ in procs]
        failures += [r for r in results if r != "ok"]
        conn = sqlite3.connect(db)
        rows = conn.execute("SELECT room, count(*) FROM schema_migrations GROUP BY room")
        counts = dict(rows.fetchall())
        conn.close()
        assert counts == {room: len(scripts) for room, scripts in ROOM_MIGRATIONS}
    assert failures == []


def test_a_newer_schema_is_refused_with_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "station.db"
    open_station_db(db).close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_migrations (room, version) VALUES ('ledger', 999)")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseError, match="upgrade evidock"):
        open_station_db(db)
