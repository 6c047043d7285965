"""The management API in process (FastAPI's TestClient on a real station: records_station's
five clips, real SQLite, real ledger): tokens and roles on every route, what each token
sees of the clips, the one error shape, the failed-authentication limit, the metrics."""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from records_station import K1, K3, RecordsStation, build, open_cases
from records_station import remove as remove_station

from agent.api import create_app
from agent.errors import CaseError
from agent.station import Station
from agent.tokens import TokenStore
from config import load_config

SENSITIVITY = (
    '[sensitivity]\nprivacy = ["role:chief"]\nsecret = ["role:chief"]\n'
    '[sensitivity.roles]\nchief = ["0001"]\n'
)
# Who holds a token in these tests: name -> (role, owner).
HOLDERS = {
    "o1": ("officer", "O1"),
    "o2": ("officer", "O2"),
    "clerk": ("clerk", "K9"),
    "auditor": ("auditor", "A1"),
    "chief": ("auditor", "0001"),
    "admin": ("admin", "IT1"),
    "revoked": ("auditor", "0001"),
}
NO_CLIP = "c" + "0" * 24


class Api:
    def __init__(self, records: RecordsStation, station: Station, tokens: dict[str, str]) -> None:
        self.records = records
        self.station = station
        self.tokens = tokens
        self.now = 1000.0

    def app(self) -> FastAPI:
        return create_app(self.station, clock=lambda: self.now)

    def clip(self, name: str) -> str:
        return self.records.clips[name]


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    records = build(Path(tempfile.mkdtemp(prefix="evidock-api-")))
    records.config.write_text(records.config.read_text("utf-8") + SENSITIVITY, "utf-8")
    open_cases(records)
    records.cli("link", "--case", K1, "--session", records.sessions["A"])  # a1, a2
    records.cli("link", "--case", K3, "--clip", records.clips["b2"])  # privacy
    records.cli("clip", "mark", records.clips["c1"], "--sensitivity", "secret", "--by", "0001",
                "--reason", "an informant is seen")  # fmt: skip
    config = load_config(records.config)
    station = Station.open(config, records.data, config_file=records.config)
    store = TokenStore(station.conn)
    tokens = {name: store.create(role, owner)[1] for name, (role, owner) in HOLDERS.items()}
    store.revoke(tokens["revoked"].split("_")[1])
    yield Api(records, station, tokens)
    station.close()
    remove_station(records)


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app(), raise_server_exceptions=False) as made:
        yield made


