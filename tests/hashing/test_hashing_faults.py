"""Faults of the recorder and the station: nothing half-done is ever taken for evidence."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashing import (
    BufferBudget,
    CopyEngine,
    CopyVerificationError,
    EvidenceStore,
    FileSource,
    HashingError,
    HashOptions,
    NotRegularFileError,
    SourceChangedError,
    SourceReadError,
    StoreFullError,
    open_source,
)

READ = 64 << 10
WINDOW = 256 << 10
OPTIONS = HashOptions(read_size=READ, window_size=WINDOW, buffer_budget_bytes=1 << 20)
REPO = Path(__file__).resolve().parents[2]


def assert_store_sound(store: EvidenceStore) -> None:
    """Every file under objects/ is complete, read-only and named by its SHA-256."""
    for name, path in store.iter_objects():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == name
        assert path == store.path_for(name)
        assert path.stat().st_mode & 0o777 == 0o444


class Clip:
    """A recorder file and what it looked like before the test touched the station."""

    def __init__(self, path: Path, size: int) -> None:
        path.write_bytes(os.urandom(size))
        self.path = path
        self.data = path.read_bytes()
        self.mtime_ns = path.stat().st_mtime_ns

    def assert_untouched(self) -> None:
        assert self.path.read_bytes() == self.data
        assert self.path.stat().st_mtime_ns == self.mtime_ns


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(tmp_path / "store").create()


@pytest.fixture
def clip(tmp_path: Path) -> Clip:
    return Clip(tmp_path / "FILE0001.MP4", 3 * WINDOW + 1000)


class FailingAt:
    """A real file that fails like a dying USB stick once a read reaches ``offset``."""

    def __init__(self, path: Path, offset: int, *, error: int | None = errno.EIO) -> None:
        self._file = open_source(path)
        self._offset = offset
        self._error = error

    def stat(self) -> os.stat_result:
        return self._file.stat()

    def read_into(self, buffer: memoryview, offset: int) -> int:
        if offset + len(buffer) > self._offset:
            if self._error is None:  # the device stops answering: a short read
                return 0
            raise OSError(self._error, os.strerror(self._error))
        return self._file.read_into(buffer, offset)

    def close(self) -> None:
        self._file.close()


@pytest.mark.parametrize("error", [errno.EIO, None], ids=["eio", "short-read"])
def test_hashing_read_error_keeps_staging_then_resumes(
    store: EvidenceStore, clip: Clip, error: int | None
) -> None:
    failing = CopyEngine(
        store, OPTIONS, open_source=lambda p: FailingAt(p, 2 * WINDOW + 5, error=error)
    )
    with pytest.raises(SourceReadError, match="dock it again"):
        failing.copy(clip.path, resume_key="ab01")
    assert list(store.iter_objects()) == []
    assert sorted(p.name for p in store.staging_dir.iterdir()) == ["ab01.journal", "ab01.part"]
    clip.assert_untouched()

    result = CopyEngine(store, OPTIONS).copy(clip.path, resume_key="ab01")
    assert result.resumed_bytes == 2 * WINDOW
    assert result.source_bytes_read == len(clip.data) - 2 * WINDOW
    assert result.sha256 == hashlib.sha256(clip.data).hexdigest()
    assert result.path.read_bytes() == clip.data
    assert list(store.staging_dir.iterdir()) == []
    assert_store_sound(store)
    clip.assert_untouched()


def test_hashing_read_error_without_resume_key_removes_staging(
    store: EvidenceStore, clip: Clip
) -> None:
    engine = CopyEngine(store, OPTIONS, open_source=lambda p: FailingAt(p, WINDOW))
    with pytest.raises(SourceReadError):
        engine.copy(clip.path)
    assert list(store.staging_dir.iterdir()) == []
    assert list(store.iter_objects()) == []


def test_hashing_file_growing_during_copy(store: EvidenceStore, clip: Clip) -> None:
    appended: list[int] = []

    def recorder_still_writing(n: int) -> None:
        if not appended:  # a real append through the file system, mid-read
            with open(clip.path, "ab") as writer:
                writer.write(b"more footage")
            appended.append(n)

    with pytest.raises(SourceChangedError, match="still being written"):
        CopyEngine(store, OPTIONS).copy(
            clip.path, resume_key="ab02", progress=recorder_still_writing
        )
    assert appended
    assert list(store.iter_objects()) == []
    assert list(store.staging_dir.iterdir()) == []


def test_hashing_file_truncated_during_copy(store: EvidenceStore, clip: Clip) -> None:
    def truncate(_n: int) -> None:
        os.truncate(clip.path, WINDOW)

    with pytest.raises(SourceChangedError):
        CopyEngine(store, OPTIONS).copy(clip.path, progress=truncate)
    assert list(store.iter_objects()) == []
    assert list(store.staging_dir.iterdir()) == []


@pytest.fixture
def tiny_store(tmp_path: Path) -> Iterator[EvidenceStore]:
    """A store on a real 2 MiB tmpfs: the station's disk fills up for real."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        yield EvidenceStore(mount / "store").create()
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_hashing_disk_full(tiny_store: EvidenceStore, tmp_path: Path) -> None:
    small = Clip(tmp_path / "small.mp4", 100_000)
    big = Clip(tmp_path / "big.mp4", 4 << 20)
    engine = CopyEngine(tiny_store, OPTIONS)
    engine.copy(small.path, resume_key="01")
    with pytest.raises(StoreFullError, match="free space"):
        engine.copy(big.path, resume_key="02")
    assert list(tiny_store.staging_dir.iterdir()) == []
    assert [name for name, _ in tiny_store.iter_objects()] == [
        hashlib.sha256(small.data).hexdigest()
    ]
    assert_store_sound(tiny_store)
    big.assert_untouched()


