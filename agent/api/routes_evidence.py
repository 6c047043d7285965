"""``GET /api/v1/clips/{id}/content?purpose=...``: the footage itself, whole (a download)
or a byte range of it (streaming: ``Range: bytes=...`` answered 206 with
``Content-Range``; a range that cannot be served 416).

Supervised access (调阅监督), as ``evidock fetch`` (``agent.access``): the token's owner
is ``who``, the stated ``purpose`` is required, and a ``clip.accessed`` leaf (action
``download`` or ``stream``, via ``api``) is committed before the first byte is sent. A
clip whose sensitivity the owner is not listed for is refused with 403 and an
``access.refused`` leaf (``agent.sensitivity.check_fetch``: the attempt is on record, so
it is answered as such rather than as a missing clip). An officer's request for another
officer's clip is 404, as a clip that does not exist (the rule of ``routes_clips``).

Every request is one access and one leaf: a player that asks for many ranges records
many views. What is sent is read from the content-addressed store and hashed on the way;
a whole download whose bytes do not match the ledger's SHA-256 is cut off before its end
(the client sees a short body, never a complete wrong file) and logged: run
``evidock verify``. ``Repr-Digest`` carries the ledger's SHA-256 for the client to check.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import mimetypes
import os
import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Annotated, Final

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from agent.access import AccessIntegrityError, record_access
from agent.api.auth import ClipCaller
from agent.api.context import Conn, Ctx
from agent.api.errors import ApiError
from agent.api.routes_clips import ClipId, _facts
from agent.sensitivity import MAX_TEXT, check_fetch
from agent.station import Station
from config.policy import person_key
from hashing import NotRegularFileError

router = APIRouter(prefix="/api/v1")
log = logging.getLogger("evidock")

CHUNK: Final = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _not_found(clip_id: str) -> ApiError:
    return ApiError(
        404,
        "not_found",
        f"no clip {clip_id} this token may see: check the id (GET /api/v1/clips lists "
        "the clips it may see)",
    )


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte a ``Range`` header asks for (None: the whole clip);
    ApiError 416 for a range this clip cannot serve or that is not one byte range."""
    if header is None:
        return None
    found = _RANGE.match(header.strip())
    first_text, last_text = found.groups() if found else ("", "")
    if found is None or (not first_text and not last_text):
        raise _unsatisfiable(
            f"Range {header!r} is not one byte range: send bytes=FIRST-LAST, bytes=FIRST- "
            "or bytes=-LAST_N",
            size,
        )
    if not first_text:  # the last N bytes
        count = int(last_text)
        if count == 0 or size == 0:
            raise _unsatisfiable(f"Range {header!r} asks for no bytes", size)
        return max(0, size - count), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if first >= size or last < first:
        raise _unsatisfiable(
            f"Range {header!r} is outside the clip (bytes 0-{size - 1}, {size} bytes)", size
        )
    return first, min(last, size - 1)


def _unsatisfiable(message: str, size: int) -> ApiError:
    return ApiError(416, "range_not_satisfiable", message, {"Content-Range": f"bytes */{size}"})


def _record_access(
    station: Station, conn: Conn, clip_id: str, *, who: str, purpose: str, action: str
) -> int:
    """Refuse (403, an ``access.refused`` leaf) or record the access; returns its leaf.
    The leaf body is ``agent.access.fetch_clip``'s, via ``api``."""
    ledger = station.ledger(conn)
    refused = check_fetch(
        conn, ledger, station.config.sensitivity, clip_id, who=who, purpose=purpose, via="api"
    )
    if refused is not None:
        raise ApiError(403, "access_refused", refused)
    leaf = record_access(station, conn, clip_id, who=who, purpose=purpose, action=action, via="api")
    return leaf.index


def _chunks(
    station: Station, clip_id: str, sha256: str, first: int, last: int, whole: bool
) -> Iterator[bytes]:
    try:
        fd = station.store.open_object(sha256)
    except (FileNotFoundError, NotRegularFileError):
        log.error("API: clip %s is missing from the store: run `evidock verify`", clip_id)
        raise AccessIntegrityError(f"clip {clip_id} is missing from the store") from None
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as reader:
        reader.seek(first)
        left = last - first + 1
        while left > 0:
            block = reader.read(min(CHUNK, left))
            if not block:
                break
            left -= len(block)
            digest.update(block)
            if whole and left == 0 and digest.hexdigest() != sha256:
                # The last block is held back: the client gets a short body, not a
                # complete file that is not the evidence.
                log.error("API: clip %s does not match its ledger SHA-256", clip_id)
                raise AccessIntegrityError(
                    f"clip {clip_id} does not match its ledger SHA-256: run `evidock verify`"
                )
            yield block
    if left > 0:
        log.error("API: clip %s in the store is shorter than recorded", clip_id)
        raise AccessIntegrityError(f"clip {clip_id} in the store is shorter than recorded")


@router.get(
    "/clips/{clip_id}/content",
    summary="Download or stream a clip (HTTP Range); the access is a ledger leaf first",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}},
        206: {"description": "the byte range asked for"},
        403: {"description": "the token's owner may not view this clip's sensitivity"},
        404: {"description": "no clip this token may see"},
        416: {"description": "the Range cannot be served"},
    },
)
def content(
    ctx: Ctx,
    conn: Conn,
    token: ClipCaller,
    clip_id: ClipId,
    purpose: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_TEXT,
            pattern=r"\S",
            description="why the footage is viewed (recorded in the ledger)",
        ),
    ],
    range_: Annotated[str | None, Header(alias="range")] = None,
) -> StreamingResponse:
    facts = next((c for c in _facts(ctx, conn) if c.clip_id == clip_id), None)
    if facts is None or (
        token.role == "officer" and person_key(facts.officer or "") != person_key(token.owner)
    ):
        raise _not_found(clip_id)
    row = conn.execute(
        "SELECT sha256, size, source_path FROM clips WHERE clip_id = ?", (clip_id,)
    ).fetchone()
    size, sha256 = int(row["size"]), str(row["sha256"])
    span = parse_range(range_, size)
    leaf = _record_access(
        ctx.station,
        conn,
        clip_id,
        who=token.owner,
        purpose=purpose.strip(),
        action="download" if span is None else "stream",
    )
    suffix = PurePosixPath(str(row["source_path"] or "")).suffix.lower()
    first, last = span if span is not None else (0, size - 1)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(last - first + 1),
        "ETag": f'"{sha256}"',
        "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:",
        "Content-Disposition": f'attachment; filename="{clip_id}{suffix}"',
        "X-Evidock-Access-Leaf": str(leaf),
        "Cache-Control": "no-store",
    }
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(
        _chunks(ctx.station, clip_id, sha256, first, last, whole=span is None),
        status_code=206 if span is not None else 200,
        media_type=mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream",
        headers=headers,
    )
