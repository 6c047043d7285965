"""One rule set: a leaf that `verify` fails, `verify-package` fails too, naming the leaf.

Each bad leaf is written the way a faulty or dishonest station could write it (the chain,
the Merkle nodes and a checkpoint signed with the station key all consistent), so only
the rules can catch it; then the case that holds it is exported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ledger_fixtures import CASE, STATION, Station, StepClock, make_station

from agent.database import open_station_db, transaction
from ledger import LeafFormatError, Ledger, export_case, origin_for, verify_package
from ledger.anchor import make_checkpoint, stored_checkpoints
from ledger.leaf import encode_leaf, leaf_hash
from ledger.receipt import check_receipt, make_proof, verify_proof
from ledger.rules import LeafRules, station_of_origin
from ledger.tree import StoredTree

ACCESS = {"clip_id": "c1", "who": "a", "purpose": "p", "action": "view", "via": "cli"}


def raw_append(led: Ledger, kind: str, body: dict[str, Any], station: str = STATION) -> int:
    """Append a leaf without the append path's checks, lookup columns and nodes included."""
    with transaction(led.conn):
        index = led.size()
        prev = led.tree.node(0, index - 1).hex()
        data = encode_leaf(
            index=index,
            at="2026-11-22T01:00:00.000000Z",
            kind=kind,
            station=station,
            prev=prev,
            body=body,
        )
        led.conn.execute(
            "INSERT INTO ledger_leaves (idx, kind, data, clip_id) VALUES (?, ?, ?, ?)",
            (index, kind, data, body.get("clip_id")),
        )
        StoredTree(led.conn).extend(index, [leaf_hash(data)])
    return index


def _other_station(led: Ledger) -> None:
    # The reproduction of issue 13: a command that took the built-in default station id.
    Ledger(led.conn, "station-01", clock=StepClock()).append("clip.accessed", ACCESS)


BAD_LEAVES = [
    pytest.param(_other_station, "station 'station-01' is not 'station-07'", id="station"),
    pytest.param(
        lambda led: raw_append(led, "clip.accessed", {**ACCESS, "who": 5}),
        "clip.accessed body has values of wrong types: who is not a string",
        id="value-type",
    ),
    pytest.param(
        lambda led: raw_append(led, "clip.viewed", {"clip_id": "c1"}),
        "unknown kind 'clip.viewed'",
        id="unknown-kind",
    ),
    pytest.param(
        lambda led: raw_append(
            led, "clip.accessed", {k: v for k, v in ACCESS.items() if k != "via"}
        ),
        "clip.accessed body lacks ['via']",
        id="missing-key",
    ),
    pytest.param(
        lambda led: raw_append(
            led,
            "clip.uploaded",
            {
                "clip_id": "c1",
                "sha256": "ABC",
                "target": "central",
                "location": "x",
                "confirmed_size": -1,
                "confirmed_sha256": "ABC",
            },
        ),
        "clip.uploaded body has values of wrong types: sha256 is not 64 lowercase hex "
        "digits; confirmed_size is not a non-negative integer",
        id="hex-and-count",
    ),
]


def test_the_station_never_writes_a_leaf_its_verifier_rejects(tmp_path: Path) -> None:
    station: Station = make_station(tmp_path)
    led = station.ledger()
    size = led.size()
    with pytest.raises(LeafFormatError, match="who is not a string"):
        led.append("clip.accessed", {**ACCESS, "who": 5})
    assert led.size() == size
    led.conn.close()


@pytest.mark.parametrize(("write_bad_leaf", "expected"), BAD_LEAVES)
def test_both_verifiers_fail_the_same_leaf(
    tmp_path: Path, write_bad_leaf: Any, expected: str
) -> None:
    station: Station = make_station(tmp_path)
    led = station.ledger()
    write_bad_leaf(led)
    make_checkpoint(led, [station.key])
    led.conn.close()
    line = f"leaf 15: {expected}"
    station_report = station.verify(anchors=[], store=False)
    assert station_report.status == 1
    assert any(p.startswith(line) for p in station_report.problems), station_report.problems

    conn = open_station_db(station.db)
    export_case(
        Ledger(conn, STATION), station.store, station.keyring, CASE, tmp_path / "pkg",
        who="auditor", purpose="review",
    )  # fmt: skip
    conn.close()
    package = verify_package(tmp_path / "pkg", station.pub)
    assert package.status == 1
    assert any(p.startswith(line) for p in package.problems), package.problems


def test_a_receipt_is_held_to_the_same_rules(tmp_path: Path) -> None:
    station = make_station(tmp_path)
    led = station.ledger()
    _other_station(led)
    make_checkpoint(led, [station.key])
    proof = make_proof(led, 15, stored_checkpoints(led.conn)[-1], with_leaf=True)
    led.conn.close()
    verify_proof(proof.text(), [station.key.verifier])  # the proof alone holds...
    report = check_receipt(proof.text(), station.pub)
    assert not report.ok  # ...but the leaf breaks a rule
    assert report.problems == [
        "leaf 15: station 'station-01' is not 'station-07' "
        "(the station of the checkpoint's origin evidock.station/station-07)"
    ]


def test_rules_report_each_problem_once_and_say_where_the_station_came_from() -> None:
    seen: list[tuple[str, str]] = []
    rules = LeafRules(lambda category, line: seen.append((category, line)))
    good = encode_leaf(
        index=0, at="2026-11-22T01:00:00.000000Z", kind="clip.accessed", station="s-1",
        prev="0" * 64, body=ACCESS,
    )  # fmt: skip
    assert rules.check(0, good) == (_obj(good), True) and seen == []
    moved = encode_leaf(
        index=7, at="2026-11-22T01:00:00.000000Z", kind="clip.accessed", station="s-2",
        prev="0" * 64, body=ACCESS,
    )  # fmt: skip
    obj, sound = rules.check(1, moved)
    assert obj is not None and sound
    assert seen == [
        ("index", "leaf 1: says index 7: renumbered or moved"),
        ("station", "leaf 1: station 's-2' is not 's-1' (the station of leaf 0)"),
    ]
    assert rules.check(2, b"{not json") == (None, False)
    assert seen[-1][0] == "encoding" and seen[-1][1].startswith("leaf 2: bad encoding")


def _obj(data: bytes) -> dict[str, Any]:
    import json

    loaded: dict[str, Any] = json.loads(data)
    return loaded


def test_station_of_origin() -> None:
    assert station_of_origin(origin_for("bj-cy-02")) == "bj-cy-02"
    assert station_of_origin("evidock.station/") is None
    assert station_of_origin("sum.golang.org") is None
