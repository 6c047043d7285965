"""The leaf: one ledger event in its canonical bytes (see docs/seams.md).

Canonical form is UTF-8 JSON with sorted keys, no whitespace, no floats, non-ASCII kept as
UTF-8 (``ensure_ascii=False``) and ``"v":1``. Parsing is strict: bytes that would not be
re-produced exactly by the encoder are refused, so one event has exactly one encoding and
therefore one hash.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import json.scanner
import re
from dataclasses import dataclass, field
from typing import Any, Final, cast

from config.case_numbers import CASE_FIELDS
from ledger.errors import LeafFormatError

LEAF_VERSION: Final = 1
ZERO_HASH_HEX: Final = "0" * 64

STATION_BOOTED: Final = "station.booted"
DOCKING_OPENED: Final = "docking.opened"
DOCKING_CLOSED: Final = "docking.closed"
CLIP_INGESTED: Final = "clip.ingested"
CLIP_REDOCKED: Final = "clip.redocked"
CASE_LINKED: Final = "case.linked"
CASE_UNLINKED: Final = "case.unlinked"
CLIP_UPLOADED: Final = "clip.uploaded"
CLIP_ACCESSED: Final = "clip.accessed"
CASE_EXPORTED: Final = "case.exported"
CLIP_PURGED: Final = "clip.purged"
RECORDER_WIPED: Final = "recorder.wiped"
CONFIG_CHANGED: Final = "config.changed"
KEY_ROTATED: Final = "key.rotated"
CLOCK_ADJUSTED: Final = "clock.adjusted"
OFFICER_ASSIGNED: Final = "officer.assigned"
CASE_OPENED: Final = "case.opened"
CASE_CHANGED: Final = "case.changed"
CASE_CLOSED: Final = "case.closed"
INCIDENT_IMPORTED: Final = "incident.imported"
ACCESS_REFUSED: Final = "access.refused"
CLIP_SENSITIVITY_SET: Final = "clip.sensitivity_set"
COMMAND_RECEIVED: Final = "command.received"

_CASE_KEYS = frozenset(
    {"clip_id", "session_id", "case_number", "officer", "object_of_proof", "reason"}
)

#: Required body keys of every known kind (the seams table). Extra keys are allowed.
KINDS: Final[dict[str, frozenset[str]]] = {
    STATION_BOOTED: frozenset({"version", "config_sha256"}),
    DOCKING_OPENED: frozenset({"session_id", "recorder", "volume", "officer", "recorder_model"}),
    DOCKING_CLOSED: frozenset({"session_id", "clips", "problems"}),
    CLIP_INGESTED: frozenset(
        {
            "clip_id",
            "session_id",
            "sha256",
            "blake3",
            "sm3",
            "size",
            "window_size",
            "windows",
            "recorder",
            "source_path",
            "source_path_b64",
            "recorder_time",
            "media",
        }
    ),
    CLIP_REDOCKED: frozenset({"clip_id", "session_id", "sha256", "source_path"}),
    CASE_LINKED: _CASE_KEYS,
    CASE_UNLINKED: _CASE_KEYS,
    CLIP_UPLOADED: frozenset(
        {"clip_id", "sha256", "target", "location", "confirmed_size", "confirmed_sha256"}
    ),
    CLIP_ACCESSED: frozenset({"clip_id", "who", "purpose", "action", "via"}),
    CASE_EXPORTED: frozenset({"case_number", "clips", "out", "who", "purpose"}),
    CLIP_PURGED: frozenset({"clip_id", "sha256", "reason"}),
    RECORDER_WIPED: frozenset({"recorder", "session_id", "clips"}),
    CONFIG_CHANGED: frozenset({"config_sha256", "previous_sha256"}),
    KEY_ROTATED: frozenset({"old_key", "new_key"}),
    CLOCK_ADJUSTED: frozenset({"from", "to", "source"}),
    OFFICER_ASSIGNED: frozenset(
        {"recorder", "officer", "valid_from", "set_by", "source", "previous"}
    ),
    CASE_OPENED: frozenset({"case_number", "case_number_typed", "by", *CASE_FIELDS}),
    CASE_CHANGED: frozenset({"case_number", "changes", "previous", "by", "reason"}),
    CASE_CLOSED: frozenset({"case_number", "by", "reason"}),
    INCIDENT_IMPORTED: frozenset({"source", "file_sha256", "incidents", "rejected", "by"}),
    ACCESS_REFUSED: frozenset(
        {"clip_id", "case_number", "who", "purpose", "action", "via", "sensitivity", "reason"}
    ),
    CLIP_SENSITIVITY_SET: frozenset({"clip_id", "sensitivity", "previous", "by", "reason"}),
    COMMAND_RECEIVED: frozenset({"request_id", "command", "args", "by", "via"}),
}

TOP_LEVEL_KEYS: Final = ("at", "body", "index", "kind", "prev", "station", "v")
_TOP_LEVEL_SET = frozenset(TOP_LEVEL_KEYS)
_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _no_float(text: str) -> Any:
    raise LeafFormatError(f"a leaf holds no floats (found {text}): store numbers as integers")


def _no_constant(text: str) -> Any:
    raise LeafFormatError(f"a leaf holds no {text}: store numbers as integers")


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_DECODER = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_constant)
# The verifier decodes and re-encodes every leaf; the C scanner and encoder called
# directly skip a layer of Python per leaf (about 15% of the verify time).
_scan_once: Any = json.scanner.make_scanner(cast(Any, _DECODER))
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_encode_chunks: Any = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )
)


def _canonical(obj: dict[str, Any]) -> bytes:
    if _encode_chunks is None:
        return _ENCODER.encode(obj).encode("utf-8")
    return "".join(_encode_chunks(obj, 0)).encode("utf-8")


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash ``SHA-256(0x00 || data)``: both the chain link and the tree leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


@dataclass(frozen=True, slots=True)
class Leaf:
    """One ledger event, decoded, with the exact bytes it was read from."""

    index: int
    at: str
    kind: str
    station: str
    prev: str
    body: dict[str, Any]
    data: bytes = field(repr=False)

    @property
    def hash(self) -> bytes:
        return leaf_hash(self.data)

    @property
    def hash_hex(self) -> str:
        return leaf_hash(self.data).hex()


def encode_leaf(
    *, index: int, at: str, kind: str, station: str, prev: str, body: dict[str, Any]
) -> bytes:
    """The canonical bytes of a leaf; raises LeafFormatError for values JSON cannot hold."""
    obj = {
        "at": at,
        "body": body,
        "index": index,
        "kind": kind,
        "prev": prev,
        "station": station,
        "v": LEAF_VERSION,
    }
    try:
        data = _ENCODER.encode(obj).encode("utf-8")
    except (TypeError, ValueError) as exc:
        # UnicodeEncodeError (lone surrogate) is a ValueError too.
        raise LeafFormatError(
            f"leaf {index} ({kind}) cannot be encoded: {exc}; give strings, integers, "
            "booleans, null, lists and objects with string keys only"
        ) from None
    # Reading it back proves the bytes are canonical and normalises tuples to lists.
    check_leaf_bytes(data)
    return data


def check_leaf_bytes(data: bytes) -> dict[str, Any]:
    """Decode canonical leaf bytes strictly; return the top-level object.

    This is the verifier's hot path, so it does the minimum: one decode, one re-encode,
    one byte comparison and the type checks of the top level.
    """
    try:
        text = data.decode("utf-8")
        obj, end = _scan_once(text, 0)
    except UnicodeDecodeError as exc:
        raise LeafFormatError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except StopIteration:
        raise LeafFormatError("not JSON") from None
    except RecursionError:
        raise LeafFormatError("nested too deeply to be a leaf") from None
    except ValueError as exc:  # JSONDecodeError and int-size limits
        raise LeafFormatError(f"not JSON: {exc}") from None
    if type(obj) is not dict:
        raise LeafFormatError("not a JSON object")
    if end != len(text):
        raise LeafFormatError("bytes follow the JSON object")
    try:
        again = _canonical(obj)
    except ValueError:
        raise LeafFormatError("holds a lone surrogate (\\ud800-\\udfff escape)") from None
    if again != data:
        raise LeafFormatError(
            "not in canonical form (sorted keys, no whitespace, no escapes of non-ASCII, "
            "no duplicate keys)"
        )
    if obj.keys() != _TOP_LEVEL_SET:
        extra = sorted(obj.keys() - _TOP_LEVEL_SET)
        missing = sorted(_TOP_LEVEL_SET - obj.keys())
        raise LeafFormatError(f"top-level keys wrong: unknown {extra}, missing {missing}")
    if type(obj["v"]) is not int or obj["v"] != LEAF_VERSION:
        raise LeafFormatError(f"version {obj['v']!r} is not 1: upgrade the verifier")
    if type(obj["index"]) is not int or obj["index"] < 0:
        raise LeafFormatError(f"index {obj['index']!r} is not a non-negative integer")
    if type(obj["body"]) is not dict:
        raise LeafFormatError("body is not an object")
    for key in ("at", "kind", "station", "prev"):
        if type(obj[key]) is not str:
            raise LeafFormatError(f"{key} is not a string")
    if not _HEX64.fullmatch(obj["prev"]):
        raise LeafFormatError("prev is not 64 lowercase hex digits")
    if not _AT.fullmatch(obj["at"]):
        raise LeafFormatError(f"at {obj['at']!r} is not UTC YYYY-MM-DDTHH:MM:SS.ffffffZ")
    return obj


def parse_leaf(data: bytes) -> Leaf:
    """Decode leaf bytes; raises LeafFormatError if they are not exactly canonical."""
    obj = check_leaf_bytes(data)
    return Leaf(
        index=obj["index"],
        at=obj["at"],
        kind=obj["kind"],
        station=obj["station"],
        prev=obj["prev"],
        body=obj["body"],
        data=data,
    )


def check_body(kind: str, body: dict[str, Any]) -> None:
    """Raise LeafFormatError unless ``kind`` is known and ``body`` has its required keys."""
    required = KINDS.get(kind)
    if required is None:
        raise LeafFormatError(
            f"unknown leaf kind {kind!r}: use one of the kinds in docs/seams.md "
            f"({', '.join(sorted(KINDS))})"
        )
    if type(body) is not dict:
        raise LeafFormatError(f"the body of a {kind} leaf must be a dict")
    missing = required - body.keys()
    if missing:
        raise LeafFormatError(f"a {kind} leaf needs body keys {sorted(missing)}")
    # The verifier's own rules, applied before writing: the station never writes a leaf
    # that its verify (or an auditor's) would reject. Imported here: rules imports leaf.
    from ledger.rules import body_problem

    problem = body_problem(kind, body)
    if problem is not None:
        raise LeafFormatError(f"refused to write a leaf the verifier would reject: {problem}")
