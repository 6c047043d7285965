"""Cases, the upload queue and the ledger through the API on a real station
(records_station: five clips, three cases): each change one ledger leaf naming the token's
owner, as the CLI writes it; the agency's number rule is 422 with the expected form; an
unlink is a leaf and deletes no evidence; roles per route; ``evidock verify`` passes after."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from records_station import K1, K2, RecordsStation, build, open_cases
from records_station import remove as remove_station

from agent.api import create_app
from agent.station import Station
from agent.station_args import sign
from agent.tokens import TokenStore
from config import load_config
from ledger import Leaf

HOLDERS = {"o1": ("officer", "O1"), "clerk": ("clerk", "K9"), "auditor": ("auditor", "A1"),
           "admin": ("admin", "IT1")}  # fmt: skip


class Records:
    def __init__(self, made: RecordsStation, station: Station, tokens: dict[str, str]) -> None:
        self.made, self.station, self.tokens = made, station, tokens

    def leaves(self, kind: str) -> list[Leaf]:
        conn = self.station.connect()
        try:
            return self.station.ledger(conn).leaves_of_kind(kind)
        finally:
            conn.close()

    def size(self) -> int:
        conn = self.station.connect()
        try:
            return self.station.ledger(conn).size()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def records() -> Iterator[Records]:
    made = build(Path(tempfile.mkdtemp(prefix="evidock-api-records-")))
    open_cases(made)
    config = load_config(made.config)
    station = Station.open(config, made.data, config_file=made.config)
    store = TokenStore(station.conn)
    tokens = {name: store.create(role, owner)[1] for name, (role, owner) in HOLDERS.items()}
    yield Records(made, station, tokens)
    sign(station)  # the daemon signs on its timer: here, now
    station.close()
    made.verify()
    remove_station(made)


@pytest.fixture
def client(records: Records) -> Iterator[TestClient]:
    with TestClient(create_app(records.station), raise_server_exceptions=False) as made:
        yield made


def _as(records: Records, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {records.tokens[who]}"}


def _ok(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def _error(answer: Any, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["status"] == status, error
    return str(error["message"])


def test_cases_are_read_by_any_form_of_their_number(records: Records, client: TestClient) -> None:
    listed = _ok(client.get("/api/v1/cases", headers=_as(records, "clerk")))
    assert listed["count"] == 3 and {c["case_number"] for c in listed["cases"]} >= {K1, K2}
    for typed in (K1, "朝执罚[2026]1号", "朝执罚（2026）１号"):
        shown = _ok(client.get(f"/api/v1/cases/{quote(typed)}", headers=_as(records, "auditor")))
        assert shown["case_number"] == K1 and shown["case"]["subject"] == "张三"
    missing = client.get(
        f"/api/v1/cases/{quote('朝执罚〔2026〕99号')}", headers=_as(records, "clerk")
    )
    assert "no case" in _error(missing, 404, "not_found")
    _error(client.get("/api/v1/cases", headers=_as(records, "o1")), 403, "forbidden")
    _error(client.get("/api/v1/cases", headers=_as(records, "admin")), 403, "forbidden")


def test_a_case_is_opened_as_a_leaf_and_the_agencys_rule_is_422(
    records: Records, client: TestClient
) -> None:
    new = {"case_number": "朝执罚[2026]40号", "subject": "赵六", "category": "行政处罚",
           "unit": "朝阳分局", "starts": "2026-11-20T08:00:00+08:00"}  # fmt: skip
    made = _ok(client.post("/api/v1/cases", json=new, headers=_as(records, "clerk")), 201)
    assert made["case_number"] == "朝执罚〔2026〕40号" and made["opened_by"] == "K9"
    leaf = records.leaves("case.opened")[-1]
    assert leaf.body["case_number"] == made["case_number"] and leaf.body["by"] == "K9"
    before = records.size()
    again = client.post("/api/v1/cases", json=new, headers=_as(records, "clerk"))
    assert "exists already" in _error(again, 409, "case_exists")
    bad = client.post("/api/v1/cases", json={**new, "case_number": "ABC-1"},
                      headers=_as(records, "clerk"))  # fmt: skip
    assert "朝执罚〔2026〕12号" in _error(bad, 422, "bad_case_number")  # the expected form
    no_zone = client.post("/api/v1/cases", json={**new, "case_number": K1[:-2] + "41号",
                          "starts": "2026-11-20T08:00"}, headers=_as(records, "clerk"))  # fmt: skip
    assert "time zone" in _error(no_zone, 422, "bad_request")
    stray = client.post("/api/v1/cases", json={**new, "owner": "x"}, headers=_as(records, "clerk"))
    _error(stray, 422, "bad_request")
    refused = client.post("/api/v1/cases", json=new, headers=_as(records, "auditor"))
    _error(refused, 403, "forbidden")
    assert records.size() == before


def test_links_and_unlinks_are_leaves_and_delete_no_evidence(
    records: Records, client: TestClient
) -> None:
    clip, url = records.made.clips["b1"], f"/api/v1/cases/{quote(K2)}/links"
    body = {"clip_id": clip, "object_of_proof": "现场情况"}
    made = _ok(client.post(url, json=body, headers=_as(records, "clerk")))
    assert made["outcome"] == "linked" and made["leaf"] is not None
    leaf = records.leaves("case.linked")[-1]
    assert leaf.index == made["leaf"] and leaf.body["officer"] == "K9"
    assert leaf.body["object_of_proof"] == "现场情况"
    same = _ok(client.post(url, json=body, headers=_as(records, "clerk")))
    assert same["outcome"] == "already linked" and same["leaf"] is None
    # An officer tags their own session's footage, not another officer's.
    session_a = records.made.sessions["A"]
    own = _ok(client.post(url, json={"session_id": session_a}, headers=_as(records, "o1")))
    assert own["outcome"] == "linked"
    other = client.post(url, json={"clip_id": clip}, headers=_as(records, "o1"))
    _error(other, 404, "not_found")
    both = client.post(url, json={"clip_id": clip, "session_id": session_a},
                       headers=_as(records, "clerk"))  # fmt: skip
    _error(both, 422, "bad_request")
    bad_rule = client.post("/api/v1/cases/ABC-1/links", json=body, headers=_as(records, "clerk"))
    _error(bad_rule, 422, "bad_case_number")
    history = _ok(client.get(url, headers=_as(records, "auditor")))["links"]
    assert [h["action"] for h in history][-2:] == ["linked", "linked"]
    # The unlink: a leaf; the clip, its file and its earlier link leaf all stay.
    gone = client.delete(f"{url}/{clip}?reason=wrong%20case", headers=_as(records, "clerk"))
    assert _ok(gone)["outcome"] == "unlinked"
    unlinked = records.leaves("case.unlinked")[-1]
    assert unlinked.body["clip_id"] == clip and unlinked.body["reason"] == "wrong case"
    assert records.station.ledger().leaf(made["leaf"]).kind == "case.linked"
    with records.made.db() as db:
        assert db.execute("SELECT 1 FROM clips WHERE clip_id = ?", (clip,)).fetchone()
    shown = _ok(client.get(f"{url}/{clip}", headers=_as(records, "clerk")))
    assert [h["action"] for h in shown["links"]] == ["linked", "unlinked"]
    twice = client.delete(f"{url}/{clip}", headers=_as(records, "clerk"))
    assert "nothing to unlink" in _error(twice, 409, "not_linked")


def test_the_queue_is_listed_and_parked_jobs_retried_by_admins(
    records: Records, client: TestClient
) -> None:
    listed = _ok(client.get("/api/v1/queue", headers=_as(records, "admin")))
    assert listed["totals"]["jobs"] == len(listed["jobs"]) == listed["totals"]["queued"]
    assert {j["clip_id"] for j in listed["jobs"]} >= set(records.made.clips.values())
    with records.made.db() as db:  # as a delivery that could not reach the target leaves it
        db.execute(
            "UPDATE upload_jobs SET state = 'parked', failure = 'target-unavailable',"
            " last_error = 'unreachable' WHERE clip_id = ?",
            (records.made.clips["a1"],),
        )
    parked = _ok(client.get("/api/v1/queue?state=parked", headers=_as(records, "auditor")))
    assert [j["clip_id"] for j in parked["jobs"]] == [records.made.clips["a1"]]
    assert _ok(client.get("/api/v1/queue/retry", headers=_as(records, "admin")))["count"] == 1
    _error(client.post("/api/v1/queue/retry", headers=_as(records, "clerk")), 403, "forbidden")
    _error(client.get("/api/v1/queue", headers=_as(records, "o1")), 403, "forbidden")
    retried = _ok(client.post("/api/v1/queue/retry", headers=_as(records, "admin")))
    assert retried["retried"] == 1 and retried["totals"]["parked"] == 0


def test_checkpoints_the_access_log_and_a_verify_run(records: Records, client: TestClient) -> None:
    sign(records.station)
    found = _ok(client.get("/api/v1/ledger/checkpoints", headers=_as(records, "auditor")))
    assert found["checkpoints"] and found["unsigned_leaves"] == 0
    assert found["checkpoints"][0]["tree_size"] == found["leaves"] == records.size()
    clip = records.made.clips["a1"]
    for who, purpose in (("clerk", "first"), ("auditor", "second")):
        content = f"/api/v1/clips/{clip}/content?purpose={purpose}"
        assert client.get(content, headers=_as(records, who)).status_code == 200
    log = "/api/v1/ledger/access-log"
    every = _ok(client.get(log, headers=_as(records, "auditor")))
    assert [e["purpose"] for e in every["entries"][:2]] == ["second", "first"]
    mine = _ok(client.get(f"{log}?who=k9&clip={clip}", headers=_as(records, "admin")))
    assert [e["who"] for e in mine["entries"]] == ["K9"] and mine["entries"][0]["via"] == "api"
    later = _ok(client.get(f"{log}?from=2099-01-01", headers=_as(records, "auditor")))
    assert later["count"] == 0
    _error(client.get(f"{log}?from=yesterday", headers=_as(records, "auditor")), 422, "bad_request")
    _error(client.get(log, headers=_as(records, "clerk")), 403, "forbidden")
    assert _ok(client.get("/api/v1/ledger/verify", headers=_as(records, "auditor")))["last"] is None
    sign(records.station)
    ran = _ok(client.post("/api/v1/ledger/verify", headers=_as(records, "admin")))
    assert ran["by"] == "IT1" and ran["result"]["status"] == 0 and ran["result"]["ok"] is True
    last = _ok(client.get("/api/v1/ledger/verify", headers=_as(records, "auditor")))["last"]
    assert last == ran
    _error(client.post("/api/v1/ledger/verify", headers=_as(records, "o1")), 403, "forbidden")
