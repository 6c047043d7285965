"""check_paths: what can be known of a config's folders before a station starts with them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config import (
    ConfigError,
    ConfigProblem,
    StationConfig,
    check_config_file,
    check_paths,
    parse_config,
    require_usable_paths,
)

# Nobody, not even root, can create anything below /proc/self.
UNWRITABLE = Path("/proc/self")


def _config(
    tmp_path: Path,
    *,
    data: Path | None = None,
    mount: Path | None = None,
    central: Path | None = None,
    anchors: Path | None = None,
) -> StationConfig:
    delivery = {"central_dir": str(central or tmp_path / "central")}
    if anchors is not None:
        delivery["anchor_dir"] = str(anchors)
    return parse_config(
        {
            "paths": {"data_dir": str(data or tmp_path / "data")},
            "docking": {"mount_root": str(mount or tmp_path / "media")},
            "delivery": delivery,
        }
    )


def _by_key(problems: list[ConfigProblem]) -> dict[str, list[ConfigProblem]]:
    out: dict[str, list[ConfigProblem]] = {}
    for problem in problems:
        out.setdefault(problem.key, []).append(problem)
    return out


def _errors(problems: list[ConfigProblem]) -> list[str]:
    return [str(p) for p in problems if p.severity == "error"]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_usable_layout_has_no_errors_and_the_check_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "data").mkdir()
    before = _tree(tmp_path)
    problems = check_paths(_config(tmp_path))  # central_dir does not exist yet: creatable
    assert _errors(problems) == []
    assert _tree(tmp_path) == before  # no probe file left, nothing created


def test_a_missing_mount_root_says_to_create_it_or_set_the_key(tmp_path: Path) -> None:
    config = _config(tmp_path)
    problems = _by_key(check_paths(config))
    (problem,) = problems["docking.mount_root"]
    assert str(problem) == (
        f"docking.mount_root: {tmp_path / 'media'} does not exist; create it, or set "
        "docking.mount_root to the folder where recorder volumes are mounted"
    )
    assert problem.severity == "error"
    with pytest.raises(ConfigError) as caught:
        require_usable_paths(config, "station.toml")
    assert str(caught.value).splitlines() == [
        "station.toml: invalid config, fix these keys:",
        f"  {problem}",
    ]


def test_a_mount_root_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "media").write_text("not a folder", encoding="utf-8")
    (problem,) = _by_key(check_paths(_config(tmp_path)))["docking.mount_root"]
    assert "is not a folder; create it, or set docking.mount_root" in problem.reason


def test_a_data_dir_that_cannot_be_used_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "file").write_text("x", encoding="utf-8")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    cases = {
        tmp_path / "file": "is not a folder; set paths.data_dir to a folder",
        tmp_path / "file" / "data": f"cannot be created: {tmp_path / 'file'} is not a folder",
        loop / "data": "cannot be used: Too many levels of symbolic links",
        UNWRITABLE: "cannot be written by ",
        UNWRITABLE / "evidock": f"does not exist and {_user()} cannot create it: {UNWRITABLE}",
    }
    for data_dir, expected in cases.items():
        problems = _by_key(check_paths(_config(tmp_path, data=data_dir)))
        (problem,) = problems["paths.data_dir"]
        assert problem.severity == "error"
        assert problem.reason.startswith(str(data_dir)), problem.reason
        assert expected in problem.reason, problem.reason


def test_a_data_dir_that_can_be_created_is_fine_and_is_not_created(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    data = tmp_path / "new" / "deeper" / "data"
    assert "paths.data_dir" not in _by_key(check_paths(_config(tmp_path, data=data)))
    assert not (tmp_path / "new").exists()


def test_central_storage_on_the_stations_own_disk_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "data").mkdir()
    inside = check_paths(_config(tmp_path, central=tmp_path / "data" / "central"))
    (problem,) = _by_key(inside)["delivery.central_dir"]
    assert problem.severity == "warning"
    assert str(problem).startswith(
        f"delivery.central_dir: warning: {tmp_path / 'data' / 'central'} is inside the data "
        f"dir ({tmp_path / 'data'}), on this station's own disk, so it is not central storage"
    )
    assert _errors(inside) == []
    assert require_usable_paths(
        _config(tmp_path, central=tmp_path / "data" / "central"), "s.toml"
    ) == [problem]

    (tmp_path / "central").mkdir()  # beside the data dir, on the same file system
    (same_disk,) = _by_key(check_paths(_config(tmp_path)))["delivery.central_dir"]
    assert same_disk.severity == "warning"
    assert "on the same disk as the data dir" in same_disk.reason


def test_central_and_anchor_folders_must_be_folders(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "central").write_text("x", encoding="utf-8")
    (tmp_path / "anchors").write_text("x", encoding="utf-8")
    problems = _by_key(check_paths(_config(tmp_path, anchors=tmp_path / "anchors")))
    assert [p.severity for p in problems["delivery.central_dir"]] == ["error"]
    assert "is not a folder" in problems["delivery.central_dir"][0].reason
    assert [p.severity for p in problems["delivery.anchor_dir"]] == ["error"]
    # Without anchor_dir the anchors go to central_dir/anchors, which cannot be made here.
    (derived,) = _by_key(check_paths(_config(tmp_path)))["delivery.anchor_dir"]
    assert derived.reason.startswith(
        f"{tmp_path / 'central' / 'anchors'} cannot be created: {tmp_path / 'central'} is not a"
    )


def test_anchors_kept_beside_the_ledger_are_a_warning(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    problems = check_paths(_config(tmp_path, anchors=tmp_path / "data" / "anchors"))
    (problem,) = _by_key(problems)["delivery.anchor_dir"]
    assert problem.severity == "warning"
    assert "checkpoints kept beside the ledger can be rewritten with it" in problem.reason


def test_folders_inside_the_mount_root_would_be_read_as_recorders(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    config = _config(tmp_path, data=tmp_path / "media" / "data")
    problems = _by_key(check_paths(config))
    assert any(
        p.severity == "error" and "where every folder is read as a docked recorder" in p.reason
        for p in problems["paths.data_dir"]
    )


def test_relative_paths_are_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "media").mkdir()
    config = parse_config(
        {
            "paths": {"data_dir": "data"},
            "docking": {"mount_root": "media"},
            "delivery": {"central_dir": "/nonexistent-central"},
        }
    )
    problems = _by_key(check_paths(config))
    for key in ("paths.data_dir", "docking.mount_root"):
        (problem,) = problems[key]
        assert problem.severity == "warning"
        assert "is a relative path" in problem.reason and "write the full path" in problem.reason


def test_check_config_file_checks_values_then_folders(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    file = tmp_path / "station.toml"
    file.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[docking]\nmount_root = "{tmp_path / "m"}"\n'
        f'[delivery]\ncentral_dir = "{tmp_path / "data" / "central"}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        check_config_file(file)
    assert [p.key for p in caught.value.problems] == ["docking.mount_root"]
    assert str(caught.value).startswith(f"{file}: invalid config, fix these keys:\n  ")

    (tmp_path / "m").mkdir()
    checked = check_config_file(file)
    assert checked.config.docking.mount_root == tmp_path / "m"
    assert [(p.key, p.severity) for p in checked.warnings] == [("delivery.central_dir", "warning")]


def _user() -> str:
    import pwd

    try:
        return f"user {pwd.getpwuid(os.geteuid()).pw_name}"
    except KeyError:
        return f"uid {os.geteuid()}"
