"""A wipe removes only what is still the file copied: files changed, added or swapped on
the recorder after their copy stay, a link is never followed out of the recorder, and a
file that cannot be removed is reported and found again by the next wipe.

What the check guarantees: a file goes only with the size and modification time of its
copy and with its first and last windows (SHA-256, the clip leaf's window size) as they
were. A byte changed in a middle window of a file whose size and time were kept is not
looked for (reading every file again would cost a second copy): nothing here claims it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from station_cli import run_cli
from wipe_station import (
    CLIP,
    FOOTAGE,
    files,
    ingest,
    leaf_files,
    paths,
    query,
    reasons,
    station,
    wipe,
    wipe_leaves,
)

from agent.station import Station
from agent.wipe import perform_wipe
from config import load_config

MEDIA = "DCIM/100MEDIA"


def _rewrite(path: Path, offset: int) -> None:
    """Change one byte at ``offset`` keeping the file's size and times."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_file_changed_on_the_recorder_after_its_copy_stays(
    recorder: Path, tmp_path: Path
) -> None:
    config = station(tmp_path, wipe="after_verified", window_mib=1)
    big = {f"{MEDIA}/20261122_0900{n:02d}_00{n}.GPS": os.urandom(5 * 2**19) for n in (6, 7, 8)}
    for name, data in big.items():
        (recorder / name).write_bytes(data)
    ingest(recorder, config)
    last, first, _untouched = sorted(big)
    _rewrite(recorder / last, -1)  # the last of three windows (1 MiB each)
    _rewrite(recorder / first, 10)  # the first window
    _rewrite(recorder / CLIP, -1)  # a one-window clip: its only window
    grown = f"{MEDIA}/20261122_083022_0002.MP4"
    size = (recorder / grown).stat().st_size
    with (recorder / grown).open("ab") as f:  # the recorder appended to it
        f.write(b"\0")
    touched = f"{MEDIA}/20261122_083022_0002.NMEA"
    os.utime(recorder / touched, ns=(0, 10**18))  # same bytes, another modification time

    result = wipe(recorder, config, check=1)
    why = reasons(result)
    assert "its last 1 MiB differ from the copy's" in why[last]
    assert "its first 1 MiB differ from the copy's" in why[first]
    assert "its first 1 MiB differ" in why[CLIP]
    assert f"size {size} -> {size + 1} bytes" in why[grown]
    assert "modification time differs" in why[touched]
    changed = {last, first, CLIP, grown, touched}
    assert paths(result["removed"]) == (FOOTAGE | set(big)) - changed
    assert set(files(recorder)) == changed | {"DEVICE.INF"}
    [leaf] = wipe_leaves(tmp_path / "d")
    assert leaf_files(leaf) == paths(result["removed"])
    run_cli("verify", "--data-dir", tmp_path / "d", check=0)


def test_a_file_added_after_the_session_stays_even_with_copied_content(
    recorder: Path, tmp_path: Path
) -> None:
    config = station(tmp_path, wipe="after_verified")
    ingest(recorder, config)
    # The same bytes as a stored clip, under a name no session saw.
    added = f"{MEDIA}/20261122_100000_0009.MP4"
    shutil.copy2(recorder / CLIP, recorder / added)
    result = wipe(recorder, config, check=1)
    assert "never copied to this station" in reasons(result)[added]
    assert paths(result["removed"]) == FOOTAGE
    assert set(files(recorder)) == {added, "DEVICE.INF"}


def test_a_link_in_a_files_or_a_folders_place_is_never_followed_nor_removed(
    recorder: Path, tmp_path: Path
) -> None:
    config = station(tmp_path, wipe="after_verified")
    ingest(recorder, config)
    # Outside the recorder: exact copies (same bytes, same times) of what was copied.
    outside = tmp_path / "outside"
    shutil.copytree(recorder, outside)
    (recorder / CLIP).unlink()
    (recorder / CLIP).symlink_to(outside / CLIP)
    shutil.rmtree(recorder / "RECORD")
    (recorder / "RECORD").symlink_to(outside / "RECORD")
    before_outside = files(outside)

    result = wipe(recorder, config, check=1)
    assert "symbolic link" in reasons(result)[CLIP]
    assert "symbolic link" in reasons(result)["RECORD"]
    assert paths(result["removed"]) == FOOTAGE - {CLIP, "RECORD/20261122_083036_0004.WAV"}
    assert files(outside) == before_outside, "nothing outside the recorder was touched"
    assert (recorder / CLIP).is_symlink() and (recorder / "RECORD").is_symlink()


def test_an_empty_file_stays_for_a_person_to_look_at(recorder: Path, tmp_path: Path) -> None:
    config = station(tmp_path, wipe="after_verified")
    empty = f"{MEDIA}/20261122_110000_0010.MP4"
    (recorder / empty).write_bytes(b"")
    ingest(recorder, config)
    result = wipe(recorder, config, check=1)
    assert "empty file (0 bytes)" in reasons(result)[empty]
    assert paths(result["removed"]) == FOOTAGE
    assert set(files(recorder)) == {empty, "DEVICE.INF"}


