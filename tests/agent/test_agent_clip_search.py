"""`evidock clips`: every filter on a station with footage of known times, places and
cases (records_station), alone and together."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from records_station import K1, K3, UNIT_1, UNIT_2, RecordsStation, build, open_cases
from records_station import remove as remove_station

from agent.records_filters import distance_m


@pytest.fixture(scope="module")
def station() -> Iterator[RecordsStation]:
    made = build(Path(tempfile.mkdtemp(prefix="evidock-clips-")))
    open_cases(made)
    made.cli("link", "--case", K1, "--session", made.sessions["A"])  # a1, a2
    made.cli("link", "--case", K3, "--clip", made.clips["b2"])  # K3: privacy, 王五, UNIT_2
    made.verify()
    yield made
    remove_station(made)


def _found(station: RecordsStation, *args: str) -> list[str]:
    result = station.json("clips", *args)
    assert result["count"] == len(result["clips"])
    return sorted(station.name_of(c["clip_id"]) for c in result["clips"])


def test_each_filter(station: RecordsStation) -> None:
    assert _found(station) == ["a1", "a2", "b1", "b2", "c1"]
    assert _found(station, "--officer", "O2") == ["b1", "b2"]
    assert _found(station, "--unit", UNIT_1) == ["a1", "a2"]
    assert _found(station, "--unit", UNIT_2) == ["b2"]
    # a day in the station's zone; a window that only touches a clip's end finds it
    assert _found(station, "--from", "2026-11-21") == ["b2"]
    assert _found(station, "--to", "2026-11-20") == ["a1", "a2", "b1", "c1"]
    assert _found(
        station, "--from", "2026-11-20T09:01:00+08:00", "--to", "2026-11-20T09:01:10+08:00"
    ) == ["a1", "b1"]
    assert _found(station, "--case", "朝执罚[2026]1号") == ["a1", "a2"]
    assert _found(station, "--subject", "王") == ["b2"]
    assert _found(station, "--subject", "张三") == ["a1", "a2"]
    assert _found(station, "--integrity", "ok") == ["a1", "a2", "b1", "b2", "c1"]
    assert _found(station, "--integrity", "truncated") == []
    assert _found(station, "--sensitivity", "privacy") == ["b2"]
    assert _found(station, "--sensitivity", "normal") == ["a1", "a2", "b1", "c1"]
    station.verify()


def test_near_a_place(station: RecordsStation) -> None:
    # a2 carries +39.9219+116.4436; 0.001° of latitude is about 111 m.
    assert round(distance_m((39.9219, 116.4436), (39.9229, 116.4436))) == 111
    assert _found(station, "--near", "39.9229,116.4436", "--radius-m", "120") == ["a2"]
    assert _found(station, "--near", "39.9229,116.4436", "--radius-m", "100") == []
    # clips with no place of their own are never near anything
    assert _found(station, "--near", "0,0", "--radius-m", "20000000") == ["a2"]


def test_filters_narrow_one_another_and_the_table(station: RecordsStation) -> None:
    assert _found(station, "--officer", "O1", "--case", K1, "--from", "2026-11-21") == []
    assert _found(station, "--officer", "O2", "--sensitivity", "privacy") == ["b2"]
    text = station.cli("clips", "--officer", "O2").stdout
    assert text.startswith("2 clip(s)") and "privacy" in text and K3 in text
    assert station.cli("clips", "--officer", "nobody").stdout.strip() == "no clip matches"
