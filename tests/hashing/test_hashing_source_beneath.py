"""Opening a recorder's file below its volume root: never through a link, at any depth.

The scan sees folders; the copy comes later. A folder swapped for a link in between
must not lead the copy out of the recorder, and a file deeper than ``PATH_MAX`` must
be copied (or refused with a reason), never crash the copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from deep_trees import DEPTH, deep_folder, make_deep

from docking import open_volume
from hashing import (
    CopyEngine,
    EvidenceStore,
    HashOptions,
    NotRegularFileError,
    SourceReadError,
    open_source,
)

OPTIONS = HashOptions(read_size=64 << 10, window_size=256 << 10, buffer_budget_bytes=1 << 20)
MEDIA = "DCIM/100MEDIA"


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(tmp_path / "store").create()


def stored_digests(store: EvidenceStore) -> set[str]:
    return {hashlib.sha256(path.read_bytes()).hexdigest() for _, path in store.iter_objects()}


def test_a_folder_swapped_for_a_link_after_the_scan_is_refused(
    recorder: Path, tmp_path: Path, store: EvidenceStore
) -> None:
    volume = open_volume(recorder)
    scan = volume.scan()
    clip = next(f for f in scan.files if f.rel_path.startswith(MEDIA.encode()))
    # Outside the recorder: a file of the same name and size in a folder of the same name.
    outside = tmp_path / "station-files" / "100MEDIA"
    outside.mkdir(parents=True)
    forged = os.urandom(clip.size)
    (outside / clip.path.name).write_bytes(forged)
    media = recorder / MEDIA
    shutil.move(media, tmp_path / "moved-away")
    media.symlink_to(outside, target_is_directory=True)
    assert clip.path.read_bytes() == forged, "a path-based open would now read outside"

    engine = CopyEngine(store, OPTIONS, open_source=partial(open_source, beneath=volume.root))
    with pytest.raises(NotRegularFileError) as refused:
        engine.copy(clip.path, resume_key="ab" * 32)
    message = str(refused.value)
    assert "DCIM/100MEDIA" in message and "symbolic link" in message
    assert "nothing outside it was read" in message
    assert list(store.iter_objects()) == [], "no outside byte became evidence"
    assert hashlib.sha256(forged).hexdigest() not in stored_digests(store)
    assert [p.name for p in store.staging_dir.iterdir()] == [], "nothing staged either"


def test_a_linked_file_below_the_root_is_refused(recorder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.MP4"
    outside.write_bytes(b"station file")
    link = recorder / MEDIA / "20261122_999999_0001.MP4"
    link.symlink_to(outside)
    with pytest.raises(NotRegularFileError, match="symbolic link"):
        open_source(link, beneath=recorder)


def test_a_fifo_below_the_root_does_not_hang_the_open(recorder: Path) -> None:
    fifo = recorder / MEDIA / "20261122_999999_0002.MP4"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFileError, match="a FIFO"):
        open_source(fifo, beneath=recorder)


def test_a_path_outside_the_root_is_a_bug_not_a_read(recorder: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not inside"):
        open_source(tmp_path / "elsewhere.MP4", beneath=recorder)
    with pytest.raises(ValueError, match="below"):
        open_source(recorder / MEDIA / ".." / ".." / ".." / "x", beneath=recorder)


def test_a_relative_root_names_the_same_folder(
    recorder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``evidock ingest REC`` gives a relative root; the scan's paths are absolute."""
    clip = next((recorder / MEDIA).iterdir())
    monkeypatch.chdir(recorder.parent)
    source = open_source(clip, beneath=Path(recorder.name))
    try:
        assert source.stat().st_size == clip.stat().st_size
    finally:
        source.close()


@pytest.fixture
def deep_root(tmp_path: Path) -> Iterator[Path]:
    with deep_folder(tmp_path / "REC") as root:
        yield root


def test_a_file_deeper_than_path_max_is_copied(deep_root: Path, store: EvidenceStore) -> None:
    data = os.urandom(300_000)
    rel = make_deep(deep_root, DEPTH, data)
    volume = open_volume(deep_root)
    [deep] = volume.scan().files
    assert deep.rel_path == rel and len(os.fsencode(deep.path)) > 4096

    engine = CopyEngine(store, OPTIONS, open_source=partial(open_source, beneath=volume.root))
    result = engine.copy(deep.path, resume_key="cd" * 32)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.path.read_bytes() == data

    # Opened by its full path, the same file is refused with a reason, not a crash.
    with pytest.raises(SourceReadError, match="too long"):
        CopyEngine(store, OPTIONS).copy(deep.path)
