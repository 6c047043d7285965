"""Checkpoints signed from several threads at once (sessions ending together, the very
first ones racing to make the station key) never fail, sign with one key, and leave the
newest signed note beside the key."""

from __future__ import annotations

import threading
from pathlib import Path

from agent.anchoring import KEYS_DIR, LAST_SIGNED, publish_checkpoint
from agent.delivery import delivery_target
from agent.station import Station, embedded_config
from agent.verification import verify_data_dir
from ledger.anchor import latest_checkpoint


def test_concurrent_signers_keep_the_newest_note(tmp_path: Path) -> None:
    station = Station.open(embedded_config(tmp_path / "data"))
    target = delivery_target(station)
    errors: list[BaseException] = []

    def session_end(n: int) -> None:
        conn = station.connect()
        try:
            for i in range(10):
                station.ledger(conn).append(
                    "clock.adjusted", {"from": f"t{n}-{i}", "to": "x", "source": "test"}
                )
                publish_checkpoint(station, conn, target)
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=session_end, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    newest = latest_checkpoint(station.conn)
    assert newest is not None and newest.size == 40
    note = (station.data_dir / KEYS_DIR / LAST_SIGNED).read_text("utf-8")
    assert note == newest.note
    assert not list((station.data_dir / KEYS_DIR).glob("*.tmp"))
    station.close()
    # One key made, however many first checkpoints raced: every note verifies with it.
    assert verify_data_dir(tmp_path / "data").ok
