"""The rules every leaf must pass, in `evidock verify` and in `evidock verify-package` alike.

One rule set for both verifiers, so a package can never pass what the station's own
verify fails: the bytes are a canonical leaf, the kind is known, the body has the kind's
keys with values of the right types, the leaf says the index it is found at, and it
names the station whose key signs the log (the checkpoint origin
``evidock.station/<id>``), the same station as every other leaf.

What only the whole ledger can check (the ``prev`` chain, the Merkle nodes, the database's
lookup columns) stays in ``ledger.verify``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from config.case_numbers import CASE_FIELDS, SENSITIVITIES
from config.window_hash import WINDOW_HASHES
from ledger.errors import LeafFormatError
from ledger.leaf import (
    ACCESS_REFUSED,
    CASE_CHANGED,
    CASE_CLOSED,
    CASE_EXPORTED,
    CASE_LINKED,
    CASE_OPENED,
    CASE_UNLINKED,
    CLIP_ACCESSED,
    CLIP_INGESTED,
    CLIP_PURGED,
    CLIP_REDOCKED,
    CLIP_SENSITIVITY_SET,
    CLIP_UPLOADED,
    CLOCK_ADJUSTED,
    COMMAND_RECEIVED,
    CONFIG_CHANGED,
    DOCKING_CLOSED,
    DOCKING_OPENED,
    INCIDENT_IMPORTED,
    KEY_ROTATED,
    KINDS,
    OFFICER_ASSIGNED,
    STATION_BOOTED,
    check_leaf_bytes,
)

#: Where a rule reports a broken leaf: (category, one line naming the leaf).
Report = Callable[[str, str], None]

ORIGIN_PREFIX: Final = "evidock.station/"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]*")


def _text(value: Any) -> bool:
    return type(value) is str


def _text_or_null(value: Any) -> bool:
    return value is None or type(value) is str


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _sha256(value: Any) -> bool:
    return type(value) is str and _HEX64.fullmatch(value) is not None


def _sha256_list(value: Any) -> bool:
    # One regex over the joined list: a clip's window list can hold thousands of hashes.
    if type(value) is not list or not all(type(item) is str and len(item) == 64 for item in value):
        return False
    return _HEX.fullmatch("".join(value)) is not None


def _text_list(value: Any) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def _window_hash(value: Any) -> bool:
    return value in WINDOW_HASHES


def _list(value: Any) -> bool:
    return type(value) is list


def _object_list(value: Any) -> bool:
    return type(value) is list and all(type(item) is dict for item in value)


def _object_or_null(value: Any) -> bool:
    return value is None or type(value) is dict


def _boolean(value: Any) -> bool:
    return type(value) is bool


def _sensitivity(value: Any) -> bool:
    return value in SENSITIVITIES


def _case_fields(value: Any) -> bool:
    # The fields of a case record and their values, as case.opened holds them.
    return (
        type(value) is dict
        and value.keys() <= set(CASE_FIELDS)
        and all(check(value[key]) for key, check in _CASE_RECORD.items() if key in value)
    )


_Check = Callable[[Any], bool]
_WHAT: Final[dict[_Check, str]] = {
    _text: "a string",
    _text_or_null: "a string or null",
    _count: "a non-negative integer",
    _sha256: "64 lowercase hex digits",
    _sha256_list: "a list of 64-hex-digit hashes",
    _text_list: "a list of strings",
    _list: "a list",
    _object_list: "a list of objects",
    _window_hash: f"one of {', '.join(WINDOW_HASHES)}",
    _object_or_null: "an object or null",
    _boolean: "true or false",
    _sensitivity: f"one of {', '.join(SENSITIVITIES)}",
    _case_fields: "an object of case fields with values of their types",
}

_LINK: Final[dict[str, _Check]] = {
    "clip_id": _text_or_null,
    "session_id": _text_or_null,
    "case_number": _text,
    "officer": _text_or_null,
    "object_of_proof": _text_or_null,
    "reason": _text_or_null,
}

_CASE_RECORD: Final[dict[str, _Check]] = {
    "subject": _text,
    "category": _text,
    "unit": _text,
    "whole_process": _boolean,
    "starts": _text_or_null,
    "ends": _text_or_null,
    "sensitivity": _sensitivity,
    "retention": _text_or_null,
}

#: The type of each required body value a verifier relies on (keys absent here: any).
BODY_TYPES: Final[dict[str, dict[str, _Check]]] = {
    STATION_BOOTED: {"version": _text, "config_sha256": _text},
    DOCKING_OPENED: {"session_id": _text},
    DOCKING_CLOSED: {"session_id": _text, "clips": _count, "problems": _list},
    CLIP_INGESTED: {
        "clip_id": _text,
        "session_id": _text,
        "sha256": _sha256,
        "blake3": _sha256,
        "sm3": _text_or_null,
        "size": _count,
        "window_size": _count,
        "windows": _sha256_list,
        "source_path": _text,
        "source_path_b64": _text_or_null,
        "recorder_time": _text_or_null,
        "media": _object_or_null,
    },
    CLIP_REDOCKED: {"clip_id": _text, "session_id": _text, "sha256": _sha256, "source_path": _text},
    CASE_LINKED: _LINK,
    CASE_UNLINKED: _LINK,
    CLIP_UPLOADED: {
        "clip_id": _text,
        "sha256": _sha256,
        "target": _text,
        "location": _text,
        "confirmed_size": _count,
        "confirmed_sha256": _text,
    },
    CLIP_ACCESSED: {
        "clip_id": _text,
        "who": _text,
        "purpose": _text,
        "action": _text,
        "via": _text,
    },
    CASE_EXPORTED: {
        "case_number": _text,
        "clips": _text_list,
        "out": _text,
        "who": _text,
        "purpose": _text,
    },
    CLIP_PURGED: {"clip_id": _text, "sha256": _sha256, "reason": _text},
    CONFIG_CHANGED: {"config_sha256": _text, "previous_sha256": _text_or_null},
    KEY_ROTATED: {"old_key": _text, "new_key": _text},
    CLOCK_ADJUSTED: {"from": _text, "to": _text, "source": _text},
    OFFICER_ASSIGNED: {
        "recorder": _text,
        "officer": _text,
        "valid_from": _text,
        "set_by": _text,
        "source": _text,
        "previous": _text_or_null,
    },
    CASE_OPENED: {
        "case_number": _text,
        "case_number_typed": _text,
        "by": _text_or_null,
        **_CASE_RECORD,
    },
    CASE_CHANGED: {
        "case_number": _text,
        "changes": _case_fields,
        "previous": _case_fields,
        "by": _text,
        "reason": _text,
    },
    CASE_CLOSED: {"case_number": _text, "by": _text, "reason": _text},
    INCIDENT_IMPORTED: {
        "source": _text,
        "file_sha256": _sha256,
        "incidents": _object_list,
        "rejected": _object_list,
        "by": _text_or_null,
    },
    ACCESS_REFUSED: {
        "clip_id": _text_or_null,
        "case_number": _text_or_null,
        "who": _text,
        "purpose": _text,
        "action": _text,
        "via": _text,
        "sensitivity": _sensitivity,
        "reason": _text,
    },
    CLIP_SENSITIVITY_SET: {
        "clip_id": _text,
        "sensitivity": _sensitivity,
        "previous": _sensitivity,
        "by": _text,
        "reason": _text,
    },
    COMMAND_RECEIVED: {
        "request_id": _text,
        "command": _text,
        "args": _object_or_null,
        "by": _text_or_null,
        "via": _text,
    },
}


#: Keys a body may leave out (leaves written before them), checked when present.
OPTIONAL_TYPES: Final[dict[str, dict[str, _Check]]] = {
    CLIP_INGESTED: {"window_hash": _window_hash},
    CLIP_REDOCKED: {"window_hash": _window_hash},
    CASE_LINKED: {"case_number_typed": _text},
    CASE_UNLINKED: {"case_number_typed": _text},
    # What a purge relied on: each target's confirming upload, and the keep-until date.
    CLIP_PURGED: {"uploads": _object_list, "keep_until": _text_or_null},
    # What an S3 target confirmed: the object's ETag and version, and its Object Lock.
    CLIP_UPLOADED: {
        "etag": _text_or_null,
        "version_id": _text_or_null,
        "lock_mode": _text_or_null,
        "lock_until": _text_or_null,
        "legal_hold": _boolean,
    },
}


def station_of_origin(origin: str) -> str | None:
    """The station id a checkpoint origin names, or None if it is not ours."""
    if not origin.startswith(ORIGIN_PREFIX) or len(origin) == len(ORIGIN_PREFIX):
        return None
    return origin[len(ORIGIN_PREFIX) :]


def body_problem(kind: str, body: dict[str, Any]) -> str | None:
    """What is wrong with a body of a known ``kind`` (missing keys, wrong types), or None."""
    required = KINDS[kind]
    if not required <= body.keys():
        return f"{kind} body lacks {sorted(required - body.keys())}"
    wrong = [
        f"{key} is not {_WHAT[check]}"
        for key, check in BODY_TYPES.get(kind, {}).items()
        if not check(body[key])
    ]
    wrong += [
        f"{key} is not {_WHAT[check]}"
        for key, check in OPTIONAL_TYPES.get(kind, {}).items()
        if key in body and not check(body[key])
    ]
    if kind in (CASE_LINKED, CASE_UNLINKED) and not (body["clip_id"] or body["session_id"]):
        wrong.append("it names neither a clip_id nor a session_id")
    if kind == ACCESS_REFUSED and not (body["clip_id"] or body["case_number"]):
        wrong.append("it names neither a clip_id nor a case_number")
    if kind == CASE_CHANGED and type(body["changes"]) is dict and not body["changes"]:
        wrong.append("changes names no field")
    if wrong:
        return f"{kind} body has values of wrong types: {'; '.join(wrong)}"
    return None


class LeafRules:
    """Applies the rules to leaves one by one; problems go to ``report``.

    ``station`` is the station the leaves must name: the checkpoint origin's station when
    the caller has a signed checkpoint at hand (an evidence package), else the first leaf
    checked sets it (the station's own ledger, whose checkpoints are then held to it).
    """

    def __init__(self, report: Report, station: str | None = None, source: str = "") -> None:
        self.report = report
        self.station = station
        self.source = source

    def check(self, position: int, data: bytes) -> tuple[dict[str, Any] | None, bool]:
        """The decoded leaf found at ``position`` (None when the bytes are not a leaf at
        all) and whether its body is sound enough for the caller to read values from."""
        try:
            obj = check_leaf_bytes(data)
        except LeafFormatError as exc:
            self.report("encoding", f"leaf {position}: bad encoding: {exc}")
            return None, False
        if obj["index"] != position:
            self.report("index", f"leaf {position}: says index {obj['index']}: renumbered or moved")
        station = obj["station"]
        if self.station is None:
            self.station = station
            self.source = f"the station of leaf {position}"
        elif station != self.station:
            where = f" ({self.source})" if self.source else ""
            self.report(
                "station", f"leaf {position}: station {station!r} is not {self.station!r}{where}"
            )
        kind = obj["kind"]
        if kind not in KINDS:
            self.report("kind", f"leaf {position}: unknown kind {kind!r}")
            return obj, False
        problem = body_problem(kind, obj["body"])
        if problem is not None:
            self.report("body", f"leaf {position}: {problem}")
            return obj, False
        return obj, True