def test_hashing_copy_corrupted_on_disk_is_never_committed(
    store: EvidenceStore, clip: Clip
) -> None:
    done = [0]

    def flip_staged_byte(n: int) -> None:
        done[0] += n
        if done[0] == len(clip.data):  # all written, not yet verified
            (part,) = store.staging_dir.glob("*.part")
            with open(part, "r+b") as staged:
                first = staged.read(1)
                staged.seek(0)
                staged.write(bytes([first[0] ^ 1]))

    with pytest.raises(CopyVerificationError, match="differs"):
        CopyEngine(store, OPTIONS).copy(clip.path, resume_key="ab03", progress=flip_staged_byte)
    assert list(store.iter_objects()) == []
    assert list(store.staging_dir.iterdir()) == []
    clip.assert_untouched()


def interrupt(store: EvidenceStore, clip: Clip, key: str) -> None:
    engine = CopyEngine(store, OPTIONS, open_source=lambda p: FailingAt(p, 2 * WINDOW + 5))
    with pytest.raises(SourceReadError):
        engine.copy(clip.path, resume_key=key)


def test_hashing_staged_prefix_not_matching_its_journal_restarts(
    store: EvidenceStore, clip: Clip
) -> None:
    interrupt(store, clip, "ab04")
    with open(store.staging_dir / "ab04.part", "r+b") as staged:
        staged.seek(WINDOW + 7)
        staged.write(b"X")  # a power cut kept the journal line but not the data
    result = CopyEngine(store, OPTIONS).copy(clip.path, resume_key="ab04")
    assert (result.resumed_bytes, result.source_bytes_read) == (0, len(clip.data))
    assert result.path.read_bytes() == clip.data
    assert_store_sound(store)


@pytest.mark.parametrize("damage", ["garbage", "other-size", "torn-line"])
def test_hashing_stale_or_corrupt_journal_is_discarded(
    store: EvidenceStore, clip: Clip, damage: str
) -> None:
    interrupt(store, clip, "ab05")
    journal = store.staging_dir / "ab05.journal"
    text = journal.read_text()
    if damage == "garbage":
        journal.write_bytes(os.urandom(300))
    elif damage == "other-size":
        journal.write_text(text.replace(f'"size": {len(clip.data)}', '"size": 5'))
    else:
        journal.write_text(text.rstrip("\n")[:-3])
    result = CopyEngine(store, OPTIONS).copy(clip.path, resume_key="ab05")
    expected = WINDOW if damage == "torn-line" else 0
    assert result.resumed_bytes == expected
    assert result.sha256 == hashlib.sha256(clip.data).hexdigest()
    assert list(store.staging_dir.iterdir()) == []
    assert_store_sound(store)


def test_hashing_same_key_twice_at_once_is_refused(store: EvidenceStore, clip: Clip) -> None:
    engine = CopyEngine(store, OPTIONS)
    refused: list[HashingError] = []

    def copy_again(_n: int) -> None:
        if not refused:
            with pytest.raises(HashingError, match="another copy") as info:
                engine.copy(clip.path, resume_key="ab06")
            refused.append(info.value)

    result = engine.copy(clip.path, resume_key="ab06", progress=copy_again)
    assert refused and result.path.read_bytes() == clip.data


CHILD = """
import sys, time
from pathlib import Path
from hashing import CopyEngine, EvidenceStore, HashOptions
store, source, size = EvidenceStore(Path(sys.argv[1])), Path(sys.argv[2]), int(sys.argv[3])
options = HashOptions(read_size=64 << 10, window_size=256 << 10, buffer_budget_bytes=1 << 20)
done = 0
def progress(n):
    global done
    done += n
    if done >= size // 2:
        print("HALF", flush=True)
        time.sleep(60)
CopyEngine(store, options).copy(source, resume_key="dead9", progress=progress)
"""