def _as(api: Api, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.tokens[who]}"}


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status and body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message and "Traceback" not in response.text
    return str(message)


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the OpenAPI document names, and the document itself."""
    document = app.openapi()["paths"]
    found = [(m.upper(), p) for p, ops in document.items() for m in ops]
    return [(m, p.replace("{clip_id}", NO_CLIP)) for m, p in [*found, ("GET", "/openapi.json")]]


def test_every_route_but_healthz_needs_a_valid_token(api: Api, client: TestClient) -> None:
    routes = _routes(client.app)  # type: ignore[arg-type]
    paths = {p for _, p in routes}
    assert {"/readyz", "/api/v1/status", "/metrics", "/api/v1/clips", "/openapi.json"} <= paths
    assert client.get("/healthz").json() == {"status": "ok"}
    for method, path in ((m, p) for m, p in routes if p != "/healthz"):
        for headers in ({}, {"Authorization": "Bearer evd_0123456789ab_" + "A" * 43},
                        {"Authorization": "Basic dXNlcjpwYXNz"}, _as(api, "revoked")):  # fmt: skip
            answer = client.request(method, path, headers=headers)
            message = _error(answer, 401, "unauthorized")
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "token" in message
        api.now += 1000  # a new window, so the limit does not answer 429 here


def test_a_role_a_route_is_not_for_gets_403(api: Api, client: TestClient) -> None:
    refused = [
        ("o1", "/api/v1/status"),
        ("o1", "/metrics"),
        ("clerk", "/metrics"),
        ("admin", "/api/v1/clips"),
        ("admin", f"/api/v1/clips/{api.clip('a1')}"),
    ]
    for who, path in refused:
        message = _error(client.get(path, headers=_as(api, who)), 403, "forbidden")
        assert HOLDERS[who][0] in message and "roles that may" in message
    for who in HOLDERS:
        if who != "revoked":
            assert client.get("/readyz", headers=_as(api, who)).status_code == 200
    assert client.get("/api/v1/status", headers=_as(api, "admin")).status_code == 200
    assert client.get("/metrics", headers=_as(api, "auditor")).status_code == 200
    document = client.get("/openapi.json", headers=_as(api, "o1")).json()
    assert "/api/v1/clips/{clip_id}" in document["paths"]


def _names(api: Api, client: TestClient, who: str, query: str = "") -> list[str]:
    answer = client.get(f"/api/v1/clips{query}", headers=_as(api, who))
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["count"] == len(found["clips"]) or "limit" in query
    return sorted(api.records.name_of(c["clip_id"]) for c in found["clips"])


def test_an_officer_sees_only_their_own_clips(api: Api, client: TestClient) -> None:
    assert _names(api, client, "o1") == ["a1", "a2"]
    assert _names(api, client, "o1", "?officer=O2") == []
    # b2 is privacy (case K3): O2 is not on the station's privacy list
    assert _names(api, client, "o2") == ["b1"]
    # another officer's clip is answered as one that does not exist (decided: 404)
    other = _error(client.get(f"/api/v1/clips/{api.clip('b1')}", headers=_as(api, "o1")),
                   404, "not_found")  # fmt: skip
    missing = _error(client.get(f"/api/v1/clips/{NO_CLIP}", headers=_as(api, "o1")),
                     404, "not_found")  # fmt: skip
    assert other.replace(api.clip("b1"), "X") == missing.replace(NO_CLIP, "X")
    own = client.get(f"/api/v1/clips/{api.clip('a1')}", headers=_as(api, "o1")).json()
    assert own["officer"] == "O1" and len(own["cases"]) == 1
    elements = own["elements"]
    assert set(elements) == {
        "case_number", "capture_time", "capture_place", "collector", "object_of_proof",
    }  # fmt: skip
    assert elements["collector"]["value"] == "O1"
    assert elements["capture_time"]["start"].startswith("2026-11-20T09:00:00")
    assert elements["case_number"]["value"] and elements["case_number"]["source"]
    assert own["metadata"]["sha256"] and own["metadata"]["size"] > 0


def test_privacy_and_secret_clips_only_for_who_the_config_allows(
    api: Api, client: TestClient
) -> None:
    # A1 (auditor) and K9 (clerk) are on no [sensitivity] list: b2 and c1 are hidden
    assert _names(api, client, "auditor") == ["a1", "a2", "b1"]
    assert _names(api, client, "clerk") == ["a1", "a2", "b1"]
    assert _names(api, client, "auditor", "?sensitivity=secret") == []
    _error(client.get(f"/api/v1/clips/{api.clip('c1')}", headers=_as(api, "auditor")),
           404, "not_found")  # fmt: skip
    # 0001 holds role chief, on both lists: sees every clip, whatever its API role
    assert _names(api, client, "chief") == ["a1", "a2", "b1", "b2", "c1"]
    secret = client.get(f"/api/v1/clips/{api.clip('c1')}", headers=_as(api, "chief")).json()
    assert secret["sensitivity"] == "secret"
    assert _names(api, client, "chief", "?sensitivity=privacy") == ["b2"]
    page = client.get("/api/v1/clips?limit=2&offset=1", headers=_as(api, "chief")).json()
    assert page["count"] == 5 and len(page["clips"]) == 2


def test_bad_query_parameters_are_422_in_the_error_shape(api: Api, client: TestClient) -> None:
    bad = {
        "?limit=abc": "limit",
        "?limit=0": "limit",
        "?integrity=bogus": "integrity",
        "?sensitivity=top": "sensitivity",
        "?from=yesterday": "from",
        "?near=39.9,116.4": "radius-m",
        "?near=north&radius_m=5": "near",
        "?radius_m=-1": "radius_m",
    }
    for query, word in bad.items():
        message = _error(client.get(f"/api/v1/clips{query}", headers=_as(api, "clerk")),
                         422, "bad_request")  # fmt: skip
        assert word in message, (query, message)
    message = _error(client.get("/api/v1/clips/not-a-clip", headers=_as(api, "clerk")),
                     422, "bad_request")  # fmt: skip
    assert "clip_id" in message
    _error(client.get("/api/v1/nothing", headers=_as(api, "clerk")), 404, "not_found")
    _error(client.delete("/api/v1/clips", headers=_as(api, "clerk")), 405, "method_not_allowed")


def test_repeated_bad_tokens_are_refused_with_429_and_logged(
    api: Api, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    api.now += 1000
    limit = api.station.config.api.auth_failures
    bad = {"Authorization": "Bearer evd_0123456789ab_" + "B" * 43}
    with caplog.at_level(logging.WARNING, logger="evidock"):
        for _ in range(limit):
            _error(client.get("/api/v1/status", headers=bad), 401, "unauthorized")
        answer = client.get("/api/v1/status", headers=bad)
        message = _error(answer, 429, "too_many_failures")
        assert "wait" in message and int(answer.headers["retry-after"]) >= 1
        # a valid token from that address waits too: the limit is per address
        _error(client.get("/api/v1/status", headers=_as(api, "admin")), 429, "too_many_failures")
    failed = [
        r.getMessage() for r in caplog.records if "failed authentication from" in r.getMessage()
    ]
    assert len(failed) == limit and "unknown token 0123456789ab" in failed[0]
    assert "B" * 43 not in caplog.text  # the secret is never logged
    assert any("too many failed authentications" in r.getMessage() for r in caplog.records)
    api.now += api.station.config.api.auth_window_seconds
    assert client.get("/api/v1/status", headers=_as(api, "admin")).status_code == 200


def test_errors_of_a_route_keep_the_shape_and_never_show_a_traceback(api: Api) -> None:
    app = api.app()

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret detail /var/lib/evidock")

    @app.get("/api/v1/refused")
    def refused() -> None:
        raise CaseError("no case 1: give an existing case number")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/v1/boom")
        message = _error(answer, 500, "internal")
        assert "secret detail" not in answer.text and "log" in message
        message = _error(client.get("/api/v1/refused"), 400, "bad_input")
        assert message == "no case 1: give an existing case number"


SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})?'
    r" (?P<value>-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?|NaN|[+-]Inf)$"
)


def parse_metrics(text: str) -> dict[str, list[tuple[str, float]]]:
    """Check the text exposition format line by line; name -> [(line, value)]."""
    assert text.endswith("\n")
    typed: dict[str, str] = {}
    found: dict[str, list[tuple[str, float]]] = {}
    for line in text.rstrip("\n").split("\n"):
        if line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4, line
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge") and name not in typed, line
            typed[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name = match["name"]
        assert name in typed, f"{name} has no # TYPE before it"
        if typed[name] == "counter":
            assert name.endswith("_total")
        found.setdefault(name, []).append((line, float(match["value"])))
    return found


def test_metrics_are_prometheus_text_with_the_named_series(api: Api, client: TestClient) -> None:
    answer = client.get("/metrics", headers=_as(api, "admin"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    series = parse_metrics(answer.text)
    for name in (
        "evidock_ingest_bytes_total",
        "evidock_sessions",
        "evidock_upload_queue_depth",
        "evidock_upload_queue_oldest_age_seconds",
        "evidock_errors_total",
        "evidock_disk_free_bytes",
        "evidock_ledger_leaves",
        "evidock_last_checkpoint_age_seconds",
        "evidock_last_anchor_age_seconds",
        "evidock_mqtt_connected",
    ):
        assert name in series, name
    conn = api.records.db()
    try:
        size = conn.execute("SELECT sum(size) FROM clips").fetchone()[0]
        leaves = conn.execute("SELECT count(*) FROM ledger_leaves").fetchone()[0]
        queued = conn.execute("SELECT count(*) FROM upload_jobs WHERE state = 'queued'").fetchone()
    finally:
        conn.close()
    assert series["evidock_ingest_bytes_total"][0][1] == size
    assert series["evidock_ledger_leaves"][0][1] == leaves
    assert series["evidock_upload_queue_depth"][0][1] == queued[0] > 0
    closed = [v for line, v in series["evidock_sessions"] if 'state="closed"' in line]
    assert closed == [3]
    kinds = {line.split('"')[1] for line, _ in series["evidock_errors_total"]}
    assert {"session_incomplete", "access_refused", "api_auth_failed"} <= kinds
    assert series["evidock_mqtt_connected"][0][1] == 0


def test_the_api_changed_no_evidence(api: Api) -> None:
    api.records.verify()
