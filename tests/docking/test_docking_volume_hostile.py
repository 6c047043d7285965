"""Hostile volumes: links on the way to the device-info file, trees too deep for paths."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from deep_trees import DEPTH, LEVEL, deep_folder, make_deep

from docking import VolumeScan, open_volume


@contextmanager
def _folder(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.fixture
def deep_root(tmp_path: Path) -> Iterator[Path]:
    with deep_folder(tmp_path / "REC") as root:
        yield root


def test_device_info_behind_a_linked_folder_is_not_read(volume_copy: Path, tmp_path: Path) -> None:
    """MISC/DEVICE.TXT, with MISC a link out of the volume: neither the serial nor the
    officer of the outside file may name the recorder, and the link is reported."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "DEVICE.TXT").write_text("serial=STOLEN-1\nofficer=999999\nmodel=EVIDOCK-SIM\n")
    (volume_copy / "DEVICE.INF").unlink()
    (volume_copy / "MISC").symlink_to(outside, target_is_directory=True)
    vol = open_volume(volume_copy)
    assert vol.serial_source == "derived" and vol.serial != "STOLEN-1"
    assert vol.officer is None and vol.device_info == {}
    assert vol.device_info_path == b"MISC"
    assert "symbolic link" in (vol.device_info_problem or "")
    assert "MISC" in (vol.device_info_problem or "")
    refused = {r.rel_path: r.reason for r in vol.scan().refused}
    assert "symbolic link" in refused[b"MISC"], "the same link is reported by the scan"


def test_device_info_found_in_a_real_folder_ignoring_case(tmp_path: Path) -> None:
    (tmp_path / "misc").mkdir()
    (tmp_path / "misc" / "device.txt").write_text("SERIAL=REAL-7\nofficer=000777\n")
    vol = open_volume(tmp_path)
    assert (vol.serial, vol.serial_source, vol.officer) == ("REAL-7", "device-info", "000777")
    assert vol.device_info_path == b"misc/device.txt"


@pytest.mark.parametrize(
    "level",
    [b"d", LEVEL],
    ids=["deeper-than-the-recursion-limit", "longer-than-PATH_MAX"],
)
def test_a_thousand_nested_folders_are_walked_and_the_deepest_file_found(
    deep_root: Path, level: bytes
) -> None:
    root = deep_root
    rel = make_deep(root, DEPTH, b"deep footage", level)
    scan = open_volume(root).scan()
    assert scan.refused == []
    assert [(f.rel_path, f.size) for f in scan.files] == [(rel, len(b"deep footage"))]
    assert os.fsencode(scan.files[0].path).endswith(rel)


def _expected_order(root: Path) -> list[bytes]:
    """Every regular file, depth first in byte order of names (the scan's order)."""
    out: list[bytes] = []

    def visit(fd: int, rel: bytes) -> None:
        for name in sorted(os.fsencode(n) for n in os.listdir(fd)):
            path = rel + b"/" + name if rel else name
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                with _folder_at(fd, name) as child:
                    visit(child, path)
            else:
                out.append(path)

    with _folder(root) as fd:
        visit(fd, b"")
    return out


def test_a_deep_comb_keeps_name_order_when_folders_are_reopened(deep_root: Path) -> None:
    """200 levels, each with a deeper folder ``a``, a file and a folder ``c`` listed
    after ``a``: climbing back to a folder whose descriptor was closed must reopen
    that very folder and go on in order."""
    root = deep_root
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(200):
            os.mkdir(b"c", dir_fd=fd)
            with _folder_at(fd, b"c") as c:
                _write(c, f"in-c-{level}.MP4".encode())
            _write(fd, f"b-{level}.MP4".encode())
            os.mkdir(b"a", dir_fd=fd)
            child = os.open(b"a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    scan: VolumeScan = open_volume(root).scan()
    assert scan.refused == []
    assert [f.rel_path for f in scan.files] == _expected_order(root)
    assert len(scan.files) == 400


@contextmanager
def _folder_at(dir_fd: int, name: bytes) -> Iterator[int]:
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _write(dir_fd: int, name: bytes) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=dir_fd)
    try:
        os.write(fd, name)
    finally:
        os.close(fd)
