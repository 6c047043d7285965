"""Config errors are plain sentences that say what to write, key path first."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from station_cli import run_cli

from config import ConfigError, StationConfig, load_config, parse_config
from config.wording import WORDED_TYPES, plain_problem

# Words of pydantic's own messages that a station's IT person should never have to read.
PYDANTIC_WORDING = (
    "Input should",
    "Extra inputs",
    "Field required",
    "Value error",
    "valid dictionary",
    "instance of",
    "pathlib",
    "PosixPath",
    "Input is not",
    "unable to parse",
    "[type=",
)

# Every kind of value a TOML file can hold, good for some fields and bad for others.
TOML_VALUES: list[object] = [
    "sometimes",
    "",
    "8",
    0,
    -1,
    2**63 - 1,
    1.5,
    8.0,
    math.nan,
    math.inf,
    -math.inf,
    True,
    False,
    [],
    ["md5"],
    ["sha256", "blake3", 1],
    {},
    {"a": 1},
    datetime.datetime(2026, 1, 1, 8, 30),
    datetime.date(2026, 1, 1),
    datetime.time(8, 30),
]


def _sections() -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for name, info in StationConfig.model_fields.items():
        assert isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
        out[name] = info.annotation
    return out


def _problems(data: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "station.toml")
    return [str(p) for p in caught.value.problems]


def test_the_issue_examples_read_as_written() -> None:
    assert _problems({"hashing": {"verify": "sometimes"}}) == [
        'hashing.verify: "sometimes" is not allowed; write one of "reread", "none"'
    ]
    assert _problems({"hashing": {"window_mib": 0}}) == [
        "hashing.window_mib: 0 is too small; the smallest allowed is 1"
    ]
    assert _problems({"station": {"nmae": "x"}}) == [
        'station.nmae: unknown key; did you mean "station.name"?'
    ]


def test_every_bad_value_of_every_field_is_a_plain_sentence_naming_its_key() -> None:
    seen_types: set[str] = set()
    checked = 0
    for section, model in _sections().items():
        bad_sections: list[object] = [3, "x", [], True]
        for value in bad_sections:
            try:
                StationConfig.model_validate({section: value})
            except ValidationError as exc:
                seen_types |= {err["type"] for err in exc.errors()}
            for line in _problems({section: value}):
                assert line.startswith(f"{section}: "), line
                assert f"[{section}]" in line, line
                checked += 1
        for key in model.model_fields:
            misspelt = key[:-1] + key[-1].upper() + "x"
            try:
                StationConfig.model_validate({section: {misspelt: 1}})
            except ValidationError as exc:
                seen_types |= {err["type"] for err in exc.errors()}
            assert _problems({section: {misspelt: 1}})[0].startswith(
                f'{section}.{misspelt}: unknown key; did you mean "{section}.{key}"'
            )
            for value in TOML_VALUES:
                try:
                    StationConfig.model_validate({section: {key: value}})
                except ValidationError as exc:
                    seen_types |= {err["type"] for err in exc.errors()}
                else:
                    continue
                for line in _problems({section: {key: value}}):
                    # a table's entry is named down to its own key (cases.number_parts.a);
                    # a check of keys together names the section and the key in its words
                    assert line.startswith((f"{section}.{key}: ", f"{section}.{key}.")) or (
                        line.startswith(f"{section}: ") and key in line
                    ), line
                    for words in PYDANTIC_WORDING:
                        assert words not in line, line
                    assert "cannot be used here (" not in line, f"generic wording: {line}"
                    checked += 1
    # The enumeration found every kind of error our models produce, and each has wording.
    assert seen_types <= WORDED_TYPES, seen_types - WORDED_TYPES
    assert {
        "literal_error",
        "extra_forbidden",
        "greater_than",
        "greater_than_equal",
        "less_than_equal",
        "int_type",
        "float_type",
        "finite_number",
        "string_type",
        "path_type",
        "tuple_type",
        "model_type",
        "value_error",
    } <= seen_types
    assert checked > 300


def test_values_are_shown_as_they_are_written_in_toml() -> None:
    assert _problems({"hashing": {"window_mib": True}}) == [
        "hashing.window_mib: true is not a whole number; write a whole number without "
        "quotes, such as 8"
    ]
    assert _problems({"docking": {"settle_seconds": math.nan}}) == [
        "docking.settle_seconds: nan cannot be used here; write a number without quotes, "
        "such as 1.0"
    ]
    assert _problems({"hashing": {"algorithms": "sha256"}}) == [
        'hashing.algorithms: "sha256" is not a list; write a list in square brackets, '
        'such as ["sha256", "blake3"]'
    ]
    assert _problems({"station": {"name": 7}}) == [
        'station.name: 7 is not text; write it in double quotes, such as "evidock collection '
        'station"'
    ]
    assert _problems({"paths": {"data_dir": 7}}) == [
        "paths.data_dir: 7 is not a path; write the folder's full path in double quotes, "
        'such as "/var/lib/evidock"'
    ]


def test_numbers_are_not_taken_from_text_or_true() -> None:
    # Lax parsing read `max_attempts = true` as 1 and `settle_seconds = "1.5"` as 1.5.
    for data in (
        {"delivery": {"max_attempts": True}},
        {"docking": {"settle_seconds": "1.5"}},
        {"ledger": {"checkpoint_minutes": "15"}},
        {"hashing": {"staging_max_age_hours": False}},
    ):
        with pytest.raises(ConfigError):
            parse_config(data)
    assert parse_config({"docking": {"settle_seconds": 2}}).docking.settle_seconds == 2.0


def test_a_list_item_is_named_by_its_position() -> None:
    assert _problems({"hashing": {"algorithms": ["sha256", "blake3", "md5"]}}) == [
        'hashing.algorithms: "md5" (item 3 of the list) is not allowed; write one of '
        '"sha256", "blake3", "sm3"'
    ]
    (line,) = _problems({"hashing": {"algorithms": ["sha256"]}})
    assert line.startswith('hashing.algorithms: "blake3" must be in the list')


def test_a_choice_says_the_values_to_write() -> None:
    assert _problems({"delivery": {"target": "ftp"}}) == [
        'delivery.target: "ftp" is not allowed; write "folder" or "s3"'
    ]
    # A target that needs more keys says which, where.
    assert _problems({"delivery": {"target": "s3"}}) == [
        'delivery: target = "s3" needs s3_endpoint and s3_bucket; set them in [delivery]'
    ]


def test_unknown_section_suggests_and_lists_the_known_sections() -> None:
    known = ", ".join(_sections())  # every section, in the model's order
    assert _problems({"statoin": {"id": "a"}}) == [
        f'statoin: unknown section; did you mean "station"? The known sections are: {known}'
    ]
    assert _problems({"uploads": {}}) == [
        f"uploads: unknown section; the known sections are: {known}"
    ]


def test_a_key_outside_its_section_is_pointed_to_its_section() -> None:
    assert _problems({"data_dir": "/srv/evidock"}) == [
        'data_dir: unknown section; "data_dir" is a key of the [paths] section: write it '
        "below the [paths] line"
    ]
    assert _problems({"station": {"data_dir": "/srv/evidock"}}) == [
        'station.data_dir: unknown key in [station]; did you mean "paths.data_dir"? Move it '
        "below that section's line"
    ]
    assert _problems({"hashing": {"mount_roto": "/media"}}) == [
        'hashing.mount_roto: unknown key in [hashing]; did you mean "docking.mount_root"? '
        "Move it below that section's line"
    ]


def test_an_unknown_key_with_no_close_match_lists_the_section_keys() -> None:
    assert _problems({"ledger": {"zzz": 1}}) == [
        "ledger.zzz: unknown key; the keys of [ledger] are: checkpoint_minutes"
    ]
    assert _problems({"hashing": {"Window-MiB": 4}}) == [
        'hashing.Window-MiB: unknown key; did you mean "hashing.window_mib"?'
    ]


def test_a_missing_key_says_to_add_it() -> None:
    # No key is required today; a required key added later still gets a plain sentence.
    err: ErrorDetails = {"type": "missing", "loc": ("station", "id"), "msg": "x", "input": {}}
    assert str(plain_problem(err)) == 'station.id: is missing; add it, such as "station-01"'


def test_empty_and_nul_paths_are_refused() -> None:
    assert _problems({"paths": {"data_dir": ""}}) == [
        "paths.data_dir: an empty path is not allowed; write the folder's full path"
    ]
    (line,) = _problems({"docking": {"mount_root": "/media/\0x"}})
    assert line.startswith("docking.mount_root: the path contains a NUL character")


def test_the_printed_error_lists_one_indented_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "station.toml"
    bad.write_text(
        '[station]\nnmae = "x"\n[hashing]\nverify = "sometimes"\nwindow_mib = 0\n'
        "[dokcing]\nmount_root = 3\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{bad}: invalid config, fix these keys:"
    assert sorted(lines[1:]) == sorted(
        [
            '  station.nmae: unknown key; did you mean "station.name"?',
            '  hashing.verify: "sometimes" is not allowed; write one of "reread", "none"',
            "  hashing.window_mib: 0 is too small; the smallest allowed is 1",
            '  dokcing: unknown section; did you mean "docking"? The known sections are: '
            + ", ".join(_sections()),
        ]
    )


def test_file_problems_say_what_to_do(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('[station]\nname = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text; save the file as UTF-8"):
        load_config(latin1)
    with pytest.raises(ConfigError, match=r"\(file\): cannot be read \(Is a directory\)"):
        load_config(tmp_path)
    broken = tmp_path / "broken.toml"
    broken.write_text("[station\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\(toml\): .*line 1.*; fix the TOML syntax there"):
        load_config(broken)


def test_check_config_prints_each_problem_on_its_own_line(tmp_path: Path) -> None:
    bad = tmp_path / "station.toml"
    bad.write_text('[station]\nnmae = "x"\n[hashing]\nwindow_mib = 0\n', encoding="utf-8")
    proc = run_cli("check-config", bad, check=2)
    lines = proc.stderr.strip().splitlines()
    assert "\\x0a" not in proc.stderr and len(lines) == 3, proc.stderr
    assert lines[0].endswith("invalid config, fix these keys:")
    assert sorted(line.split(":")[0] for line in lines[1:]) == [
        "  hashing.window_mib",
        "  station.nmae",
    ]
