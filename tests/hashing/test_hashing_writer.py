"""The staging writer: whole blocks around the page cache, everything else through it,
and the same bytes on disk either way."""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path

import pytest

from hashing import CopyEngine, EvidenceStore, HashOptions
from hashing.diskio import StagingWriter

MIB = 1 << 20


def _write_pieces(path: Path, data: bytes, pieces: list[int]) -> bool:
    """Write ``data`` in ``pieces`` from page-aligned buffers; whether O_DIRECT was open."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    writer = StagingWriter(fd, 0)
    direct = writer.direct
    try:
        offset = 0
        for size in pieces:
            buffer = mmap.mmap(-1, max(size, 1))
            buffer[:size] = data[offset : offset + size]
            view = memoryview(buffer)[:size]
            writer.write(view, offset)
            view.release()
            buffer.close()
            offset += size
        os.fsync(fd)
    finally:
        writer.close()
        os.close(fd)
    return direct


def test_aligned_and_unaligned_pieces_land_exactly(tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 4096 + 123)
    # Whole aligned chunks, a block-sized one, then an unaligned tail.
    direct = _write_pieces(tmp_path / "copy", data, [MIB, MIB, MIB, 4096, 123])
    assert (tmp_path / "copy").read_bytes() == data
    # Around the page cache exactly where the file system allows O_DIRECT.
    assert direct == _allows_o_direct(tmp_path)


def _allows_o_direct(folder: Path) -> bool:
    try:
        fd = os.open(folder / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    return True


def test_tmpfs_is_written_as_it_allows() -> None:
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm (tmpfs) on this machine")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        path = Path(folder) / "copy"
        data = os.urandom(2 * MIB + 7)
        direct = _write_pieces(path, data, [MIB, MIB, 7])
        assert path.read_bytes() == data
        assert direct == _allows_o_direct(Path(folder))


def test_an_unaligned_offset_goes_through_the_page_cache(tmp_path: Path) -> None:
    data = os.urandom(100 + 2 * MIB)
    _write_pieces(tmp_path / "copy", data, [100, MIB, MIB])
    assert (tmp_path / "copy").read_bytes() == data


def test_a_copy_on_tmpfs_commits_the_same_digests_as_on_disk(tmp_path: Path) -> None:
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm (tmpfs) on this machine")
    source = tmp_path / "FILE0001.MP4"
    source.write_bytes(os.urandom(5 * MIB + 321))
    options = HashOptions(read_size=MIB, window_size=2 * MIB, buffer_budget_bytes=8 * MIB)
    on_disk = CopyEngine(EvidenceStore(tmp_path / "store"), options).copy(source)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        on_tmpfs = CopyEngine(EvidenceStore(Path(folder) / "store"), options).copy(source)
        assert on_tmpfs.path.read_bytes() == source.read_bytes()
    assert (on_tmpfs.sha256, on_tmpfs.blake3, on_tmpfs.windows) == (
        on_disk.sha256,
        on_disk.blake3,
        on_disk.windows,
    )
    assert on_disk.path.read_bytes() == source.read_bytes()
    assert on_disk.verified and on_tmpfs.verified
