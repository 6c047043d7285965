"""The officer kiosk (``/kiosk``, docs/kiosk.md) and the one route it needs beside the
sessions and cases routes: ``GET /api/v1/cases/rule``, the agency's case-number rule, so
the page checks a number as it is typed.

The page and its two files are plain files shipped in the package (``static/kiosk/``, no
build step); they hold no data and are served without a token, like ``/healthz``. The
station's language is written into the page as it is served (``<html lang>``), so the
kiosk opens in it before any token is known. Everything the page shows comes from the API
with the kiosk's own token (kept in the browser's storage; docs/kiosk.md says why and
what that risks).
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from agent.api.auth import AnyCaller
from agent.api.context import Conn, Ctx
from agent.api.errors import ApiError

router = APIRouter()

KIOSK: Final = Path(__file__).parent / "static" / "kiosk"
FILES: Final = {"kiosk.js": "text/javascript", "kiosk.css": "text/css"}
# The page runs only its own files: no inline script, no other origin, never framed.
HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
# Keys of the on-screen keyboard besides digits and brackets: the station's own case
# numbers' characters first (its agency's), then these common ones, up to KEYS in all.
COMMON_KEYS: Final = "京公刑行政罚执立字决告受案"
KEYS: Final = 24
_LANG: Final = re.compile(r'<html lang="[^"]*"')


def _missing(name: str) -> ApiError:
    return ApiError(
        404,
        "not_found",
        f"the kiosk's file {name} is not installed: reinstall evidock (its package data "
        "holds agent/api/static/kiosk)",
    )


@router.get("/kiosk", include_in_schema=False)
def kiosk(ctx: Ctx) -> HTMLResponse:
    page = KIOSK / "index.html"
    try:
        text = page.read_text("utf-8")
    except OSError:
        raise _missing("index.html") from None
    language = ctx.station.config.station.language
    text = _LANG.sub(f'<html lang="{language}"', text, count=1)
    return HTMLResponse(text, headers=HEADERS)


@router.get("/kiosk/{name}", include_in_schema=False)
def kiosk_file(name: str) -> Response:
    media = FILES.get(name)
    path = KIOSK / name
    if media is None:
        raise ApiError(404, "not_found", f"no kiosk file {name}: the kiosk is at /kiosk")
    if not path.is_file():
        raise _missing(name)
    return FileResponse(path, media_type=f"{media}; charset=utf-8", headers=HEADERS)


def _is_han(ch: str) -> bool:
    return unicodedata.category(ch) == "Lo" and "CJK" in unicodedata.name(ch, "")


def keyboard_keys(conn: sqlite3.Connection, example: str) -> list[str]:
    """The characters an officer needs to type this station's case numbers: those of its
    cases and links (most used first), of the rule's example, then common ones."""
    used: Counter[str] = Counter()
    for (number,) in conn.execute(
        "SELECT case_number FROM cases UNION ALL SELECT case_number FROM case_links"
    ):
        used.update(ch for ch in str(number) if _is_han(ch) and ch != "号")
    ordered = [ch for ch, _ in used.most_common()]
    ordered += [ch for ch in example if _is_han(ch) and ch != "号"]
    ordered += list(COMMON_KEYS)
    return list(dict.fromkeys(ordered))[:KEYS]


@router.get("/api/v1/cases/rule", summary="The agency's case-number rule (any role)")
def case_rule(ctx: Ctx, conn: Conn, token: AnyCaller) -> dict[str, Any]:
    """The rule new numbers are checked against: ``pattern`` with its ``parts``,
    ``example``, and ``regex``, the whole rule as one regular expression (JavaScript
    syntax, matched against the folded number; null: any non-empty number), and the
    on-screen keyboard's ``keys``. The station checks every number again when it is used."""
    rule = ctx.station.config.cases.rule()
    compiled = rule.regex()
    return {
        "pattern": rule.pattern,
        "parts": dict(rule.parts or {}),
        "example": rule.example,
        "regex": None if compiled is None else compiled.pattern.replace("(?P<", "(?<"),
        "keys": keyboard_keys(conn, rule.example),
    }
