"""Station config: the default file is valid, every field is documented, errors name keys."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from config import ConfigError, StationConfig, default_config_text, load_config, parse_config


def test_default_config_file_is_valid_and_equals_the_model_defaults() -> None:
    parsed = parse_config(tomllib.loads(default_config_text()))
    assert parsed == StationConfig()


def _fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for name, info in model.model_fields.items():
        out.append((prefix + name, info.description))
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.extend(_fields(annotation, prefix + name + "."))
    return out


def test_every_field_is_documented() -> None:
    fields = _fields(StationConfig)
    assert len(fields) > 15
    undocumented = [name for name, text in fields if not text]
    assert undocumented == []


def test_every_default_file_key_exists_in_the_model() -> None:
    data = tomllib.loads(default_config_text())
    for section, values in data.items():
        assert section in StationConfig.model_fields
        sub = StationConfig.model_fields[section].annotation
        assert isinstance(sub, type) and issubclass(sub, BaseModel)
        for key in values:
            assert key in sub.model_fields, f"{section}.{key}"


def test_errors_carry_key_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[station]\nid = "bad id!"\n[hashing]\nverify = "sometimes"\nalgorithms = ["sha256"]\n'
        "window_mib = 0\n[unknown]\nx = 1\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    keys = {p.key for p in caught.value.problems}
    assert {
        "station.id",
        "hashing.verify",
        "hashing.algorithms",
        "hashing.window_mib",
        "unknown",
    } <= keys
    assert "bad.toml" in str(caught.value)


def test_toml_syntax_error_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[station\nid=", encoding="utf-8")
    with pytest.raises(ConfigError, match="toml"):
        load_config(broken)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")


def test_sm3_is_accepted_and_duplicates_refused() -> None:
    ok = parse_config({"hashing": {"algorithms": ["sha256", "blake3", "sm3"]}})
    assert ok.hashing.algorithms == ("sha256", "blake3", "sm3")
    with pytest.raises(ConfigError, match="twice"):
        parse_config({"hashing": {"algorithms": ["sha256", "blake3", "blake3"]}})


def test_station_time_zone_defaults_to_shanghai_and_is_in_the_default_file() -> None:
    assert StationConfig().station.time_zone == "Asia/Shanghai"
    assert tomllib.loads(default_config_text())["station"]["time_zone"] == "Asia/Shanghai"
    for zone in ("UTC", "Europe/Berlin", "Asia/Urumqi"):
        assert parse_config({"station": {"time_zone": zone}}).station.time_zone == zone


def _time_zone_problem(zone: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config({"station": {"time_zone": zone}})
    (problem,) = caught.value.problems
    assert problem.key == "station.time_zone"
    return problem.reason


def test_an_unknown_time_zone_suggests_close_names() -> None:
    assert _time_zone_problem("asia/shanghai") == (
        '"asia/shanghai" is not a known time zone; did you mean "Asia/Shanghai"? Otherwise '
        'write an IANA time zone name, such as "Asia/Shanghai" (all of mainland China)'
    )
    assert _time_zone_problem("Asia/Shangai").startswith(
        '"Asia/Shangai" is not a known time zone; did you mean "Asia/Shanghai"'
    )
    assert _time_zone_problem("Europe/Berlinn").startswith(
        '"Europe/Berlinn" is not a known time zone; did you mean "Europe/Berlin"'
    )
    assert _time_zone_problem("Nowhere/Atall") == (
        '"Nowhere/Atall" is not a known time zone; write an IANA time zone name, such as '
        '"Asia/Shanghai" (all of mainland China)'
    )


def test_an_offset_or_a_path_is_not_a_time_zone() -> None:
    for offset in ("UTC+8", "+08:00", "GMT-5"):
        assert "an offset is not a time zone" in _time_zone_problem(offset)
    for hostile in ("/etc/passwd", "../../etc/passwd", "Asia", ""):
        assert "is not a known time zone" in _time_zone_problem(hostile)


def test_a_station_id_cannot_end_in_a_newline() -> None:
    with pytest.raises(ConfigError, match="is not a usable station id"):
        parse_config({"station": {"id": "bj-cy-02\n"}})


def test_a_read_larger_than_the_buffer_budget_is_refused_by_check_config() -> None:
    # `run` would otherwise start and then fail making the copy engine's budget.
    with pytest.raises(ConfigError) as caught:
        parse_config({"hashing": {"read_size_kib": 65536, "buffer_budget_mib": 32}})
    assert [p.key for p in caught.value.problems] == ["hashing"]
    assert "raise buffer_budget_mib to at least 64" in str(caught.value)
    fits = parse_config({"hashing": {"read_size_kib": 65536, "buffer_budget_mib": 64}})
    assert fits.hashing.buffer_budget_mib == 64


def test_the_agency_incident_topic_is_one_exact_topic() -> None:
    taken = parse_config({"mqtt": {"incidents_topic": "agency/dispatch/incidents"}}, "x")
    assert taken.mqtt.incidents_topic == "agency/dispatch/incidents"
    for bad in ("agency/+/incidents", "agency/#", " agency/incidents"):
        try:
            parse_config({"mqtt": {"incidents_topic": bad}}, "x")
        except ConfigError as exc:
            assert str(exc.problems[0]).startswith("mqtt.incidents_topic: "), exc.problems
        else:
            raise AssertionError(f"{bad!r} was taken")
