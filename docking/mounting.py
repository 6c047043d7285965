"""Mounting a recorder's filesystem read-only, and read-write only for a wipe.

Options, and why:

* every mount: ``ro,nosuid,nodev,noexec``: nothing on a recorder is run, trusted as a
  device, or written (a read-write mount alone writes: FAT and exFAT drivers set the
  volume's dirty flag when mounted read-write).
* FAT (``vfat``): ``utf8`` (names as the recorder wrote them, Chinese included),
  ``shortname=mixed`` (8.3 names keep the case they were written in, instead of being
  lowercased), ``tz=UTC``: FAT stores local time without a zone; with ``tz=UTC`` the
  kernel adds no offset, so a file's mtime shows the recorder's own wall clock, the same
  digits as its file name, whatever the station's time zone is. The clock check compares
  like with like, and the mtime a wipe compares never shifts with the station's settings.
* exFAT, kernel driver: ``iocharset=utf8,time_offset=0`` (times that carry their own
  offset are converted; those without one are taken as the recorder's clock, as for FAT).
  Where the kernel has no exFAT, ``mount.exfat-fuse`` (package exfat-fuse) mounts it,
  run with ``TZ=UTC`` for the same reason; it drops ``noexec``, so the mount is then
  remounted with the flags at the mount point's level.
* a folder given as the source (the simulated bus of the tests) is bind-mounted with the
  same read-only flags, so a write to it is a real kernel refusal too.

Every mount is checked read-only with ``statvfs`` before it is reported.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from docking.errors import DockingError

log = logging.getLogger(__name__)

READ_ONLY = "ro,nosuid,nodev,noexec"
FS_OPTIONS = {
    "vfat": "utf8,shortname=mixed,tz=UTC",
    "exfat": "iocharset=utf8,time_offset=0",
}
MOUNTABLE = ("vfat", "exfat")
FUSE_EXFAT = "mount.exfat-fuse"
Method = Literal["kernel", "fuse", "bind"]


class MountError(DockingError):
    """A recorder's filesystem could not be mounted, made writable or unmounted."""


@dataclass(frozen=True)
class MountedVolume:
    source: Path  # device node (or folder, for a bind)
    target: Path  # the slot's folder under the mount root
    fstype: str  # "vfat", "exfat" or "bind"
    method: Method


class Mounter(Protocol):
    """How the USB detector mounts what it finds (:class:`SystemMounter` on a station)."""

    def probe(self, source: Path) -> str | None:
        """The filesystem type on ``source`` (``bind`` for a folder), None if none."""

    def mount(self, source: Path, target: Path, fstype: str) -> MountedVolume:
        """Mount read-only at the existing empty folder ``target``; MountError says why not."""

    def writable(self, mounted: MountedVolume) -> AbstractContextManager[Path]:
        """Read-write inside the block, read-only again after it."""

    def unmount(self, target: Path) -> bool:
        """Unmount ``target`` (lazily if busy: returns True then); nothing if not mounted."""

    def mounts_under(self, root: Path) -> list[Path]:
        """Mount points directly inside ``root``."""


