"""`evidock stats` against numbers worked out by hand on a station with footage of known
times (records_station: clips, windows, cases; the feed and the links below)."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from browser import needs_chromium, read_png
from records_station import (
    K1,
    K2,
    K3,
    UNIT_1,
    UNIT_2,
    RecordsStation,
    build,
    open_cases,
    write_feed,
)
from records_station import remove as remove_station

FEED = [
    # line 2: O1's incident covers a1 (a2 is linked by hand before the import)
    f"{K1},O1,2026-11-20T08:59:00+08:00,2026-11-20T09:03:00+08:00,张三,行政处罚,{UNIT_1}",
    # line 3: O2's incident of K1 covers b1 (the number as another bracket form)
    f"朝执罚[2026]1号,O2,2026-11-20T09:00:00+08:00,2026-11-20T09:02:00+08:00,张三,行政处罚,{UNIT_1}",
    # lines 4 and 5: two cases overlap b2: put up for review, not linked
    f"{K2},O2,2026-11-21T10:00:10+08:00,2026-11-21T10:00:20+08:00,李四,行政处罚,{UNIT_1}",
    f"{K3},O2,2026-11-21T10:00:00+08:00,2026-11-21T10:01:00+08:00,王五,刑事,{UNIT_2}",
]


@pytest.fixture(scope="module")
def station() -> Iterator[RecordsStation]:
    made = build(Path(tempfile.mkdtemp(prefix="evidock-stats-")))
    open_cases(made)
    made.cli("link", "--case", K1, "--clip", made.clips["a2"], "--object-of-proof", "现场执法过程")
    made.cli("incidents", "import", write_feed(made.root / "feed.csv", FEED))
    made.cli("deliver")  # every session becomes safe: time to safe per recorder
    made.verify()
    yield made
    remove_station(made)


def _rows(result: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["group"], r["period"]): r for r in result["rows"]}


def _docked(station: RecordsStation, session: str) -> datetime:
    with station.db() as conn:
        row = conn.execute(
            "SELECT docked_at FROM session_times WHERE session_id = ?", (station.sessions[session],)
        ).fetchone()
    return datetime.fromisoformat(row[0].replace("Z", "+00:00"))


def _age(station: RecordsStation, session: str, clip_end_local: str) -> float:
    """Footage age at docking: the docking's start (as recorded) minus the clip's end."""
    end = datetime.fromisoformat(clip_end_local + "+08:00")
    return round((_docked(station, session) - end).total_seconds(), 3)


def test_by_officer_agrees_with_the_hand_count(station: RecordsStation) -> None:
    rows = _rows(station.json("stats"))
    assert set(rows) == {("O1", "all"), ("O2", "all"), ("O3", "all")}
    o1, o2, o3 = rows[("O1", "all")], rows[("O2", "all")], rows[("O3", "all")]
    # O1: a1 60 s + a2 45 s = 105 s = 105/3600 h = 0.0292 h; both in K1 (a1 by the feed,
    # a2 by hand): linked 2/2; complete: a2 only (a1 lacks place and object of proof): 1/2.
    assert (o1["clips"], o1["hours"], o1["linked_share"], o1["complete_share"]) == (
        2, 0.0292, 1.0, 0.5)  # fmt: skip
    # O2: b1 60 s + b2 30 s = 90 s = 0.025 h; b1 in K1, b2 under review: 1/2; none complete.
    assert (o2["clips"], o2["hours"], o2["linked_share"], o2["complete_share"]) == (
        2, 0.025, 0.5, 0.0)  # fmt: skip
    # O3: c1 30 s = 0.0083 h; no incident, no link.
    assert (o3["clips"], o3["hours"], o3["linked_share"], o3["complete_share"]) == (
        1, 0.0083, 0.0, 0.0)  # fmt: skip
    # K1 (whole process, 08:59:30-09:04:00, gaps over 60 s): RA (O1) covers 09:00:00-09:01:00
    # and 09:01:30-09:02:15: holes 30 s, 30 s, 105 s -> one gap of 105 s; RB (O2) covers
    # 09:00:30-09:01:30: holes 60 s (not over 60) and 150 s -> one gap of 150 s.
    assert (o1["gaps"], o1["gap_seconds"]) == (1, 105.0)
    assert (o2["gaps"], o2["gap_seconds"]) == (1, 150.0)
    assert (o3["gaps"], o3["gap_seconds"]) == (0, 0.0)
    # Docking punctuality: a1 ends 09:01:00, a2 09:02:15, both docked in session A:
    # median of the two ages, oldest = a1's.
    a1, a2 = _age(station, "A", "2026-11-20T09:01:00"), _age(station, "A", "2026-11-20T09:02:15")
    assert o1["docking_age_median_s"] == pytest.approx((a1 + a2) / 2, abs=0.002)
    assert o1["docking_age_max_s"] == a1
    b1, b2 = _age(station, "B", "2026-11-20T09:01:30"), _age(station, "B", "2026-11-21T10:00:30")
    assert o2["docking_age_median_s"] == pytest.approx((b1 + b2) / 2, abs=0.002)
    assert o2["docking_age_max_s"] == b1
    station.verify()


def test_by_unit_per_day(station: RecordsStation) -> None:
    rows = _rows(station.json("stats", "--by", "unit", "--period", "day"))
    # Units: a1, a2, b1 are in K1 (朝阳分局); b2 is in no case: its officer O2's unit as the
    # feed last gave it (line 5: 三里屯派出所); c1: O3 has no incident: unknown.
    assert set(rows) == {
        (UNIT_1, "2026-11-20"),
        (UNIT_2, "2026-11-21"),
        ("(unknown)", "2026-11-20"),
    }
    first = rows[(UNIT_1, "2026-11-20")]
    # 60 + 45 + 60 = 165 s = 0.0458 h; all three linked; a2 alone complete: 1/3 = 0.3333.
    assert (first["clips"], first["hours"], first["linked_share"], first["complete_share"]) == (
        3, 0.0458, 1.0, 0.3333)  # fmt: skip
    # Merged coverage of K1: 09:00:00-09:02:15; holes 30 s (start) and 105 s (end): one gap.
    assert (first["gaps"], first["gap_seconds"]) == (1, 105.0)
    second = rows[(UNIT_2, "2026-11-21")]
    assert (second["clips"], second["hours"], second["linked_share"], second["gaps"]) == (
        1, 0.0083, 0.0, 0)  # fmt: skip


def test_a_range_keeps_its_days_only(station: RecordsStation) -> None:
    rows = _rows(station.json("stats", "--from", "2026-11-21", "--to", "2026-11-21"))
    # Only b2 (2026-11-21 10:00 local); K1's gaps started on the 20th.
    assert list(rows) == [("O2", "all")]
    assert (rows[("O2", "all")]["clips"], rows[("O2", "all")]["gaps"]) == (1, 0)
    # The 21st 00:00 local is 2026-11-20T16:00Z: an ISO bound means the same instant.
    same = _rows(station.json("stats", "--from", "2026-11-20T16:00:00Z"))
    assert list(same) == [("O2", "all")]


def test_time_to_safe_per_recorder_comes_from_session_times(station: RecordsStation) -> None:
    safe = {r["recorder"]: r for r in station.json("stats")["time_to_safe"]}
    with station.db() as conn:
        seconds = {
            row["recorder"]: row["seconds_to_safe"]
            for row in conn.execute("SELECT recorder, seconds_to_safe FROM session_times")
        }
    assert set(safe) == {"RA", "RB", "RC"}
    for recorder, row in safe.items():
        # One session each: its median and its slowest are its own time to safe.
        assert seconds[recorder] is not None
        assert row["sessions_safe"] == 1
        assert row["median_s"] == row["slowest_s"] == seconds[recorder]


def test_csv_has_the_same_numbers(station: RecordsStation) -> None:
    text = station.cli("stats", "--csv").stdout
    rows = {r["group"]: r for r in csv.DictReader(io.StringIO(text))}
    assert set(rows) == {"O1", "O2", "O3"}
    assert (rows["O1"]["clips"], rows["O1"]["hours"], rows["O1"]["gaps"]) == ("2", "0.0292", "1")
    table = station.cli("stats", "--by", "unit").stdout
    assert UNIT_1 in table and "100%" in table and "time to safe" in table


@needs_chromium
def test_png_is_a_chart(station: RecordsStation) -> None:
    out = station.root / "stats.png"
    proc = station.cli("stats", "--by", "unit", "--png", out)
    assert str(out) in proc.stdout
    image = read_png(out)
    assert image.width == 1000 and image.height > 200
    # Bars and labels: a good part of the picture is not white, and the three bar colours
    # are there (hours blue, linked green, complete orange).
    assert image.share_not_white() > 0.02
    colours = {image.pixel(x, y) for y in range(0, image.height, 3) for x in range(0, 1000, 3)}
    assert {(0x2F, 0x6D, 0xB5), (0x3A, 0x9A, 0x5B), (0xD0, 0x8A, 0x1E)} <= colours
    station.verify()
