"""What can be checked of a config's folders before a station starts with them.

:func:`check_paths` looks, and writes nothing but a probe file it removes at once: the
recorder mount root must exist; the data dir, the central folder and the anchor folder
must be folders this user can write, or be creatable. A "central" folder on the station's
own disk is allowed (the demo uses one) but is not central storage, so it is a warning.
:func:`require_usable_paths` is what ``check-config`` and ``run`` call: errors raise
:class:`ConfigError`, warnings are returned for the caller to show.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from config.models import StationConfig
from config.problems import ConfigError, ConfigProblem

PROBE_PREFIX = ".evidock-probe-"


def check_paths(config: StationConfig) -> list[ConfigProblem]:
    """Problems of the config's folders, errors and warnings, in key order."""
    data_dir = config.paths.data_dir
    delivery = config.delivery
    problems: list[ConfigProblem] = []
    problems += _relative("paths.data_dir", data_dir)
    problems += _writable_folder("paths.data_dir", data_dir)
    problems += _mount_root(config)
    central = delivery.central_dir
    problems += _relative("delivery.central_dir", central)
    problems += _writable_folder("delivery.central_dir", central)
    problems += _not_on_station_disk(
        "delivery.central_dir",
        central,
        data_dir,
        "not central storage: losing this disk loses the evidence and its only other copy",
    )
    if delivery.anchor_dir is None:
        # Follows central_dir, whose own warning already covers where it is.
        problems += _writable_folder("delivery.anchor_dir", central / "anchors")
    else:
        anchors = delivery.anchor_dir
        problems += _relative("delivery.anchor_dir", anchors)
        problems += _writable_folder("delivery.anchor_dir", anchors)
        problems += _not_on_station_disk(
            "delivery.anchor_dir",
            anchors,
            data_dir,
            "not an anchor: checkpoints kept beside the ledger can be rewritten with it",
        )
    return problems


def require_usable_paths(config: StationConfig, source: str) -> list[ConfigProblem]:
    """Raise :class:`ConfigError` naming every path error; return the warnings."""
    problems = check_paths(config)
    errors = [p for p in problems if p.is_error]
    if errors:
        raise ConfigError(source, errors)
    return problems


@dataclass(frozen=True)
class _Seen:
    """What ``stat`` says of a path: exists and is a folder, or why it cannot be told."""

    exists: bool
    is_dir: bool = False
    device: int = -1
    failure: str = ""  # set only when it does not exist as far as can be told


def _look(path: Path) -> _Seen:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        # NotADirectoryError: a parent is a file, which _nearest_existing then names.
        return _Seen(exists=False)
    except (OSError, ValueError) as exc:
        return _Seen(exists=False, failure=_why(exc))
    return _Seen(exists=True, is_dir=stat.S_ISDIR(st.st_mode), device=st.st_dev)


def _nearest_existing(path: Path) -> tuple[Path, _Seen]:
    absolute = Path(os.path.abspath(path))
    for candidate in (absolute, *absolute.parents):
        seen = _look(candidate)
        if seen.exists or seen.failure:
            return candidate, seen
    return Path("/"), _look(Path("/"))


def _writable_folder(key: str, path: Path) -> list[ConfigProblem]:
    seen = _look(path)
    if seen.failure:
        return [ConfigProblem(key, f"{path} cannot be used: {seen.failure}; {_fix(key)}")]
    if seen.exists and not seen.is_dir:
        return [ConfigProblem(key, f"{path} is not a folder; {_fix(key)}")]
    if seen.exists:
        failure = _probe(path)
        if failure:
            return [
                ConfigProblem(
                    key,
                    f"{path} cannot be written by {_user()} ({failure}); give that user write "
                    f"access to it, or {_fix(key)}",
                )
            ]
        return []
    parent, parent_seen = _nearest_existing(path)
    if parent_seen.failure:
        return [
            ConfigProblem(
                key, f"{path} cannot be created: {parent}: {parent_seen.failure}; {_fix(key)}"
            )
        ]
    if not parent_seen.is_dir:
        return [
            ConfigProblem(key, f"{path} cannot be created: {parent} is not a folder; {_fix(key)}")
        ]
    failure = _probe(parent)
    if failure:
        return [
            ConfigProblem(
                key,
                f"{path} does not exist and {_user()} cannot create it: {parent} is not "
                f"writable ({failure}); create {path} for that user, or {_fix(key)}",
            )
        ]
    return []


def _mount_root(config: StationConfig) -> list[ConfigProblem]:
    key = "docking.mount_root"
    root = config.docking.mount_root
    fix = f"create it, or set {key} to the folder where recorder volumes are mounted"
    problems = _relative(key, root)
    seen = _look(root)
    if seen.failure:
        problems.append(ConfigProblem(key, f"{root} cannot be used: {seen.failure}; {fix}"))
    elif not seen.exists:
        problems.append(ConfigProblem(key, f"{root} does not exist; {fix}"))
    elif not seen.is_dir:
        problems.append(ConfigProblem(key, f"{root} is not a folder; {fix}"))
    elif not os.access(root, os.R_OK | os.X_OK):
        problems.append(
            ConfigProblem(
                key, f"{root} cannot be read by {_user()}; give that user read access to it"
            )
        )
    for other_key, other in (
        ("paths.data_dir", config.paths.data_dir),
        ("delivery.central_dir", config.delivery.central_dir),
    ):
        if _inside(other, root):
            problems.append(
                ConfigProblem(
                    other_key,
                    f"{other} is inside {key} ({root}), where every folder is read as a "
                    f"docked recorder; set {other_key} to a folder outside it",
                )
            )
    return problems


def _not_on_station_disk(key: str, path: Path, data_dir: Path, why: str) -> list[ConfigProblem]:
    if _inside(path, data_dir):
        where = f"inside the data dir ({data_dir})"
    else:
        mine, theirs = _look(path), _look(data_dir)
        if not (mine.exists and theirs.exists and mine.device == theirs.device):
            return []
        where = f"on the same disk as the data dir ({data_dir})"
    return [
        ConfigProblem(
            key,
            f"{path} is {where}, on this station's own disk, so it is {why}; set {key} "
            "to a folder on the mounted central storage (a local folder is fine for a demo)",
            "warning",
        )
    ]


def _relative(key: str, path: Path) -> list[ConfigProblem]:
    if path.is_absolute():
        return []
    return [
        ConfigProblem(
            key,
            f"{path} is a relative path, read from the folder evidock is started in "
            f"(now {Path.cwd()}; under systemd, /); write the full path",
            "warning",
        )
    ]


def _probe(folder: Path) -> str:
    """Why a file cannot be created in ``folder``, or "" when it can (and was removed)."""
    try:
        handle, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=folder)
    except (OSError, ValueError) as exc:
        return _why(exc)
    os.close(handle)
    os.unlink(name)
    return ""


def _inside(path: Path, folder: Path) -> bool:
    mine, theirs = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return mine == theirs or theirs in mine.parents


def _fix(key: str) -> str:
    return f"set {key} to a folder this user can write"


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.strerror or errno.errorcode.get(exc.errno, str(exc))
    return str(exc)


def _user() -> str:
    uid = os.geteuid()
    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"uid {uid}"
