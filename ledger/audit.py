"""The evidence store audit, as hashdeep's audit mode does it, against clip.ingested leaves.

Every file under objects/ is hashed once. A file is *matched* when it sits where its
clip's SHA-256 puts it and has that content; *modified* when it sits there with other
content (the changed windows are located from the leaf's ``windows`` list); *moved*
when a known clip's content is found under another name; *extra* when no leaf knows it;
a clip is *missing* when its content is found nowhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

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


@dataclass
class AuditResult:
    matched: int = 0
    modified: int = 0
    missing: int = 0
    extra: int = 0
    moved: int = 0
    purged_present: int = 0
    problems: list[str] = field(default_factory=list)


def file_sha256(path: Path, advance: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_READ):
            digest.update(chunk)
            if advance is not None:
                advance(len(chunk))
    return digest.hexdigest()


def changed_windows(path: Path, clip: ClipRecord) -> tuple[list[int], int]:
    """Indexes of windows whose SHA-256 differs from the leaf's, and the file's size."""
    changed: list[int] = []
    size = 0
    if clip.window_size <= 0:
        return changed, path.stat().st_size
    with path.open("rb") as f:
        index = 0
        while True:
            chunk = f.read(clip.window_size)
            if not chunk and index >= len(clip.windows):
                break
            size += len(chunk)
            expected = clip.windows[index] if index < len(clip.windows) else None
            if not chunk or hashlib.sha256(chunk).hexdigest() != expected:
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
    objects = list(store.iter_objects())
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
        try:
            digest = file_sha256(path, advance)
        except OSError as exc:
            result.problems.append(
                f"unreadable file {path}: {exc.strerror}: verify as a user who can read the store"
            )
            continue
        home = _home(store, name)
        if name in expected and home == path:
            if digest == name:
                in_place.add(name)
                result.matched += 1
            else:
                _modified(result, path, expected[name][0])
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
        ids = ", ".join(f"{c.clip_id} (leaf {c.index})" for c in records)
        for path in elsewhere.get(sha, []):
            result.moved += 1
            result.problems.append(
                f"moved: clip {ids} content {sha} found at {path} instead of its place "
                f"{store.path_for(sha)}"
            )
        if sha not in in_place and sha not in elsewhere and not _exists(store, sha):
            result.missing += 1
            result.problems.append(
                f"missing: clip {ids} content {sha} is not in the store "
                f"({store.path_for(sha)} absent)"
            )
    return result


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _modified(result: AuditResult, path: Path, clip: ClipRecord) -> None:
    result.modified += 1
    changed, size = changed_windows(path, clip)
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
    return home is not None and home.is_file()
