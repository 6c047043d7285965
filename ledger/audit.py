"""The evidence store audit, as hashdeep's audit mode does it, against clip.ingested leaves.

Every file under objects/ is hashed once. A file is *matched* when it sits where its
clip's SHA-256 puts it and has that content; *modified* when it sits there with other
content (the changed windows are located from the leaf's ``windows`` list); *moved*
when a known clip's content is found under another name; *extra* when no leaf knows it;
a clip is *missing* when its content is found nowhere.

Only regular files are opened, and never through a symlink: a symlink, FIFO, device,
socket or folder where the store keeps files is reported as "not a regular file" (an
object replaced by one is missing; anywhere else it is extra), never followed, read
or waited on.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from config.common import describe_mode
from config.window_hash import WINDOW_HASHES, window_digest

#: ``progress(stage, done, total)``: stage "leaves" counts leaves; every other stage
#: ("store", "package", "export") counts bytes.
Progress = Callable[[str, int, int], None]
_READ = 1 << 20


class EvidenceFiles(Protocol):
    """What the audit needs of the evidence store (hashing.EvidenceStore satisfies it)."""

    def path_for(self, sha256: str) -> Path: ...

    def iter_objects(self) -> Iterator[tuple[str, Path]]: ...


@dataclass(frozen=True)
class ClipRecord:
    """What a clip.ingested leaf says about the stored file."""

    index: int
    clip_id: str
    sha256: str
    size: int
    window_size: int
    windows: tuple[str, ...]
    window_hash: str = WINDOW_HASHES[0]


@dataclass
class AuditResult:
    matched: int = 0
    modified: int = 0
    missing: int = 0
    extra: int = 0
    moved: int = 0
    purged_present: int = 0
    problems: list[str] = field(default_factory=list)


class NotRegularFileError(OSError):
    """What sits at a path is not a regular file; ``kind`` says what it is."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a regular file")
        self.path = path
        self.kind = kind


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading if, and only if, it is a regular file.

    lstat first (a device is never opened at all), then ``O_NOFOLLOW | O_NONBLOCK`` (a
    name swapped for a symlink or a FIFO meanwhile neither is followed nor hangs the
    open), then fstat of what was opened. Raises :class:`NotRegularFileError` otherwise.
    """
    mode = path.lstat().st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(path, describe_mode(mode))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularFileError(path, "a symlink") from None
        if exc.errno == errno.ENXIO:
            raise NotRegularFileError(path, "a socket") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFileError(path, describe_mode(mode))
    return os.fdopen(fd, "rb")


def file_sha256(path: Path, advance: Callable[[int], None] | None = None) -> str:
    with open_regular(path) as f:
        return _sha256(f, advance)


def _sha256(f: BinaryIO, advance: Callable[[int], None] | None) -> str:
    digest = hashlib.sha256()
    while chunk := f.read(_READ):
        digest.update(chunk)
        if advance is not None:
            advance(len(chunk))
    return digest.hexdigest()


def changed_windows(f: BinaryIO, clip: ClipRecord) -> tuple[list[int], int]:
    """Indexes of windows whose hash differs from the leaf's, and the file's size
    (read from the start of the open file ``f``)."""
    changed: list[int] = []
    size = 0
    f.seek(0)
    if clip.window_size <= 0:
        return changed, os.fstat(f.fileno()).st_size
    index = 0
    while True:
        chunk = f.read(clip.window_size)
        if not chunk and index >= len(clip.windows):
            break
        size += len(chunk)
        expected = clip.windows[index] if index < len(clip.windows) else None
        if not chunk or window_digest(clip.window_hash, chunk) != expected:
            changed.append(index)
        index += 1
        if not chunk:
            break
    return changed, size


def _describe_windows(changed: list[int], clip: ClipRecord) -> str:
    shown = ", ".join(str(i) for i in changed[:8]) + (" ..." if len(changed) > 8 else "")
    first = changed[0] * clip.window_size if changed else 0
    return f"window(s) {shown} of {clip.window_size} bytes differ (first at byte offset {first})"


def audit_store(
    store: EvidenceFiles,
    clips: list[ClipRecord],
    purged: set[str],
    progress: Progress | None = None,
) -> AuditResult:
    """Audit every file in ``store`` against ``clips`` minus the purged clip ids."""
    result = AuditResult()
    expected: dict[str, list[ClipRecord]] = {}
    purged_shas: set[str] = set()
    for clip in clips:
        if clip.clip_id in purged:
            purged_shas.add(clip.sha256)
        else:
            expected.setdefault(clip.sha256, []).append(clip)
    purged_shas -= expected.keys()
    in_place: set[str] = set()
    elsewhere: dict[str, list[Path]] = {}
    replaced: set[str] = set()  # a clip's place holds something that is not a file
    objects: list[tuple[str, Path]] = []
    try:
        objects.extend(store.iter_objects())
    except OSError as exc:
        result.problems.append(
            f"unreadable store folder {exc.filename or ''}: {exc.strerror}: verify as a user "
            "who can read the store"
        )
    total = sum(_size(path) for _, path in objects)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress("store", min(done, total), total)

    if progress is not None:
        progress("store", 0, total)
    for name, path in objects:
        home = _home(store, name)
        at_home = name in expected and home == path
        try:
            with open_regular(path) as f:
                digest = _sha256(f, advance)
                if at_home and digest != name:
                    _modified(result, path, f, expected[name][0])
        except NotRegularFileError as exc:
            if at_home:
                replaced.add(name)
            _not_regular(result, exc, expected[name] if at_home else None)
            continue
        except OSError as exc:
            result.problems.append(
                f"unreadable file {path}: {exc.strerror}: verify as a user who can read the store"
            )
            continue
        if at_home:
            if digest == name:
                in_place.add(name)
                result.matched += 1
            continue
        if name in purged_shas and home == path and digest == name:
            result.purged_present += 1
            continue
        if digest in expected:
            elsewhere.setdefault(digest, []).append(path)
            continue
        result.extra += 1
        result.problems.append(
            f"extra file {path}: content {digest} is not named by any clip.ingested leaf"
        )
    for sha, records in sorted(expected.items(), key=lambda item: item[1][0].index):
        ids = _ids(records)
        for path in elsewhere.get(sha, []):
            result.moved += 1
            result.problems.append(
                f"moved: clip {ids} content {sha} found at {path} instead of its place "
                f"{store.path_for(sha)}"
            )
        if sha in in_place or sha in elsewhere:
            continue
        if sha in replaced:
            result.missing += 1  # reported above, with what sits in its place
        elif not _exists(store, sha):
            result.missing += 1
            result.problems.append(
                f"missing: clip {ids} content {sha} is not in the store "
                f"({store.path_for(sha)} absent)"
            )
    return result


def _ids(records: list[ClipRecord]) -> str:
    return ", ".join(f"{c.clip_id} (leaf {c.index})" for c in records)


def _size(path: Path) -> int:
    try:
        info = path.lstat()
    except OSError:
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def _not_regular(
    result: AuditResult, exc: NotRegularFileError, owners: list[ClipRecord] | None
) -> None:
    if owners is None:
        result.extra += 1
        result.problems.append(
            f"not a regular file: {exc.path} is {exc.kind}; the store holds regular files "
            "only: find out who put it there"
        )
    else:  # counted as missing with the clips, unless a copy turns up elsewhere
        result.problems.append(
            f"not a regular file: {exc.path} is {exc.kind} where clip {_ids(owners)} "
            "belongs, so its content is not there: find out who put it there, and restore "
            "the clip from central storage"
        )


def _modified(result: AuditResult, path: Path, f: BinaryIO, clip: ClipRecord) -> None:
    result.modified += 1
    changed, size = changed_windows(f, clip)
    what = f"size {size}, leaf says {clip.size}" if size != clip.size else "same size"
    where = _describe_windows(changed, clip) if changed else "no window differs"
    result.problems.append(
        f"modified: clip {clip.clip_id} (leaf {clip.index}) sha256 {clip.sha256} at {path}: "
        f"content changed ({what}); {where}"
    )


def _home(store: EvidenceFiles, name: str) -> Path | None:
    try:
        return store.path_for(name)
    except ValueError:
        return None


def _exists(store: EvidenceFiles, sha: str) -> bool:
    home = _home(store, sha)
    try:
        return home is not None and stat.S_ISREG(home.lstat().st_mode)
    except OSError:
        return False