def test_names_that_are_not_text_are_wiped_exactly_and_shown_escaped(
    recorder: Path, tmp_path: Path
) -> None:
    config = station(tmp_path, wipe="after_verified")
    media = os.fsencode(recorder / MEDIA)
    odd = [b"20261122_120000_\xff\xfe.NMEA", b"20261122_120001_a\tb\x1b[2J.NMEA"]
    for n, name in enumerate(odd):
        with open(media + b"/" + name, "wb") as f:
            f.write(b"$GPGGA,%d\n" % n)
    ingest(recorder, config)
    proc = run_cli("wipe", recorder, "--config", config, check=0)
    assert "\x1b" not in proc.stdout and "\\x1b" in proc.stdout
    assert set(files(recorder)) == {"DEVICE.INF"}
    [leaf] = wipe_leaves(tmp_path / "d")
    b64 = {f["path_b64"] for f in leaf["body"]["files"]}
    assert b64 - {None} == {base64.b64encode(MEDIA.encode() + b"/" + odd[0]).decode()}
    assert len(leaf["body"]["files"]) == len(FOOTAGE) + 2


@pytest.fixture
def read_only_view(recorder: Path, tmp_path: Path) -> Iterator[Path]:
    """The recorder as a read-only bind mount (as the station mounts recorders)."""
    view = tmp_path / "ro" / recorder.name
    view.mkdir(parents=True)
    try:
        subprocess.run(["mount", "--bind", recorder, view], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"bind mounts are not allowed here: {exc}")
    try:
        _remount(view, "ro")
        yield view
    finally:
        subprocess.run(["umount", view], check=True)


def _remount(view: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,bind,{mode}", view], check=True)


def test_a_file_that_cannot_be_removed_is_reported_and_the_next_wipe_finds_it(
    recorder: Path, read_only_view: Path, tmp_path: Path
) -> None:
    config = station(tmp_path, wipe="after_verified")
    data = tmp_path / "d"
    ingest(recorder, config)
    # Nothing made the volume writable: the removals fail after the leaf said they go.
    failed = wipe(read_only_view, config, check=1)
    assert failed["removed"] == [] and paths(failed["failed"]) == FOOTAGE
    assert all("Read-only file system" in e["reason"] for e in failed["failed"])
    assert all("run `evidock wipe` again" in e["reason"] for e in failed["failed"])
    [first] = wipe_leaves(data)
    assert leaf_files(first) == FOOTAGE
    assert set(files(recorder)) == FOOTAGE | {"DEVICE.INF"}

    done = wipe(recorder, config, check=0)
    assert paths(done["removed"]) == FOOTAGE
    first, second = wipe_leaves(data)
    assert leaf_files(second) == FOOTAGE
    rows = query(data, "SELECT source_path, leaf_index FROM wiped_files")
    assert {r[0] for r in rows} == FOOTAGE and {r[1] for r in rows} == {second["index"]}
    run_cli("verify", "--data-dir", data, check=0)


def test_the_volume_is_writable_for_the_wipe_only(
    recorder: Path, read_only_view: Path, tmp_path: Path
) -> None:
    config = station(tmp_path, wipe="after_verified")
    ingest(recorder, config)
    entered: list[Path] = []

    @contextlib.contextmanager
    def writable(volume: Path) -> Iterator[Path]:
        _remount(volume, "rw")
        entered.append(volume)
        try:
            yield volume
        finally:
            _remount(volume, "ro")

    station_ = Station.open(load_config(config))
    try:
        ledger = station_.ledger()
        report = perform_wipe(
            station_.conn, ledger, read_only_view, "REC0001", "after_verified", writable=writable
        )
        assert {e.path for e in report.removed} == FOOTAGE and report.ok
        assert entered == [read_only_view]
        # Nothing left to remove: the volume is not made writable at all.
        again = perform_wipe(
            station_.conn, ledger, read_only_view, "REC0001", "after_verified", writable=writable
        )
        assert again.removed == [] and again.leaf_index is None and entered == [read_only_view]
    finally:
        station_.close()
    assert set(files(recorder)) == {"DEVICE.INF"}
    with pytest.raises(OSError, match="Read-only"):
        (read_only_view / "probe").write_bytes(b"")


def test_a_copy_made_again_with_another_window_size_is_proven_by_its_own_read(
    recorder: Path, tmp_path: Path
) -> None:
    config = station(tmp_path, wipe="after_verified")
    big = f"{MEDIA}/20261122_090006_006.GPS"
    (recorder / big).write_bytes(os.urandom(5 * 2**19))
    ingest(recorder, config)  # 8 MiB windows: one window
    text = config.read_text()
    text = text.replace("[hashing]\n", "[hashing]\nwindow_mib = 1\n")
    config.write_text(text.replace("[docking]\n", '[docking]\nrecheck = "content"\n'))
    again = ingest(recorder, config)  # read again: three 1 MiB windows, a clip.redocked leaf
    assert again["seen"] == len(FOOTAGE) + 2
    # The clip.redocked leaf carries that docking's own verified read and windows (1 MiB),
    # so the file is proven by it, not by the first ingest's 8 MiB windows.
    result = wipe(recorder, config, check=0)
    assert paths(result["removed"]) == FOOTAGE | {big}
