"""What interrupted copies leave in staging/ is swept; evidence and running copies never."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path

import pytest

from hashing import CopyEngine, EvidenceStore, HashOptions, SourceReadError, open_source

READ = 64 << 10
WINDOW = 256 << 10
OPTIONS = HashOptions(read_size=READ, window_size=WINDOW, buffer_budget_bytes=1 << 20)
DAY = 24 * 3600.0


class FailingAt:
    """A real file whose reads fail with EIO from ``offset`` on (a recorder pulled out)."""

    def __init__(self, path: Path, offset: int) -> None:
        self._file = open_source(path)
        self._offset = offset

    def stat(self) -> os.stat_result:
        return self._file.stat()

    def read_into(self, buffer: memoryview, offset: int) -> int:
        if offset + len(buffer) > self._offset:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return self._file.read_into(buffer, offset)

    def close(self) -> None:
        self._file.close()


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def staged(store: EvidenceStore) -> list[str]:
    return sorted(p.name for p in store.staging_dir.iterdir())


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(tmp_path / "store").create()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "FILE0001.MP4"
    path.write_bytes(os.urandom(3 * WINDOW + 99))
    return path


def interrupted(store: EvidenceStore, clip: Path, key: str) -> None:
    engine = CopyEngine(store, OPTIONS, open_source=lambda p: FailingAt(p, 2 * WINDOW))
    with pytest.raises(SourceReadError):
        engine.copy(clip, resume_key=key)


def test_hashing_sweep_removes_old_keyed_and_leftover_anonymous_files(
    store: EvidenceStore, clip: Path
) -> None:
    committed = CopyEngine(store, OPTIONS).copy(clip)
    age(committed.path, 30 * DAY)
    interrupted(store, clip, "a1")  # old: its recorder never came back
    interrupted(store, clip, "b2")  # young: may still be resumed
    for name in ("a1.part", "a1.journal"):
        age(store.staging_dir / name, 8 * DAY)
    leftover = store.staging_dir / f"anon-{'0' * 32}.part"  # a process killed mid-copy
    leftover.write_bytes(b"partial")
    age(leftover, 120)
    unknown = store.staging_dir / "operator-notes.txt"
    unknown.write_text("not ours")
    age(unknown, 30 * DAY)

    removed = store.sweep_staging(7 * DAY)

    assert sorted(p.name for p in removed) == ["a1.journal", "a1.part", leftover.name]
    assert staged(store) == ["b2.journal", "b2.part", "operator-notes.txt"]
    assert [path for _, path in store.iter_objects()] == [committed.path]
    assert committed.path.read_bytes() == clip.read_bytes()
    assert store.sweep_staging(7 * DAY) == []
    # The young interrupted copy still resumes from its staged windows.
    resumed = CopyEngine(store, OPTIONS).copy(clip, resume_key="b2")
    assert resumed.resumed_bytes == 2 * WINDOW
    # The old one starts again from zero, and is still right.
    again = CopyEngine(store, OPTIONS).copy(clip, resume_key="a1")
    assert (again.resumed_bytes, again.sha256) == (0, committed.sha256)


def test_hashing_sweep_keeps_a_fresh_anonymous_file(store: EvidenceStore) -> None:
    fresh = store.staging_dir / f"anon-{'1' * 32}.part"
    fresh.write_bytes(b"a copy that is just starting")
    assert store.sweep_staging(0) == []
    assert fresh.exists()


@pytest.mark.parametrize("key", [None, "c3"], ids=["anonymous", "keyed"])
def test_hashing_sweep_never_takes_a_running_copy(
    store: EvidenceStore, clip: Path, key: str | None
) -> None:
    swept: list[list[Path]] = []

    def sweep_mid_copy(_n: int) -> None:
        if not swept:
            for path in store.staging_dir.iterdir():
                age(path, 30 * DAY)  # looks abandoned, but a copy holds it
            swept.append(store.sweep_staging(0))

    result = CopyEngine(store, OPTIONS).copy(clip, resume_key=key, progress=sweep_mid_copy)
    assert swept == [[]]
    assert result.sha256 == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert result.path.read_bytes() == clip.read_bytes()
    assert staged(store) == []


def test_hashing_sweep_ignores_symlinks_and_refuses_negative_age(
    store: EvidenceStore, tmp_path: Path
) -> None:
    outside = tmp_path / "station-file"
    outside.write_text("keep")
    (store.staging_dir / "d4.part").symlink_to(outside)
    (store.staging_dir / "d4.journal").symlink_to(outside)
    assert store.sweep_staging(0) == []
    assert outside.read_text() == "keep"
    with pytest.raises(ValueError, match="max_age_seconds"):
        store.sweep_staging(-1)
