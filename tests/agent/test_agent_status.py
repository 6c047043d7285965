"""`evidock status [--json]` on a real station, and the API's /api/v1/status agreeing with
it; the broker asked over a real socket (closed, then listening on loopback)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from station_cli import leaf_count, run_cli

from agent.api import create_app
from agent.station import Station
from agent.tokens import TokenStore
from config import load_config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Made:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "d"
        self.config = root / "station.toml"
        self.port = port


@pytest.fixture
def made(tmp_path: Path, recorder: Path) -> Iterator[Made]:
    found = Made(tmp_path, _free_port())
    found.config.write_text(
        f'[station]\nid = "status-01"\n[paths]\ndata_dir = "{found.data}"\n'
        f'[docking]\nmount_root = "{tmp_path / "mount"}"\n'
        '[docking.slots]\n"1-1.1" = 1\n"1-1.2" = 2\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "central"}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {found.port}\n',
        "utf-8",
    )
    run_cli("ingest", recorder, "--config", found.config, check=0)
    yield found


def _status(made: Made, *extra: str, check: int) -> dict[str, Any]:
    proc = run_cli("status", "--config", made.config, "--json", *extra, check=check)
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def _stable(status: dict[str, Any]) -> dict[str, Any]:
    """The status without what moves between two calls (now, ages, free bytes)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: strip(v)
                for k, v in value.items()
                if k not in ("at", "free_bytes", "free_percent") and not k.endswith("age_seconds")
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return dict(strip(status))


def test_status_says_what_the_station_holds(made: Made) -> None:
    leaves = leaf_count(made.data)
    status = _status(made, check=1)  # the broker does not answer: a problem, exit 1
    assert status["station"]["id"] == "status-01" and status["health"] == "degraded"
    assert [s["slot"] for s in status["slots"]] == ["1", "2"]
    assert all(s["state"] == "empty" for s in status["slots"])
    assert status["sessions"]["by_state"] == {"closed": 1} and status["sessions"]["active"] == []
    queue = status["queue"]
    assert queue["depth"] > 0 and queue["parked"] == 0 and queue["oldest_age_seconds"] >= 0
    assert status["ledger"]["leaves"] == leaves
    assert status["checkpoint"]["tree_size"] == leaves
    assert status["checkpoint"]["unsigned_leaves"] == 0
    assert status["anchor"]["name"] == f"checkpoint-{leaves:012d}.anchor"
    assert status["anchor"]["age_seconds"] >= 0
    assert status["disk"]["free_bytes"] > 0
    broker = status["broker"]
    assert broker["configured"] and broker["reachable"] is False and broker["problem"]
    assert any(p.startswith("broker not reachable") for p in status["problems"])
    assert status["bucket"] == {
        "target": "folder", "configured": False, "reachable": True, "problem": None,
    }  # fmt: skip
    assert _status(made, "--no-probe", check=0)["broker"]["reachable"] is None
    text = run_cli("status", "--config", made.config, check=1).stdout
    assert "status-01" in text and "slot 1: empty" in text and "broker: NOT reachable" in text
    assert leaf_count(made.data) == leaves


def test_a_broker_that_listens_is_reachable(made: Made) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", made.port))
        listener.listen(4)
        status = _status(made, check=0)
    assert status["broker"]["reachable"] is True and status["health"] == "ok"


def test_the_cli_and_the_api_give_the_same_status(made: Made) -> None:
    station = Station.open(load_config(made.config), config_file=made.config)
    try:
        _, token = TokenStore(station.conn).create("admin", "IT1")
        with TestClient(create_app(station)) as client:
            answer = client.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        cli = _status(made, check=1)
    finally:
        station.close()
    assert answer.status_code == 200
    api = answer.json()
    assert _stable(api) == _stable(cli)
    assert api["ledger"]["leaves"] > 0 and api["broker"]["reachable"] is False
