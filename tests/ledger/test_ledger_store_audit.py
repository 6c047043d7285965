"""The store audit opens regular files only: whatever else sits in the store is named as
"not a regular file", never followed, read or waited on."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from station_cli import ingest_json, run_cli

from hashing import CopyEngine, CopyResult, EvidenceStore, HashOptions
from ledger.audit import ClipRecord, audit_store

OPTIONS = HashOptions(read_size=64 << 10, window_size=256 << 10, buffer_budget_bytes=1 << 20)


def record(index: int, result: CopyResult) -> ClipRecord:
    return ClipRecord(
        index, f"c{index}", result.sha256, result.size, result.window_size, result.windows
    )


@pytest.fixture
def stored(tmp_path: Path) -> tuple[EvidenceStore, list[ClipRecord]]:
    """A real store holding three copied clips, and what their leaves say."""
    store = EvidenceStore(tmp_path / "store").create()
    engine = CopyEngine(store, OPTIONS)
    clips = []
    for index in range(3):
        source = tmp_path / f"FILE000{index}.MP4"
        source.write_bytes(os.urandom(300_000 + index))
        clips.append(record(index, engine.copy(source)))
    return store, clips


def replace_with(path: Path, kind: str, content: Path) -> None:
    """Put ``kind`` where ``path`` is; a symlink points at an intact copy of the content."""
    path.unlink()
    if kind == "symlink":
        path.symlink_to(content)
    elif kind == "folder":
        path.mkdir()
        shutil.copy(content, path / path.name)  # the content, one level too deep
    elif kind == "device":
        try:
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("this machine does not let the tests make a device node")
    else:
        raise AssertionError(kind)


KINDS = {"symlink": "a symlink", "folder": "a folder", "device": "a character device"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_store_audit_names_what_is_not_a_regular_file_in_an_objects_place(
    stored: tuple[EvidenceStore, list[ClipRecord]], kind: str, tmp_path: Path
) -> None:
    store, clips = stored
    victim = store.path_for(clips[1].sha256)
    intact = tmp_path / "intact-copy"
    shutil.copy(victim, intact)
    replace_with(victim, kind, intact)
    assert not store.contains(clips[1].sha256) and store.contains(clips[0].sha256)

    result = audit_store(store, clips, set())

    assert result.matched == 2
    assert result.problems[0] == (
        f"not a regular file: {victim} is {KINDS[kind]} where clip c1 (leaf 1) belongs, so "
        "its content is not there: find out who put it there, and restore the clip from "
        "central storage"
    )
    if kind == "folder":  # the content, one level down, is found: moved, not missing
        assert (result.moved, result.missing) == (1, 0)
        assert result.problems[1].startswith(f"moved: clip c1 (leaf 1) content {clips[1].sha256}")
        assert len(result.problems) == 2
    else:
        assert (result.moved, result.missing) == (0, 1)
        assert len(result.problems) == 1


def test_store_audit_names_a_symlink_elsewhere_as_extra_and_never_follows_it(
    stored: tuple[EvidenceStore, list[ClipRecord]], tmp_path: Path
) -> None:
    store, clips = stored
    outside = tmp_path / "station-secret"
    outside.write_bytes(b"not evidence")
    link = store.objects_dir / "ff" / "ff" / "link"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    link_to_folder = store.objects_dir / "aa"
    link_to_folder.symlink_to(tmp_path)

    result = audit_store(store, clips, set())

    assert (result.matched, result.extra) == (3, 2)
    assert result.problems == [
        f"not a regular file: {link_to_folder} is a symlink; the store holds regular files "
        "only: find out who put it there",
        f"not a regular file: {link} is a symlink; the store holds regular files only: "
        "find out who put it there",
    ]


@pytest.fixture
def station(recorder: Path, tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    data = tmp_path / "data"
    clips = ingest_json(recorder, data)["clips"]
    run_cli("verify", "--data-dir", data, check=0)
    return data, sorted(clips, key=lambda clip: str(clip["sha256"]))


def test_verify_reports_a_fifo_and_a_symlink_in_the_store_and_never_hangs(
    station: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    data, clips = station
    store = EvidenceStore(data / "store")
    fifo_home = store.path_for(clips[0]["sha256"])
    fifo_home.unlink()
    os.mkfifo(fifo_home)  # opening it to read would wait for a writer forever
    link_home = store.path_for(clips[1]["sha256"])
    intact = tmp_path / "intact-copy"
    shutil.copy(link_home, intact)
    link_home.unlink()
    link_home.symlink_to(intact)  # was counted as matched
    stray = store.objects_dir / "ff" / "ff" / "stray-fifo"
    stray.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(stray)

    proc = run_cli("verify", "--data-dir", data, check=1, timeout=120)

    assert f"not a regular file: {fifo_home} is a FIFO where clip {clips[0]['clip_id']}" in (
        proc.stdout
    )
    assert f"not a regular file: {link_home} is a symlink where clip {clips[1]['clip_id']}" in (
        proc.stdout
    )
    assert f"not a regular file: {stray} is a FIFO;" in proc.stdout
    assert f"{len(clips) - 2} matched, 0 modified, 2 missing, 1 extra" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