class SystemMounter:
    """Mounts with util-linux's ``mount``/``umount`` (and ``mount.exfat-fuse``); needs
    CAP_SYS_ADMIN. Each command gets ``timeout`` seconds: a dying device can hang one."""

    def __init__(
        self, *, timeout: float = 30.0, mountinfo: Path = Path("/proc/self/mountinfo")
    ) -> None:
        self.timeout = timeout
        self.mountinfo = mountinfo

    # --- what is there ------------------------------------------------------------------

    def probe(self, source: Path) -> str | None:
        try:
            mode = os.stat(source).st_mode
        except OSError as exc:
            raise MountError(f"cannot read {source}: {exc.strerror}") from None
        if stat.S_ISDIR(mode):
            return "bind"
        if shutil.which("blkid") is not None:
            result = self._run(["blkid", "-p", "-o", "export", os.fspath(source)])
            for line in result.stdout.splitlines():
                key, _, value = line.partition("=")
                if key == "TYPE":
                    return value or None
            if result.returncode not in (0, 2):  # 2: nothing found
                raise MountError(f"blkid cannot read {source}: {result.stderr.strip()}")
            return None
        try:
            with open(source, "rb") as device:
                return superblock_type(device.read(SUPERBLOCK_BYTES))
        except OSError as exc:
            raise MountError(f"cannot read {source}: {exc.strerror}") from None

    def mounts_under(self, root: Path) -> list[Path]:
        root_text = os.path.realpath(root)
        return [Path(p) for p in self._mount_points() if os.path.dirname(p) == root_text]

    def is_mounted(self, target: Path) -> bool:
        return os.path.realpath(target) in self._mount_points()

    def _mount_points(self) -> list[str]:
        points = []
        with open(self.mountinfo, encoding="utf-8", errors="surrogateescape") as info:
            for line in info:
                fields = line.split(" ")
                if len(fields) > 4:
                    points.append(_unescape(fields[4]))
        return points

    # --- mount, unmount -------------------------------------------------------------

    def mount(self, source: Path, target: Path, fstype: str) -> MountedVolume:
        if fstype == "bind":
            method: Method = "bind"
            self._must(["mount", "--bind", "-o", READ_ONLY, source, target], source, target)
        elif fstype == "vfat":
            method = self._mount_vfat(source, target)
        elif fstype == "exfat":
            method = self._mount_exfat(source, target)
        else:
            raise MountError(
                f"{source} holds a {fstype} filesystem, which evidock does not mount from a "
                f"recorder (it mounts {', '.join(MOUNTABLE)}): copy it by hand if it matters"
            )
        mounted = MountedVolume(Path(source), Path(target), fstype, method)
        if not _read_only(target):
            self.unmount(target)
            raise MountError(f"{target} did not mount read-only, so it was unmounted again")
        return mounted

    def _kernel_mount(self, source: Path, target: Path, fstype: str) -> bool:
        """True once mounted; False when the kernel has no such filesystem."""
        options = f"{READ_ONLY},{FS_OPTIONS[fstype]}"
        result = self._run(["mount", "-t", fstype, "-o", options, source, target])
        if result.returncode == 0:
            return True
        if "unknown filesystem type" in result.stderr:
            return False
        raise MountError(_failed("mount", source, target, result))

    def _mount_vfat(self, source: Path, target: Path) -> Method:
        if not self._kernel_mount(source, target, "vfat"):
            raise MountError(
                "this kernel cannot mount FAT (no vfat module): load it (modprobe vfat) or "
                "use a kernel that has it, then dock the recorder again"
            )
        return "kernel"

    def _mount_exfat(self, source: Path, target: Path) -> Method:
        if self._kernel_mount(source, target, "exfat"):
            return "kernel"
        self._fuse_exfat(source, target, read_only=True)
        return "fuse"

    def _fuse_exfat(self, source: Path, target: Path, *, read_only: bool) -> None:
        tool = shutil.which(FUSE_EXFAT)
        if tool is None:
            raise MountError(
                "this kernel has no exFAT and exfat-fuse is not installed: install it "
                "(apt-get install exfat-fuse), then dock the recorder again"
            )
        flags = READ_ONLY if read_only else "rw,nosuid,nodev,noexec"
        self._must(
            [tool, "-o", flags, source, target], source, target, env={**os.environ, "TZ": "UTC"}
        )
        try:
            # exfat-fuse drops noexec: set the flags on the mount point itself.
            self._must(["mount", "-o", f"remount,bind,{flags}", target], source, target)
        except MountError:
            self.unmount(target)
            raise

    def unmount(self, target: Path) -> bool:
        result = self._run(["umount", target])
        if result.returncode == 0 or "not mounted" in result.stderr:
            return False
        if "busy" in result.stderr:
            lazy = self._run(["umount", "-l", target])
            if lazy.returncode == 0:
                log.warning("%s was busy: unmounted lazily (open files stay readable)", target)
                return True
            result = lazy
        raise MountError(_failed("unmount", target, target, result))

    # --- read-write for a wipe -----------------------------------------------------------

    def writable(self, mounted: MountedVolume) -> AbstractContextManager[Path]:
        return self._writable(mounted)

    @contextmanager
    def _writable(self, mounted: MountedVolume) -> Iterator[Path]:
        self._set_writable(mounted, True)
        try:
            yield mounted.target
        finally:
            try:
                self._set_writable(mounted, False)
            except MountError as exc:
                # Never leave a recorder writable: take it away from the folder instead.
                self.unmount(mounted.target)
                raise MountError(
                    f"{mounted.target} could not be made read-only again ({exc}), so it was "
                    "unmounted: take the recorder out and dock it again"
                ) from None

    def _set_writable(self, mounted: MountedVolume, writable: bool) -> None:
        source, target = mounted.source, mounted.target
        mode = "rw" if writable else "ro"
        if mounted.method == "fuse":
            # A FUSE filesystem opened its device read-only: mount it again, as needed.
            self.unmount(target)
            self._fuse_exfat(source, target, read_only=not writable)
        elif mounted.method == "bind":
            self._must(
                ["mount", "-o", f"remount,bind,{mode},nosuid,nodev,noexec", target], source, target
            )
        else:
            self._must(
                ["mount", "-o", f"remount,{mode},nosuid,nodev,noexec", target], source, target
            )
        if _read_only(target) == writable:
            raise MountError(f"{target} is still {'read-only' if writable else 'writable'}")

    # --- running the tools ----------------------------------------------------------------

    def _must(
        self,
        command: list[str | Path],
        source: Path,
        target: Path,
        *,
        env: dict[str, str] | None = None,
    ) -> None:
        result = self._run(command, env=env)
        if result.returncode != 0:
            raise MountError(_failed("mount", source, target, result))

    def _run(
        self, command: list[str | Path], *, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        args = [os.fspath(part) for part in command]
        # The tools' messages are matched below: keep them in English whatever LANG is.
        env = {**(os.environ if env is None else env), "LC_ALL": "C"}
        try:
            return subprocess.run(
                args,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.timeout,
                env=env,
                check=False,
            )
        except FileNotFoundError:
            raise MountError(f"{args[0]} is not installed: install util-linux") from None
        except subprocess.TimeoutExpired:
            raise MountError(
                f"{' '.join(args)} did not finish within {self.timeout:g} s: the device may "
                "be failing; take the recorder out and dock it again"
            ) from None


def make_mount_point(folder: Path) -> None:
    """An empty folder to mount on: never mount over files someone put there."""
    try:
        folder.mkdir(mode=0o755, exist_ok=True)
        if any(folder.iterdir()):
            raise MountError(f"{folder} is not empty: move what is in it elsewhere")
    except OSError as exc:
        raise MountError(f"cannot make the folder {folder}: {exc.strerror}") from None


def remove_mount_point(folder: Path) -> None:
    # Not empty, or already gone: either way left for a person to look at.
    with contextlib.suppress(OSError):
        folder.rmdir()


SUPERBLOCK_BYTES = 512


def superblock_type(boot_sector: bytes) -> str | None:
    """``exfat`` or ``vfat`` from a volume's first sector, None for anything else
    (what evidock reads where blkid is not installed)."""
    if boot_sector[3:11] == b"EXFAT   ":
        return "exfat"
    if boot_sector[510:512] != b"\x55\xaa":
        return None
    if boot_sector[82:87] == b"FAT32" or boot_sector[54:59] in (b"FAT12", b"FAT16", b"FAT  "):
        return "vfat"
    return None


def _read_only(target: Path) -> bool:
    return bool(os.statvfs(target).f_flag & os.ST_RDONLY)


def _unescape(field: str) -> str:
    r"""mountinfo writes space, tab, newline and backslash as ``\040``-style octal."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and len(field) >= i + 4:
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _failed(
    action: str, source: Path, target: Path, result: subprocess.CompletedProcess[str]
) -> str:
    detail = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
    return (
        f"cannot {action} {source} at {target}: {detail}; check the recorder's filesystem "
        "(fsck on another machine), then dock it again"
    )
