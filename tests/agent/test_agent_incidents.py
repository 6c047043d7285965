"""Incident feeds through the real CLI on a station with footage of known times
(records_station): exact overlap, slack, two cases overlapping one clip (put up for
review, never guessed), an officer with no incident, malformed lines (reported with their
line numbers, the rest imported), a person's unlink respected, and the recorder's
important marks on the review list. `evidock verify` passes after every command."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from records_station import K1, K2, K3, RecordsStation, build, write_feed
from records_station import remove as remove_station
from station_cli import ingest_json, leaf_count, run_cli

from docking.simulated import generate_volume

FEED = [
    # line 2: exactly a1's window (09:00:00-09:01:00): linked even with no slack
    f"{K1},O1,2026-11-20T09:00:00+08:00,2026-11-20T09:01:00+08:00,张三,行政处罚,朝阳分局",
    # line 3: starts 10 s after b1 ends (09:01:30): close without slack, a match with it
    f"{K1},O2,2026-11-20T09:01:40+08:00,2026-11-20T09:03:00+08:00,张三,行政处罚,朝阳分局",
    # lines 4 and 5: two cases overlap b2 (10:00:00-10:00:30 on the 21st)
    f"{K2},O2,2026-11-21T10:00:10+08:00,2026-11-21T10:00:20+08:00,李四,行政处罚,朝阳分局",
    f"{K3},O2,2026-11-21T10:00:00+08:00,2026-11-21T10:01:00+08:00,王五,刑事,三里屯派出所",
    # line 6: a field short; line 7: a time with no offset
    f"{K1},O1,2026-11-20T09:00:00+08:00",
    f"{K1},O1,2026-11-20T09:00:00,2026-11-20T09:01:00+08:00,张三,行政处罚,朝阳分局",
]


def _links(data: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(data / "station.db")
    try:
        rows = conn.execute(
            "SELECT kind, data FROM ledger_leaves WHERE kind LIKE 'case.%linked' ORDER BY idx"
        ).fetchall()
    finally:
        conn.close()
    return [{"kind": kind, **json.loads(data)["body"]} for kind, data in rows]


@pytest.fixture(scope="module")
def station() -> Iterator[RecordsStation]:
    made = build(Path(tempfile.mkdtemp(prefix="evidock-incidents-")))
    yield made
    remove_station(made)


@pytest.fixture(scope="module")
def imported(station: RecordsStation) -> dict[str, Any]:
    feed = write_feed(station.root / "feed.csv", FEED)
    before = leaf_count(station.data)
    proc = station.cli("incidents", "import", feed, "--slack-s", "0", "--json", check=1)
    station.verify()
    result: dict[str, Any] = json.loads(proc.stdout)
    result["stderr"] = proc.stderr
    result["new_leaves"] = leaf_count(station.data) - before
    return result


def test_malformed_lines_are_reported_by_number_and_the_rest_imported(
    imported: dict[str, Any],
) -> None:
    assert imported["added"] == 4
    assert [r["line"] for r in imported["rejected"]] == [6, 7]
    assert "line 6: fewer fields than the header names" in imported["stderr"]
    assert "line 7: start '2026-11-20T09:00:00' has no offset" in imported["stderr"]
    # one incident.imported leaf, one link (a1)
    assert imported["new_leaves"] == 2


def test_exact_overlap_is_linked_with_its_source(
    station: RecordsStation, imported: dict[str, Any]
) -> None:
    assert imported["linked"] == [{"clip_id": station.clips["a1"], "case_number": K1}]
    [made] = [x for x in _links(station.data) if x["clip_id"] == station.clips["a1"]]
    leaf = imported["leaf_index"]
    assert made["reason"] == f"incident feed (incident.imported leaf {leaf}, line 2)"
    assert made["case_number"] == K1 and made["officer"] is None


def test_close_and_ambiguous_go_to_review_and_nothing_is_guessed(
    station: RecordsStation, imported: dict[str, Any]
) -> None:
    reviews = {station.name_of(r["clip_id"]): (r["reason"], r["candidates"])
               for r in imported["reviews"]}  # fmt: skip
    # a2 (09:01:30) starts 30 s after line 2's end; b1 ends 10 s before line 3: close.
    # b2: K2 and K3 both overlap it. c1: its officer O3 has no incident: nothing at all.
    assert reviews == {
        "a2": ("close", [K1]),
        "b1": ("close", [K1]),
        "b2": ("ambiguous", [K2, K3]),
    }
    linked = {x["clip_id"] for x in _links(station.data)}
    assert linked == {station.clips["a1"]}
    listed = station.json("incidents", "review")
    assert {station.name_of(i["clip_id"]) for i in listed["items"]} == {"a2", "b1", "b2"}
    assert all(i["priority"] == "normal" for i in listed["items"])
    assert "c1" not in {station.name_of(i["clip_id"]) for i in listed["items"]}


def test_slack_links_what_was_close_and_the_ambiguous_stays(
    station: RecordsStation, imported: dict[str, Any]
) -> None:
    assert imported["leaf_index"] is not None
    # With 120 s of slack, line 2 reaches 09:03:00 (a2) and line 3 starts 08:59:40 (b1).
    result = station.json("incidents", "match", "--slack-s", "120")
    station.verify()
    assert sorted((station.name_of(x["clip_id"]), x["case_number"]) for x in result["linked"]) == [
        ("a2", K1),
        ("b1", K1),
    ]
    assert result["reviews"] == []  # b2 is on the list already
    listed = station.json("incidents", "review")
    assert [(station.name_of(i["clip_id"]), i["reason"]) for i in listed["items"]] == [
        ("b2", "ambiguous")
    ]
    # Matching again changes nothing and writes nothing.
    before = leaf_count(station.data)
    again = station.json("incidents", "match", "--slack-s", "120")
    assert again["linked"] == [] and leaf_count(station.data) == before
    # A person's unlink stands: the feed does not link the clip back.
    station.cli("unlink", "--case", K1, "--clip", station.clips["b1"], "--reason", "wrong scene")
    after = station.json("incidents", "match", "--slack-s", "120")
    assert after["linked"] == []
    station.verify()


def test_json_feed_lines_and_a_second_import_writes_nothing(
    station: RecordsStation, imported: dict[str, Any]
) -> None:
    assert imported["added"] == 4
    good = {"case_number": K3, "officer": "O9", "start": "2026-11-22T08:00:00+08:00",
            "end": "2026-11-22T09:00:00+08:00", "subject": "王五"}  # fmt: skip
    bad = {**good, "case_number": "K-9"}
    text = "[\n" + json.dumps(good, ensure_ascii=False) + ",\n\n"
    text += json.dumps(bad, ensure_ascii=False) + "\n]\n"
    feed = station.root / "feed.json"
    feed.write_text(text, "utf-8")
    proc = station.cli("incidents", "import", feed, check=1)
    assert "feed.json: line 4:" in proc.stderr and "number_pattern" in proc.stderr
    assert "1 incident(s) added" in proc.stdout
    clean = station.root / "clean.json"
    clean.write_text(json.dumps([good], ensure_ascii=False), "utf-8")
    before = leaf_count(station.data)
    proc = station.cli("incidents", "import", clean)
    assert "0 incident(s) added, 1 already on the station" in proc.stdout
    assert leaf_count(station.data) == before
    station.verify()


def test_important_marks_are_on_the_review_list_first(tmp_path: Path) -> None:
    recorder = tmp_path / "REC0009"
    made = generate_volume(recorder, serial="REC0009", clips=2, seconds=1, important=[2])
    assert made.important
    data = tmp_path / "data"
    report = ingest_json(recorder, data)
    marked = {
        c["clip_id"] for c in report["clips"] if "_IMP" in c["source_path"] and c["kind"] == "video"
    }
    proc = run_cli("incidents", "review", "--data-dir", data, "--json", check=0)
    items = json.loads(proc.stdout)["items"]
    assert [(i["clip_id"], i["reason"], i["priority"]) for i in items] == [
        (clip, "important", "high") for clip in sorted(marked)
    ]
    # Tagged: off the list.
    [clip] = marked
    run_cli("link", "--data-dir", data, "--case", K1, "--clip", clip, check=0)
    proc = run_cli("incidents", "review", "--data-dir", data, check=0)
    assert proc.stdout.strip() == "nothing to review"
    assert run_cli("verify", "--data-dir", data).returncode == 0