def test_hashing_kill_9_mid_copy_then_resume(store: EvidenceStore, tmp_path: Path) -> None:
    clip = Clip(tmp_path / "FILE0002.MP4", 40 * WINDOW + 4321)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store.root), str(clip.path), str(len(clip.data))],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "HALF"
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -9
    assert list(store.iter_objects()) == []

    result = CopyEngine(store, OPTIONS).copy(clip.path, resume_key="dead9")
    size = len(clip.data)
    assert result.resumed_bytes > 0
    assert result.source_bytes_read <= size - result.resumed_bytes + WINDOW
    # The child stopped reading at half; its journal trails its reads by at most what was
    # in flight (the child's 1 MiB buffer budget), so the resume reads no more than the
    # other half and that: a loaded machine had the journal one window behind.
    assert result.source_bytes_read <= size - size // 2 + (1 << 20)
    assert result.sha256 == hashlib.sha256(clip.data).hexdigest()
    assert result.path.read_bytes() == clip.data
    assert list(store.staging_dir.iterdir()) == []
    assert_store_sound(store)
    clip.assert_untouched()


def refuse(store: EvidenceStore, path: Path) -> None:
    with pytest.raises(NotRegularFileError, match="regular file"):
        CopyEngine(store, OPTIONS).copy(path, resume_key="ab07")
    assert list(store.staging_dir.iterdir()) == []
    assert list(store.iter_objects()) == []


def test_hashing_refuses_symlink(store: EvidenceStore, clip: Clip, tmp_path: Path) -> None:
    link = tmp_path / "link.mp4"
    link.symlink_to(clip.path)
    refuse(store, link)


def test_hashing_refuses_fifo_without_hanging(store: EvidenceStore, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.mp4"
    os.mkfifo(fifo)  # no writer: a blocking open would hang forever
    refuse(store, fifo)


def test_hashing_refuses_device_and_folder(store: EvidenceStore, tmp_path: Path) -> None:
    device = tmp_path / "null.mp4"
    os.mknod(device, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    refuse(store, device)
    refuse(store, tmp_path)


def test_hashing_open_source_reads_real_file(clip: Clip) -> None:
    source = open_source(clip.path)
    assert isinstance(source, FileSource)
    buffer = bytearray(10)
    assert source.read_into(memoryview(buffer), 5) == 10
    assert bytes(buffer) == clip.data[5:15]
    source.close()


@pytest.mark.parametrize("damage", ["last-byte", "truncated"])
def test_hashing_verify_catches_damage_anywhere_in_the_copy(
    store: EvidenceStore, clip: Clip, damage: str
) -> None:
    """The BLAKE3 re-read covers every byte and the length, not only the start."""
    done = [0]

    def damage_staged_copy(n: int) -> None:
        done[0] += n
        if done[0] == len(clip.data):
            (part,) = store.staging_dir.glob("*.part")
            if damage == "truncated":
                os.truncate(part, len(clip.data) - 1)
            else:
                with open(part, "r+b") as staged:
                    staged.seek(len(clip.data) - 1)
                    staged.write(bytes([clip.data[-1] ^ 0x80]))

    with pytest.raises(CopyVerificationError):
        CopyEngine(store, OPTIONS).copy(clip.path, progress=damage_staged_copy)
    assert list(store.iter_objects()) == []
    assert list(store.staging_dir.iterdir()) == []


class Cancelled(Exception):
    pass


def cancel(_n: int) -> None:
    raise Cancelled


def test_hashing_failed_copies_give_every_buffer_back(store: EvidenceStore, clip: Clip) -> None:
    """Chunks read ahead but not consumed when a copy fails go back to the shared budget."""
    budget = BufferBudget(2 * READ, READ)
    reader = CopyEngine(
        store, OPTIONS, budget=budget, open_source=lambda p: FailingAt(p, 2 * WINDOW + 5)
    )
    with pytest.raises(SourceReadError):
        reader.copy(clip.path)
    with pytest.raises(Cancelled):  # the consumer stops with chunks still read ahead
        CopyEngine(store, OPTIONS, budget=budget).copy(clip.path, progress=cancel)
    assert budget.allocated_bytes == 2 * READ
    held: list[object] = []
    # A leaked buffer would make this wait forever: give it a (generous) bound.
    taker = threading.Thread(target=lambda: held.extend((budget.acquire(), budget.acquire())))
    taker.daemon = True
    taker.start()
    taker.join(timeout=30)
    assert len(held) == 2
    for buffer in held:
        budget.release(buffer)  # type: ignore[arg-type]
    result = CopyEngine(store, OPTIONS, budget=budget).copy(clip.path)
    assert result.path.read_bytes() == clip.data
