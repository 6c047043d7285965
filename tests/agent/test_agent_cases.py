"""Cases end to end through the real CLI on a real station: one case whatever brackets or
digits are typed, the agency's rule, links that change nothing write nothing, and every
change of a case is one ledger leaf that `evidock verify` accepts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from station_cli import ingest_json, leaf_count, run_cli

VARIANTS = ("朝执罚[2026]12号", "朝执罚（2026）12号", "朝执罚〔２０２６〕12号 ")
NUMBER = "朝执罚〔2026〕12号"
FORM = "{agency}{doctype}〔{year}〕{seq}号"


class Made:
    def __init__(self, data: Path, report: dict[str, Any]) -> None:
        self.data = data
        self.session = str(report["session_id"])
        self.clips = [str(c["clip_id"]) for c in report["clips"]]

    def leaves(self) -> int:
        return leaf_count(self.data)

    def cli(self, *args: str | Path, check: int | None = 0) -> str:
        proc = run_cli(*args, "--data-dir", self.data, check=check)
        return proc.stdout + proc.stderr

    def show(self, number: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.cli("case", "show", number, "--json"))
        return result


@pytest.fixture
def made(recorder_template: Path, tmp_path: Path) -> Made:
    recorder = tmp_path / "REC0001"
    shutil.copytree(recorder_template, recorder)
    data = tmp_path / "data"
    return Made(data, ingest_json(recorder, data))


def _verify(made: Made) -> None:
    proc = run_cli("verify", "--data-dir", made.data)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_three_variants_find_one_case_and_the_same_clips(made: Made) -> None:
    first, *others = VARIANTS
    made.cli("case", "create", "--case", first, "--subject", "张三", "--category", "行政处罚",
             "--unit", "朝阳分局", "--by", "clerk-1")  # fmt: skip
    made.cli("link", "--case", others[0], "--session", made.session, "--officer", "000777")
    for typed in VARIANTS:
        shown = made.show(typed)
        assert shown["case_number"] == NUMBER and shown["registered"] is True
        assert shown["case"]["case_number_typed"] == first
        assert sorted(c["clip_id"] for c in shown["clips"]) == sorted(made.clips)
    # The ledger keeps both: what was typed, and the normal form every lookup compares.
    [link] = made.show(NUMBER)["links"]
    assert (link["case_number"], link["case_number_typed"]) == (NUMBER, others[0])
    before = made.leaves()
    out = made.cli("case", "create", "--case", others[1], "--subject", "李四",
                   "--category", "c", "--unit", "u", check=2)  # fmt: skip
    assert f"case {NUMBER} exists already (entered as {first}" in out
    assert made.leaves() == before
    _verify(made)


def test_a_malformed_number_is_refused_with_the_expected_form(
    made: Made, recorder_template: Path, tmp_path: Path
) -> None:
    before = made.leaves()
    for args in (
        ("case", "create", "--case", "C42", "--subject", "s", "--category", "c", "--unit", "u"),
        ("link", "--case", "朝执罚2026-12号", "--clip", made.clips[0]),
        ("unlink", "--case", "C42", "--session", made.session),
    ):
        out = made.cli(*args, check=2)
        assert FORM in out and "e.g. 朝执罚〔2026〕12号" in out and len(out.splitlines()) == 1
    assert made.leaves() == before
    # At ingest the number is checked before a byte is read or a station is made.
    fresh = tmp_path / "fresh"
    proc = run_cli("ingest", recorder_template, "--data-dir", fresh, "--case", "C42", check=2)
    assert FORM in proc.stderr and not fresh.exists()


def test_an_empty_pattern_takes_any_number(recorder_template: Path, tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "d"}"\n[docking]\nmount_root = "{tmp_path}"\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "c"}"\n[cases]\nnumber_pattern = ""\n',
        "utf-8",
    )
    report = json.loads(
        run_cli("ingest", recorder_template, "--config", config, "--case", " C42 ", "--json",
                check=0).stdout
    )  # fmt: skip
    assert report["case_number"] == "C42"


def test_a_link_that_changes_nothing_writes_no_leaf(made: Made) -> None:
    clip = made.clips[0]
    out = made.cli("link", "--case", VARIANTS[0], "--clip", clip)
    assert "(ledger leaf" in out and "no case record" in out  # tagged before registration
    before = made.leaves()
    for typed in VARIANTS:
        out = made.cli("link", "--case", typed, "--clip", clip)
        assert "already linked" in out and "no leaf written" in out
    assert made.leaves() == before
    # Linking the whole session adds the other clips; again, it changes nothing.
    made.cli("link", "--case", NUMBER, "--session", made.session)
    assert made.leaves() == before + 1
    assert "already linked" in made.cli("link", "--case", NUMBER, "--session", made.session)
    assert "already linked" in made.cli("link", "--case", NUMBER, "--clip", made.clips[1])
    assert made.leaves() == before + 1
    _verify(made)


def test_unlinking_a_missing_link_is_refused_and_relinking_adds_a_leaf(made: Made) -> None:
    clip = made.clips[0]
    before = made.leaves()
    out = made.cli("unlink", "--case", NUMBER, "--clip", clip, check=2)
    assert "not linked to case" in out and len(out.splitlines()) == 1
    out = made.cli("unlink", "--case", NUMBER, "--session", made.session, check=2)
    assert "not linked to case" in out
    assert made.leaves() == before
    made.cli("link", "--case", VARIANTS[1], "--clip", clip)
    made.cli("unlink", "--case", VARIANTS[2], "--clip", clip)
    made.cli("unlink", "--case", NUMBER, "--clip", clip, check=2)
    made.cli("link", "--case", VARIANTS[0], "--clip", clip, "--officer", "000777")
    assert made.leaves() == before + 3
    actions = [(x["action"], x["case_number_typed"]) for x in made.show(NUMBER)["links"]]
    assert actions == [
        ("linked", VARIANTS[1]),
        ("unlinked", VARIANTS[2].strip()),
        ("linked", VARIANTS[0]),
    ]
    _verify(made)


def test_create_edit_and_close_are_one_leaf_each(made: Made) -> None:
    before = made.leaves()
    made.cli("case", "create", "--case", NUMBER, "--subject", "张三", "--category", "行政处罚",
             "--unit", "朝阳分局", "--whole-process", "--starts", "2026-11-22T08:00+08:00",
             "--sensitivity", "privacy", "--retention", "administrative-2y",
             "--by", "clerk-1")  # fmt: skip
    assert made.leaves() == before + 1
    out = made.cli("case", "edit", VARIANTS[0], "--subject", "李四", "--unit", "朝阳分局",
                   "--by", "clerk-2", "--reason", "当事人姓名有误")  # fmt: skip
    assert "subject = 李四" in out and "unit" not in out  # an unchanged value is no change
    assert made.leaves() == before + 2
    out = made.cli("case", "edit", NUMBER, "--subject", "李四", "--by", "x", "--reason", "y",
                   check=2)  # fmt: skip
    assert "nothing to change" in out and made.leaves() == before + 2
    made.cli("case", "close", VARIANTS[1], "--by", "clerk-2", "--reason", "结案")
    assert made.leaves() == before + 3
    assert "closed" in made.cli("case", "close", NUMBER, "--by", "a", "--reason", "b", check=2)
    assert "closed" in made.cli(
        "case", "edit", NUMBER, "--unit", "x", "--by", "a", "--reason", "b", check=2
    )
    assert made.leaves() == before + 3
    shown = made.show(NUMBER)
    case = shown["case"]
    assert (case["subject"], case["sensitivity"], case["retention"]) == (
        "李四",
        "privacy",
        "administrative-2y",
    )
    assert case["whole_process"] is True and case["starts"] == "2026-11-22T08:00:00+08:00"
    assert case["closed_by"] == "clerk-2" and case["closed_reason"] == "结案"
    events = [(e["event"], e["by"]) for e in shown["history"]]
    assert events == [("opened", "clerk-1"), ("changed", "clerk-2"), ("closed", "clerk-2")]
    assert shown["history"][1]["changes"] == {"subject": "李四"}
    assert shown["history"][1]["previous"] == {"subject": "张三"}
    listed = json.loads(made.cli("case", "list", "--closed", "--json"))["cases"]
    assert [c["case_number"] for c in listed] == [NUMBER]
    assert "no open cases" in made.cli("case", "list", "--open")
    _verify(made)


def test_case_show_lists_the_link_history_with_who_and_when(made: Made) -> None:
    made.cli("link", "--case", VARIANTS[0], "--session", made.session, "--officer", "000777",
             "--reason", "现场执法")  # fmt: skip
    made.cli("unlink", "--case", NUMBER, "--clip", made.clips[0], "--officer", "000888",
             "--reason", "无关")  # fmt: skip
    text = made.cli("case", "show", VARIANTS[2])
    assert f"case {NUMBER}: no case record" in text
    assert f"linked   session {made.session} by 000777 as {VARIANTS[0]}: 现场执法" in text
    assert f"unlinked clip {made.clips[0]} by 000888: 无关" in text
    assert f"clips ({len(made.clips) - 1}):" in text
    shown = made.show(NUMBER)
    assert all(x["at"].endswith("Z") for x in shown["links"])
    assert made.clips[0] not in {c["clip_id"] for c in shown["clips"]}
    out = made.cli("case", "show", "朝执罚〔2026〕404号", check=2)
    assert "no case 朝执罚〔2026〕404号" in out
