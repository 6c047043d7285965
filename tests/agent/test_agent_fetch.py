"""`evidock fetch` hands out a clip through a temporary file of its own: what an earlier,
interrupted fetch left never blocks it; a bad --out is one line before the access leaf;
a failure after the leaf is one line too, and leaves no partial file behind."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from station_cli import ingest_json, leaf_count, run_cli

from hashing import EvidenceStore


@pytest.fixture(scope="module")
def ingested(
    recorder_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """One station with the recorder ingested, made once for this file's tests."""
    root = tmp_path_factory.mktemp("fetch")
    recorder = root / "mount" / recorder_template.name
    shutil.copytree(recorder_template, recorder)
    clips = ingest_json(recorder, root / "data")["clips"]
    return root / "data", max(clips, key=lambda clip: int(clip["size"]))


@pytest.fixture
def station(ingested: tuple[Path, dict[str, Any]], tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of that station that a test may change."""
    data, clip = ingested
    shutil.copytree(data, tmp_path / "data", symlinks=True)
    return tmp_path / "data", clip


def fetch(data: Path, clip_id: str, out: Path, *, check: int) -> subprocess.CompletedProcess[str]:
    proc = run_cli(
        "fetch",
        clip_id,
        "--data-dir",
        data,
        "--out",
        out,
        "--who",
        "auditor-7",
        "--purpose",
        "hearing 2026-12-01",
        check=check,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def stored(data: Path, sha256: str) -> Path:
    return EvidenceStore(data / "store").path_for(sha256)


def test_fetch_is_not_blocked_by_what_an_interrupted_fetch_left(
    station: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    data, clip = station
    outdir = tmp_path / "handed-out"
    outdir.mkdir()
    out = outdir / "clip.mp4"
    stale = [outdir / ".clip.mp4.part", outdir / ".clip.mp4.0123456789ab.part"]
    for path in stale:
        path.write_bytes(b"half a clip from a fetch that was killed")
    before = leaf_count(data)

    fetch(data, clip["clip_id"], out, check=0)

    assert out.read_bytes() == stored(data, clip["sha256"]).read_bytes()
    assert leaf_count(data) == before + 1
    # Not ours to judge: a leftover is left as it was, and nothing else is left over.
    assert sorted(outdir.iterdir()) == sorted([out, *stale])
    assert all(p.read_bytes().startswith(b"half a clip") for p in stale)


@pytest.mark.parametrize("where", ["no-folder", "a-file-as-folder", "exists", "dangling-link"])
def test_fetch_refuses_a_bad_out_in_one_line_before_the_access_leaf(
    station: tuple[Path, dict[str, Any]], tmp_path: Path, where: str
) -> None:
    data, clip = station
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    out = {
        "no-folder": tmp_path / "no-such-folder" / "clip.mp4",
        "a-file-as-folder": a_file / "clip.mp4",
        "exists": a_file,
        "dangling-link": tmp_path / "link.mp4",
    }[where]
    if where == "dangling-link":
        out.symlink_to(tmp_path / "nowhere")
    before = leaf_count(data)

    proc = fetch(data, clip["clip_id"], out, check=2)

    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert str(out) in proc.stderr
    assert leaf_count(data) == before
    assert a_file.read_text() == "not a folder"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs: a clip does not fit, so writing it fails for real (ENOSPC)."""
    mount = tmp_path / "stick"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_fetch_failing_to_write_after_the_leaf_is_one_line_and_leaves_nothing(
    station: tuple[Path, dict[str, Any]], tiny_disk: Path
) -> None:
    data, clip = station
    assert int(clip["size"]) > 64 << 10
    before = leaf_count(data)

    proc = fetch(data, clip["clip_id"], tiny_disk / "clip.mp4", check=2)

    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "No space left on device" in proc.stderr and "nothing was handed out" in proc.stderr
    assert leaf_count(data) == before + 1  # the access was asked for: it stays on record
    assert list(tiny_disk.iterdir()) == []


def test_fetch_never_opens_a_fifo_put_in_place_of_the_clip(
    station: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    data, clip = station
    home = stored(data, clip["sha256"])
    home.unlink()
    os.mkfifo(home)  # opening it to read would wait for a writer forever
    out = tmp_path / "clip.mp4"

    proc = fetch(data, clip["clip_id"], out, check=1)

    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"{home} is a FIFO, not a regular file" in proc.stderr
    assert "evidock verify" in proc.stderr
    assert list(tmp_path.glob("*clip.mp4*")) == []
