"""The API's sessions: ``GET /api/v1/sessions`` on a real station (records_station's three
sessions; officers see their own), and the Server-Sent-Events stream served by a real
uvicorn while a real ingest runs on a thread: it reports the session's progress, file by
file, and its end."""

from __future__ import annotations

import http.client
import json
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from records_station import RecordsStation, build
from records_station import remove as remove_station

from agent.api import ApiServer, create_app
from agent.ingest import IngestSession
from agent.station import Station, embedded_config
from agent.tokens import TokenStore
from config import load_config
from docking.simulated import generate_volume


@pytest.fixture(scope="module")
def records() -> Iterator[tuple[RecordsStation, Station, dict[str, str]]]:
    made = build(Path(tempfile.mkdtemp(prefix="evidock-api-sessions-")))
    config = load_config(made.config)
    station = Station.open(config, made.data, config_file=made.config)
    store = TokenStore(station.conn)
    holders = {"o1": ("officer", "O1"), "clerk": ("clerk", "kiosk-1"), "admin": ("admin", "IT")}
    tokens = {name: store.create(role, owner)[1] for name, (role, owner) in holders.items()}
    yield made, station, tokens
    station.close()
    remove_station(made)


def _get(client: TestClient, token: str, path: str) -> Any:
    answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_sessions_list_each_session_and_officers_see_their_own(
    records: tuple[RecordsStation, Station, dict[str, str]],
) -> None:
    made, station, tokens = records
    with TestClient(create_app(station), raise_server_exceptions=False) as client:
        assert client.get("/api/v1/sessions").status_code == 401
        everything = _get(client, tokens["clerk"], "/api/v1/sessions")
        assert {s["session_id"] for s in everything["sessions"]} == set(made.sessions.values())
        assert everything["count"] == 3
        first = next(s for s in everything["sessions"] if s["session_id"] == made.sessions["A"])
        assert first["officer"] == "O1" and first["recorder"] == "RA"
        assert first["files_done"] == first["files"] >= 2  # its two clips, and any other file
        assert first["bytes_done"] == first["bytes_total"] > 0
        # A one-shot ingest leaves the session verified: not yet safe by the default
        # policy (after central storage confirmed it), so not safe to take.
        assert first["phase"] == "verified" and first["safe_to_take"] is False
        assert _get(client, tokens["admin"], "/api/v1/sessions")["count"] == 3
        own = _get(client, tokens["o1"], "/api/v1/sessions")
        assert [s["session_id"] for s in own["sessions"]] == [made.sessions["A"]]
        assert all(s["session"]["officer"] == "O1" for s in own["slots"])
        assert _get(client, tokens["clerk"], "/api/v1/sessions?active=true")["count"] == 0
        limited = _get(client, tokens["clerk"], "/api/v1/sessions?limit=1")
        assert limited["count"] == 3 and len(limited["sessions"]) == 1
        bad = client.get(
            "/api/v1/sessions?limit=0", headers={"Authorization": f"Bearer {tokens['clerk']}"}
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_request"


def _events(response: http.client.HTTPResponse) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) of each event the stream sends; comments skipped."""
    kind, data = "", ""
    while True:
        line = response.readline().decode("utf-8")
        if not line:
            return
        line = line.rstrip("\n")
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif line == "" and kind:
            yield kind, json.loads(data)
            kind, data = "", ""


def test_the_event_stream_reports_a_live_ingest_file_by_file_and_its_end(
    tmp_path: Path,
) -> None:
    config = embedded_config(tmp_path / "d", api={"enabled": True, "port": 0})
    station = Station.open(config)
    _, token = TokenStore(station.conn).create("clerk", "kiosk-1")
    volume = tmp_path / "mount" / "R1"
    generate_volume(volume, serial="SSE0001", clips=3, seconds=1, officer="O7")
    # The ingest waits after each file until the stream has shown it: progress is seen.
    shown = threading.Semaphore(0)

    def wait_until_shown() -> None:
        shown.acquire(timeout=60)

    ingest = IngestSession(station, volume, slot="3", on_file=wait_until_shown)
    server = ApiServer(station).start()
    worker = threading.Thread(target=ingest.run, name="test-ingest")
    seen: list[dict[str, Any]] = []
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        conn.request("GET", "/api/v1/sessions/events", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        worker.start()
        for kind, session in _events(response):
            assert kind == "session"
            seen.append(session)
            if session["state"] == "open" and session["files_done"] > 0:
                shown.release()
            if session["state"] != "open":
                break
        conn.close()
    finally:
        for _ in range(3):
            shown.release()  # never leave the ingest waiting, whatever failed
        worker.join(60)
        server.stop()
        station.close()
    last = seen[-1]
    assert last["state"] == "closed" and last["phase"] == "verified", last
    assert last["files_done"] == last["files"] >= 3 and last["slot"] == "3"
    assert last["officer"] == "O7" and last["recorder"] == "SSE0001"
    assert last["safe_to_take"] is False  # verified; delivery has not confirmed it yet
    # Every file's progress was reported while the session was open, in order.
    progress = [s["files_done"] for s in seen if s["state"] == "open" and s["files_done"]]
    assert progress == list(range(1, last["files"] + 1)), progress


def test_the_server_stops_while_a_stream_is_open(tmp_path: Path) -> None:
    """A kiosk left listening must not hold the daemon's stop: the stream ends first."""
    config = embedded_config(tmp_path / "d", api={"enabled": True, "port": 0})
    station = Station.open(config)
    _, token = TokenStore(station.conn).create("clerk", "kiosk-1")
    server = ApiServer(station).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        conn.request("GET", "/api/v1/sessions/events", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        assert response.status == 200
        server.stop()
        assert server.thread is not None and not server.thread.is_alive()
        assert response.read() is not None  # the stream was ended, not left hanging
        conn.close()
    finally:
        server.stop()
        station.close()
