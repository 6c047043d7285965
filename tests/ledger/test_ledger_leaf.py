"""Canonical leaf bytes: one encoding per event, anything else refused."""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.database import open_station_db, transaction
from ledger import LeafFormatError, Ledger
from ledger.errors import LedgerStateError
from ledger.leaf import KINDS, ZERO_HASH_HEX, encode_leaf, leaf_hash, parse_leaf

BASE: dict[str, Any] = {
    "at": "2026-11-22T08:30:15.123456Z",
    "body": {"version": "0.1", "config_sha256": "ab"},
    "index": 0,
    "kind": "station.booted",
    "prev": ZERO_HASH_HEX,
    "station": "station-01",
}


def canonical(**changes: Any) -> bytes:
    return encode_leaf(**{**BASE, **changes})


def raw(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_the_seam_example_round_trips_and_hashes_with_the_leaf_prefix() -> None:
    data = canonical()
    assert data.startswith(b'{"at":"2026-11-22T08:30:15.123456Z","body":{"config_sha256"')
    assert data.endswith(b'"station":"station-01","v":1}')
    assert leaf_hash(data) == hashlib.sha256(b"\x00" + data).digest()
    leaf = parse_leaf(data)
    assert (leaf.index, leaf.kind, leaf.data) == (0, "station.booted", data)


def test_non_ascii_is_kept_as_utf8() -> None:
    data = canonical(body={"version": "沪公", "config_sha256": "x"})
    assert "沪公".encode() in data
    escaped = data.replace("沪公".encode(), b"\\u6caa\\u516c")
    with pytest.raises(LeafFormatError, match="canonical"):
        parse_leaf(escaped)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (lambda d: d.replace(b'","', b'", "', 1), "canonical"),
        (lambda d: d + b"\n", "follow|canonical"),
        (lambda d: b" " + d, "JSON"),
        (lambda d: d.replace(b'"index":0', b'"index":0.0'), "float"),
        (lambda d: d.replace(b'"index":0', b'"index":1e0'), "float"),
        (lambda d: d.replace(b'"index":0', b'"index":NaN'), "NaN"),
        (lambda d: d.replace(b'"index":0', b'"index":"0"'), "index"),
        (lambda d: d.replace(b'"index":0', b'"index":-1'), "index"),
        (lambda d: d.replace(b'"v":1', b'"v":true'), "version"),
        (lambda d: d.replace(b'"v":1', b'"v":2'), "version"),
        (lambda d: d.replace(b'"0.1"', b'"\\ud800"'), "surrogate"),
        (lambda d: d.replace(b'"0.1"', b'"\xed\xa0\x80"'), "UTF-8"),
        (lambda d: d.replace(b'"0.1"', b'"\xff"'), "UTF-8"),
        (lambda d: d.replace(b'"at"', b'"at":"x","at"', 1), "canonical"),
        (lambda d: d.replace(b',"v":1}', b',"v":1,"z":1}'), "unknown"),
        (lambda d: d.replace(b'"station":"station-01",', b""), "missing"),
        (
            lambda d: d.replace(b'"body":{', b'"body":[{').replace(b'},"index"', b'}],"index"'),
            "body",
        ),
        (lambda d: d.replace(b'"prev":"0', b'"prev":"A'), "prev"),
        (lambda d: d.replace(b"08:30:15.123456Z", b"08:30:15Z"), "UTC"),
        (lambda d: b"[" + d + b"]", "object"),
    ],
)
def test_strict_parsing_refuses(bad: Any, reason: str) -> None:
    data = bad(canonical())
    assert data != canonical()
    with pytest.raises(LeafFormatError, match=reason):
        parse_leaf(data)


def test_unsorted_keys_are_refused() -> None:
    obj = json.loads(canonical())
    reordered = json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":")).encode()
    with pytest.raises(LeafFormatError, match="canonical"):
        parse_leaf(reordered)


