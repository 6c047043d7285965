"""`evidock completeness` and `evidock gaps` against a hand-worked station
(records_station): which of the five elements each clip lacks, per officer and unit, and
the holes in a whole-process case's coverage, per recorder and merged."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from records_station import (
    K1,
    K2,
    UNIT_1,
    UNIT_2,
    RecordsStation,
    build,
    open_cases,
    write_feed,
)
from records_station import remove as remove_station

from agent.whole_process import gaps_in

FEED = [
    f"{K1},O1,2026-11-20T08:59:00+08:00,2026-11-20T09:03:00+08:00,张三,行政处罚,{UNIT_1}",
    f"{K1},O2,2026-11-20T09:00:00+08:00,2026-11-20T09:02:00+08:00,张三,行政处罚,{UNIT_1}",
    f"{K2},O2,2026-11-21T10:00:10+08:00,2026-11-21T10:00:20+08:00,李四,行政处罚,{UNIT_2}",
]


@pytest.fixture(scope="module")
def station() -> Iterator[RecordsStation]:
    made = build(Path(tempfile.mkdtemp(prefix="evidock-completeness-")))
    open_cases(made)
    made.cli("link", "--case", K1, "--clip", made.clips["a2"], "--object-of-proof", "现场执法过程")
    made.cli("incidents", "import", write_feed(made.root / "feed.csv", FEED))
    made.verify()
    yield made
    remove_station(made)


def test_completeness_per_officer_and_unit(station: RecordsStation) -> None:
    report = station.json("completeness")
    # a1, b1: in K1 by the feed, no object of proof, no place (AVI, no station place);
    # b2: in K2 by the feed (its only incident), the same two missing; c1: no case either.
    # a2: linked by hand with its object of proof, its own GPS tag: complete.
    assert (report["clips"], report["incomplete"]) == (5, 4)
    groups = {(g["officer"], g["unit"]): g for g in report["groups"]}
    # b2's unit is its case's (K2: 朝阳分局), not the one its feed line gave (a case's unit
    # comes first); c1: O3 is in no case and no feed: unknown.
    assert set(groups) == {("O1", UNIT_1), ("O2", UNIT_1), ("O3", "(unknown)")}
    missing = {
        station.name_of(c["clip_id"]): c["missing"]
        for g in report["groups"]
        for c in g["clips_missing"]
    }
    assert missing == {
        "a1": ["capture_place", "object_of_proof"],
        "b1": ["capture_place", "object_of_proof"],
        "b2": ["capture_place", "object_of_proof"],
        "c1": ["case_number", "capture_place", "object_of_proof"],
    }
    assert (groups[("O1", UNIT_1)]["clips"], groups[("O1", UNIT_1)]["incomplete"]) == (2, 1)
    assert (groups[("O2", UNIT_1)]["clips"], groups[("O2", UNIT_1)]["incomplete"]) == (2, 2)
    assert groups[("O3", "(unknown)")]["missing"] == {
        "case_number": 1, "capture_time": 0, "capture_place": 1, "collector": 0,
        "object_of_proof": 1,
    }  # fmt: skip
    only = station.json("completeness", "--officer", "O2", "--unit", UNIT_1)
    assert [(g["officer"], g["unit"], g["clips"]) for g in only["groups"]] == [("O2", UNIT_1, 2)]
    assert station.json("completeness", "--unit", UNIT_2)["groups"] == []
    text = station.cli("completeness", "--unit", UNIT_1).stdout
    assert "3 of 4 clip(s)" in text and station.clips["a1"] in text
    assert station.clips["a2"] not in text
    station.verify()


def test_gaps_per_recorder_and_merged(station: RecordsStation) -> None:
    # K1 runs 08:59:30-09:04:00. RA: a1 09:00:00-09:01:00, a2 09:01:30-09:02:15;
    # RB: b1 09:00:30-09:01:30. Holes over 60 s: RA 09:02:15-09:04:00 (105 s);
    # RB 09:01:30-09:04:00 (150 s; its opening hole is exactly 60 s: not over);
    # merged 09:00:00-09:02:15 covered: 09:02:15-09:04:00 (105 s).
    report = station.json("gaps", "--case", "朝执罚（2026）1号", check=1)
    assert report["bounds_from"] == "case" and report["clips"] == 3
    per = report["per_recorder"]
    assert {r: [(g["start"][11:19], g["seconds"]) for g in v["gaps"]] for r, v in per.items()} == {
        "RA": [("09:02:15", 105.0)],
        "RB": [("09:01:30", 150.0)],
    }
    assert per["RA"]["officers"] == ["O1"]
    assert [(g["start"][11:19], g["end"][11:19], g["seconds"]) for g in report["merged"]] == [
        ("09:02:15", "09:04:00", 105.0)
    ]
    # Over 20 s: RA's holes of 30 s (08:59:30-09:00:00), 30 s (09:01:00-09:01:30) and
    # 105 s; merged: 30 s and 105 s.
    finer = station.json("gaps", "--case", K1, "--max-gap-s", "20", check=1)
    assert [g["seconds"] for g in finer["per_recorder"]["RA"]["gaps"]] == [30.0, 30.0, 105.0]
    assert [g["seconds"] for g in finer["per_recorder"]["RB"]["gaps"]] == [60.0, 150.0]
    assert [g["seconds"] for g in finer["merged"]] == [30.0, 105.0]
    text = station.cli("gaps", "--case", K1, check=1).stdout
    assert "recorder RA (O1): 1 gap(s)" in text and "merged: 1 gap(s)" in text
    station.verify()


def test_a_case_without_whole_process_is_shown_for_information(station: RecordsStation) -> None:
    # K2 has no start or end: from its clips' (b2 10:00:00-10:00:30): no gap; exit 0.
    report = station.json("gaps", "--case", K2)
    assert report["bounds_from"] == "clips" and report["whole_process"] is False
    assert report["merged"] == []
    text = station.cli("gaps", "--case", K2).stdout
    assert "does not require whole-process recording" in text


def _t(minute: int, second: int = 0) -> datetime:
    return datetime(2026, 11, 20, 9, minute, second, tzinfo=UTC)


def test_gaps_in_edges() -> None:
    start, end = _t(0), _t(10)
    # Nothing recorded: the whole span is one gap.
    assert [(g.start, g.end) for g in gaps_in([], start, end, 60)] == [(start, end)]
    # Overlapping and nested clips merge; one exactly at the threshold is not a gap.
    clips = [(_t(0), _t(4)), (_t(1), _t(2)), (_t(5), _t(11))]
    assert [(g.start, g.end) for g in gaps_in(clips, start, end, 60)] == []
    assert [(g.start, g.end) for g in gaps_in(clips, start, end, 59)] == [(_t(4), _t(5))]
    # Clips outside the span count only for what they cover of it.
    outside = [(_t(0) - timedelta(hours=1), _t(0) - timedelta(minutes=30)), (_t(9), _t(12))]
    assert [(g.start, g.end) for g in gaps_in(outside, start, end, 0)] == [(start, _t(9))]
