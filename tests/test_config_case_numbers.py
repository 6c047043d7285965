"""Case numbers: one normal form for every variant people type, and the agency's rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from station_cli import run_cli

from config import ConfigError, StationConfig, parse_config
from config.case_numbers import (
    MAX_CASE_NUMBER,
    CaseNumberError,
    fold_case_number,
    normalise_case_number,
)

VARIANTS = ("朝执罚[2026]12号", "朝执罚（2026）12号", "朝执罚〔２０２６〕12号 ")


@pytest.mark.parametrize(
    "typed", [*VARIANTS, "朝执罚［2026］12号", " 朝执罚　〔2026〕 12号", "朝执罚【2026】12号"]
)
def test_every_variant_has_one_normal_form(typed: str) -> None:
    assert normalise_case_number(typed) == "朝执罚〔2026〕12号"


def test_brackets_other_than_the_years_become_parentheses() -> None:
    # The document type's qualifier keeps its role: 京公(刑)立字, never 京公〔刑〕立字.
    for typed in (
        "京公(刑)立字〔2026〕123号",
        "京公（刑）立字[2026]123号",
        "京公〔刑〕立字(2026)123号",
    ):
        assert normalise_case_number(typed) == "京公(刑)立字〔2026〕123号"
    assert fold_case_number("ＡＢ-１２") == "AB-12"


def test_unusable_numbers_are_refused() -> None:
    for typed, words in (
        ("  ", "empty"),
        ("　", "empty"),
        ("朝执罚\x1b[2026]12号", "control"),
        ("朝\u202e执罚〔2026〕12号", "control"),
        ("号" * (MAX_CASE_NUMBER + 1), "longer"),
    ):
        with pytest.raises(CaseNumberError, match=words):
            normalise_case_number(typed)


def test_the_default_rule_takes_administrative_and_criminal_numbers() -> None:
    rule = StationConfig().cases.rule()
    for typed in (*VARIANTS, "京公(刑)立字〔2026〕123号", "沪公(交)行罚决字〔2026〕123号"):
        assert rule.check(typed) == normalise_case_number(typed)


@pytest.mark.parametrize(
    "typed",
    ["C42", "朝执罚〔26〕12号", "朝执罚〔2026〕12", "朝执罚〔2026〕1234567号", "〔2026〕12号"],
)
def test_a_malformed_number_is_refused_with_the_expected_form(typed: str) -> None:
    with pytest.raises(CaseNumberError) as caught:
        StationConfig().cases.rule().check(typed)
    message = str(caught.value)
    assert "{agency}{doctype}〔{year}〕{seq}号" in message and "朝执罚〔2026〕12号" in message


def test_an_empty_pattern_takes_any_usable_number() -> None:
    config = parse_config({"cases": {"number_pattern": ""}})
    assert config.cases.rule().check(" C42 ") == "C42"
    with pytest.raises(CaseNumberError, match="empty"):
        config.cases.rule().check(" ")


def test_parts_given_replace_only_their_defaults() -> None:
    seq = {"seq": "[0-9]{3}"}
    with pytest.raises(ConfigError, match="number_example"):
        parse_config({"cases": {"number_parts": seq}})  # 12号 no longer follows the rule
    config = parse_config({"cases": {"number_parts": seq, "number_example": "朝执罚〔2026〕012号"}})
    assert config.cases.number_parts["agency"] == StationConfig().cases.number_parts["agency"]
    rule = config.cases.rule()
    assert rule.check("朝执罚[2026]012号") == "朝执罚〔2026〕012号"
    with pytest.raises(CaseNumberError, match="朝执罚〔2026〕012号"):
        rule.check("朝执罚〔2026〕12号")


@pytest.mark.parametrize(
    ("cases", "words"),
    [
        ({"number_pattern": "{agency}{kind}〔{year}〕{seq}号"}, "{kind}"),
        ({"number_pattern": "{agency〔{year}〕"}, "brace"),
        ({"number_parts": {"seq": "[0-9"}}, "not a regular expression"),
        ({"number_parts": {"seq": "(?P<n>[0-9]+)"}}, "named group"),
        ({"number_example": "C42"}, "number_example"),
        (
            {"number_pattern": "sometimes"},
            "cases.number_pattern: number_pattern 'sometimes' names no part",
        ),
    ],
)
def test_a_bad_rule_is_a_config_error(cases: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"cases": cases})
    assert words in str(caught.value)


def test_check_config_names_a_bad_pattern_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "station.toml"
    bad.write_text('[cases]\nnumber_pattern = "{agency}{kind}〔{year}〕{seq}号"\n', "utf-8")
    proc = run_cli("check-config", bad, check=2)
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "cases.number_pattern: number_pattern names {kind}" in proc.stderr