def test_encoding_refuses_floats_and_lone_surrogates() -> None:
    with pytest.raises(LeafFormatError):
        canonical(body={"version": 1.5, "config_sha256": "x"})
    with pytest.raises(LeafFormatError):
        canonical(body={"version": "\ud800", "config_sha256": "x"})
    with pytest.raises(LeafFormatError):
        canonical(body={"version": b"bytes", "config_sha256": "x"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(st.text(), json_values, max_size=6), index=st.integers(0, 2**40))
def test_any_json_body_round_trips_to_the_same_bytes(body: dict[str, Any], index: int) -> None:
    body = {**body, "version": "x", "config_sha256": "y"}
    try:
        data = canonical(body=body, index=index)
    except LeafFormatError:
        # Only lone surrogates in strings cannot be UTF-8.
        assert "\\ud" in json.dumps(body).lower()
        return
    leaf = parse_leaf(data)
    assert leaf.index == index
    assert (
        encode_leaf(
            index=leaf.index,
            at=leaf.at,
            kind=leaf.kind,
            station=leaf.station,
            prev=leaf.prev,
            body=leaf.body,
        )
        == data
    )


def test_every_kind_of_the_seam_table_is_known_with_its_keys() -> None:
    assert len(KINDS) == 23
    assert {"clip_id", "sha256", "windows", "window_size", "media"} <= KINDS["clip.ingested"]
    assert KINDS["case.linked"] == KINDS["case.unlinked"]


def test_append_checks_kind_and_required_keys(tmp_path: Path) -> None:
    led = Ledger(open_station_db(tmp_path / "station.db"), "station-01")
    with pytest.raises(LeafFormatError, match="unknown leaf kind"):
        led.append("clip.deleted", {})
    with pytest.raises(LeafFormatError, match="config_sha256"):
        led.append("station.booted", {"version": "1"})
    assert led.size() == 0


def test_append_joins_the_callers_transaction_and_rolls_back_with_it(tmp_path: Path) -> None:
    conn = open_station_db(tmp_path / "station.db")
    conn.execute("CREATE TABLE test_rows (clip_id TEXT PRIMARY KEY)")
    led = Ledger(conn, "station-01")
    with pytest.raises(RuntimeError), transaction(conn):
        conn.execute("INSERT INTO test_rows VALUES ('c1')")
        led.append("station.booted", {"version": "1", "config_sha256": "x"})
        raise RuntimeError("ingest failed after the leaf")
    assert led.size() == 0
    assert conn.execute("SELECT count(*) FROM test_rows").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM ledger_nodes").fetchone()[0] == 0
    with transaction(conn):
        conn.execute("INSERT INTO test_rows VALUES ('c1')")
        leaf = led.append("station.booted", {"version": "1", "config_sha256": "x"})
    assert (leaf.index, led.size()) == (0, 1)


def test_append_many_is_all_or_nothing_and_chains(tmp_path: Path) -> None:
    led = Ledger(open_station_db(tmp_path / "station.db"), "station-01")
    boot = ("station.booted", {"version": "1", "config_sha256": "x"})
    with pytest.raises(LeafFormatError):
        led.append_many([boot, boot, ("station.booted", {"version": 1.5, "config_sha256": "x"})])
    assert led.size() == 0
    leaves = led.append_many([boot] * 5)
    leaves.append(led.append(*boot))
    assert [leaf.index for leaf in led.leaves()] == list(range(6))
    assert leaves[0].prev == ZERO_HASH_HEX
    assert all(b.prev == a.hash_hex for a, b in itertools.pairwise(leaves))
    assert [leaf.index for leaf in led.leaves(2, 4)] == [2, 3]
    assert led.leaf(5).data == leaves[5].data
    assert [
        leaf.index for leaf in led.leaves_of_kind("station.booted", newest_first=True, limit=2)
    ] == [5, 4]
    with pytest.raises(LedgerStateError, match="no leaf 9"):
        led.leaf(9)


def test_the_database_refuses_edits_of_leaves(tmp_path: Path) -> None:
    conn = open_station_db(tmp_path / "station.db")
    Ledger(conn, "station-01").append("station.booted", {"version": "1", "config_sha256": "x"})
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE ledger_leaves SET kind = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM ledger_leaves")
