"""The footage through the API on a real station (records_station's five clips): a download
and byte ranges (206, Content-Range; 416 for a range that cannot be served), each a
``clip.accessed`` leaf naming the token's owner, via api, committed before the first byte
(read over a real uvicorn); a purpose is required; a sensitivity the owner is not listed
for is 403 and an ``access.refused`` leaf; another officer's clip is 404."""

from __future__ import annotations

import hashlib
import http.client
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from records_station import K3, RecordsStation, build, open_cases
from records_station import remove as remove_station

from agent.api import ApiServer, create_app
from agent.station import Station
from agent.station_args import sign
from agent.tokens import TokenStore
from config import load_config
from ledger import Leaf

SENSITIVITY = '[api]\nport = 0\n[sensitivity]\nprivacy = ["0001"]\nsecret = ["0001"]\n'
HOLDERS = {"o1": ("officer", "O1"), "o2": ("officer", "O2"), "auditor": ("auditor", "A1"),
           "chief": ("auditor", "0001"), "admin": ("admin", "IT1")}  # fmt: skip


class Footage:
    def __init__(self, records: RecordsStation, station: Station, tokens: dict[str, str]):
        self.records, self.station, self.tokens = records, station, tokens

    def url(self, name: str, purpose: str | None = "review") -> str:
        query = "" if purpose is None else f"?purpose={purpose}"
        return f"/api/v1/clips/{self.records.clips[name]}/content{query}"

    def stored(self, name: str) -> bytes:
        row = (
            self.db()
            .execute("SELECT sha256 FROM clips WHERE clip_id = ?", (self.records.clips[name],))
            .fetchone()
        )
        return self.station.store.path_for(str(row[0])).read_bytes()

    def db(self) -> sqlite3.Connection:
        return self.records.db()

    def leaves(self, kind: str) -> list[Leaf]:
        conn = self.station.connect()
        try:
            return self.station.ledger(conn).leaves_of_kind(kind)
        finally:
            conn.close()


@pytest.fixture(scope="module")
def footage() -> Iterator[Footage]:
    records = build(Path(tempfile.mkdtemp(prefix="evidock-api-footage-")))
    records.config.write_text(records.config.read_text("utf-8") + SENSITIVITY, "utf-8")
    open_cases(records)
    records.cli("link", "--case", K3, "--clip", records.clips["b2"])  # privacy
    config = load_config(records.config)
    station = Station.open(config, records.data, config_file=records.config)
    store = TokenStore(station.conn)
    tokens = {name: store.create(role, owner)[1] for name, (role, owner) in HOLDERS.items()}
    yield Footage(records, station, tokens)
    sign(station)  # the daemon signs on its timer: here, now
    station.close()
    records.verify()
    remove_station(records)


@pytest.fixture
def client(footage: Footage) -> Iterator[TestClient]:
    with TestClient(create_app(footage.station), raise_server_exceptions=False) as made:
        yield made


def _as(footage: Footage, who: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {footage.tokens[who]}", **extra}


def _error(answer: Any, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code, answer.text
    return str(answer.json()["error"]["message"])


def test_a_download_is_the_clip_and_its_access_leaf_names_the_owner(
    footage: Footage, client: TestClient
) -> None:
    before = len(footage.leaves("clip.accessed"))
    answer = client.get(footage.url("a1", "case%20review"), headers=_as(footage, "o1"))
    assert answer.status_code == 200, answer.text
    body = footage.stored("a1")
    assert answer.content == body and answer.headers["content-length"] == str(len(body))
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.headers["etag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    leaves = footage.leaves("clip.accessed")
    assert len(leaves) == before + 1
    leaf = leaves[-1]
    assert leaf.index == int(answer.headers["x-evidock-access-leaf"])
    assert leaf.body == {"clip_id": footage.records.clips["a1"], "who": "O1",
                         "purpose": "case review", "action": "download", "via": "api"}  # fmt: skip


def test_ranges_are_206_with_content_range_and_a_bad_one_is_416(
    footage: Footage, client: TestClient
) -> None:
    body, url = footage.stored("b1"), footage.url("b1")
    size = len(body)
    for asked, first, last in (("bytes=0-99", 0, 99), ("bytes=100-", 100, size - 1),
                               ("bytes=-50", size - 50, size - 1),
                               (f"bytes=10-{size + 500}", 10, size - 1)):  # fmt: skip
        answer = client.get(url, headers=_as(footage, "auditor", Range=asked))
        assert answer.status_code == 206, (asked, answer.text)
        assert answer.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert answer.content == body[first : last + 1]
        assert footage.leaves("clip.accessed")[-1].body["action"] == "stream"
    before = len(footage.leaves("clip.accessed"))
    for bad in (f"bytes={size}-", "bytes=9-3", "bytes=0-1,5-9", "items=0-9", "bytes=-0", "bytes=-"):
        answer = client.get(url, headers=_as(footage, "auditor", Range=bad))
        assert "range" in _error(answer, 416, "range_not_satisfiable").lower()
        assert answer.headers["content-range"] == f"bytes */{size}"
    assert len(footage.leaves("clip.accessed")) == before  # nothing was read: no access


def test_a_purpose_is_required_and_hidden_clips_stay_hidden(
    footage: Footage, client: TestClient
) -> None:
    before = footage.station.ledger().size()
    for purpose in (None, "", "%20%20"):
        answer = client.get(footage.url("a1", purpose), headers=_as(footage, "o1"))
        assert "purpose" in _error(answer, 422, "bad_request")
    _error(client.get(footage.url("b1"), headers=_as(footage, "o1")), 404, "not_found")
    missing = f"/api/v1/clips/c{'0' * 24}/content?purpose=x"
    _error(client.get(missing, headers=_as(footage, "auditor")), 404, "not_found")
    message = _error(client.get(footage.url("a1"), headers=_as(footage, "admin")), 403, "forbidden")
    assert "admin" in message
    _error(client.get(footage.url("a1")), 401, "unauthorized")
    assert footage.station.ledger().size() == before


def test_a_sensitivity_the_owner_is_not_listed_for_is_403_and_on_record(
    footage: Footage, client: TestClient
) -> None:
    accessed = len(footage.leaves("clip.accessed"))
    answer = client.get(footage.url("b2", "curious"), headers=_as(footage, "auditor"))
    message = _error(answer, 403, "access_refused")
    assert "privacy" in message and "A1" in message
    refused = footage.leaves("access.refused")[-1]
    assert refused.body["who"] == "A1" and refused.body["via"] == "api"
    assert refused.body["clip_id"] == footage.records.clips["b2"]
    assert refused.body["purpose"] == "curious"
    assert len(footage.leaves("clip.accessed")) == accessed
    allowed = client.get(footage.url("b2"), headers=_as(footage, "chief"))
    assert allowed.status_code == 200 and allowed.content == footage.stored("b2")


def test_the_access_leaf_is_committed_when_the_first_byte_arrives(footage: Footage) -> None:
    server = ApiServer(footage.station).start()
    try:
        before = len(footage.leaves("clip.accessed"))
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", footage.url("c1", "first-byte"), headers=_as(footage, "auditor"))
        response = conn.getresponse()
        assert response.status == 200
        first = response.read(1)
        # Read by another connection, as anyone auditing the station would.
        leaves = footage.leaves("clip.accessed")
        assert len(leaves) == before + 1 and first == footage.stored("c1")[:1]
        assert leaves[-1].body["purpose"] == "first-byte" and leaves[-1].body["who"] == "A1"
        rest = response.read()
        assert first + rest == footage.stored("c1")
        conn.close()
    finally:
        server.stop()
