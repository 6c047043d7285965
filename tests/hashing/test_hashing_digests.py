"""Any content, size and chunking gives the digests of one-shot hashlib / blake3 / coreutils."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.models import HashingSection
from hashing import BufferBudget, CopyEngine, EvidenceStore, HashOptions, hash_file

READ = 4096
WINDOW = 3 * READ + 17  # windows deliberately straddle chunk boundaries


def expected_windows(data: bytes, window: int) -> tuple[str, ...]:
    # What `dd bs=WINDOW skip=I count=1 | b3sum` prints for each window.
    return tuple(
        blake3.blake3(data[i : i + window]).hexdigest() for i in range(0, len(data), window)
    )


def check_copy(
    tmp: Path, data: bytes, read_size: int, window: int, *, sm3: bool, verify: str = "reread"
) -> None:
    source = tmp / "clip.mp4"
    source.write_bytes(data)
    store = EvidenceStore(tmp / "store")
    options = HashOptions(
        read_size=read_size,
        window_size=window,
        sm3=sm3,
        verify=verify,  # type: ignore[arg-type]
        buffer_budget_bytes=8 * read_size,
    )
    engine = CopyEngine(store, options, budget=BufferBudget(8 * read_size, read_size))
    seen: list[int] = []
    result = engine.copy(source, resume_key="c0ffee", progress=seen.append)
    sha256 = hashlib.sha256(data).hexdigest()
    assert result.sha256 == sha256
    assert result.blake3 == blake3.blake3(data).hexdigest()
    assert result.sm3 == (hashlib.new("sm3", data).hexdigest() if sm3 else None)
    assert result.windows == expected_windows(data, window)
    assert result.size == len(data) == sum(seen)
    assert all(0 < n <= read_size for n in seen)
    assert result.path == store.path_for(sha256)
    assert result.path.read_bytes() == data
    assert result.path.stat().st_mode & 0o777 == 0o444
    assert result.verified == (verify == "reread")
    assert (result.resumed_bytes, result.source_bytes_read) == (0, len(data))
    assert list(store.staging_dir.iterdir()) == []
    on_disk = hash_file(result.path, options)
    assert (on_disk.sha256, on_disk.blake3, on_disk.windows) == (
        result.sha256,
        result.blake3,
        result.windows,
    )


EDGE_SIZES = [0, 1, READ - 1, READ, READ + 1, WINDOW - 1, WINDOW, WINDOW + 1, 5 * WINDOW + 3]


@pytest.mark.parametrize("size", EDGE_SIZES)
def test_hashing_edge_sizes_match_one_shot_digests(tmp_path: Path, size: int) -> None:
    check_copy(tmp_path, os.urandom(size), READ, WINDOW, sm3=size % 2 == 0)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=40_000),
    read_size=st.integers(min_value=1, max_value=9000),
    window=st.integers(min_value=1, max_value=20_000),
    sm3=st.booleans(),
    verify=st.sampled_from(["reread", "none"]),
)
def test_hashing_any_chunking_gives_the_same_digests(
    tmp_path_factory: pytest.TempPathFactory,
    data: bytes,
    read_size: int,
    window: int,
    sm3: bool,
    verify: str,
) -> None:
    check_copy(tmp_path_factory.mktemp("p"), data, read_size, window, sm3=sm3, verify=verify)


def test_hashing_matches_sha256sum_and_b3sum(tmp_path: Path) -> None:
    """Several windows with the default 1 MiB reads and 8 MiB windows (threaded lanes)."""
    for size in (0, 1, 8 << 20, (19 << 20) + 12345):
        source = tmp_path / f"clip-{size}.mp4"
        source.write_bytes(os.urandom(size))
        engine = CopyEngine(EvidenceStore(tmp_path / "store"), HashOptions())
        result = engine.copy(source)
        sha = subprocess.run(["sha256sum", source], capture_output=True, text=True, check=True)
        b3 = subprocess.run(["b3sum", source], capture_output=True, text=True, check=True)
        assert result.sha256 == sha.stdout.split()[0]
        assert result.blake3 == b3.stdout.split()[0]
        assert len(result.windows) == -(-size // (8 << 20))


def test_hashing_same_content_twice_is_deduplicated(tmp_path: Path) -> None:
    data = os.urandom(50_000)
    (tmp_path / "a.mp4").write_bytes(data)
    (tmp_path / "b.mp4").write_bytes(data)
    store = EvidenceStore(tmp_path / "store")
    engine = CopyEngine(store, HashOptions(read_size=4096, buffer_budget_bytes=1 << 20))
    first = engine.copy(tmp_path / "a.mp4", resume_key="aa")
    second = engine.copy(tmp_path / "b.mp4", resume_key="bb")
    assert (first.deduplicated, second.deduplicated) == (False, True)
    assert first.path == second.path and first.path.read_bytes() == data
    assert [name for name, _ in store.iter_objects()] == [first.sha256]
    assert list(store.staging_dir.iterdir()) == []


def test_hashing_options_from_config() -> None:
    section = HashingSection(
        algorithms=("sha256", "blake3", "sm3"), read_size_kib=256, window_mib=4, verify="none"
    )
    options = HashOptions.from_config(section)
    assert options == HashOptions(
        read_size=256 << 10,
        window_size=4 << 20,
        sm3=True,
        verify="none",
        buffer_budget_bytes=64 << 20,
    )
    assert HashOptions.from_config(HashingSection()).sm3 is False
