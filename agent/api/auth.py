"""Who is calling: a bearer token (``agent.tokens``), its role checked per route, and
failed authentications limited per client address and logged.

Roles and what they may use (docs/api.md):

==========  ==============================================================
officer     /readyz; clips: only their own (the token's owner is the
            session's officer)
clerk       /readyz, status; clips
auditor     /readyz, status, /metrics; clips
admin       /readyz, status, /metrics (IT runs the station; no clips)
==========  ==============================================================

Sensitivity: a token's owner is the person id the station's ``[sensitivity]`` lists name;
privacy and secret clips are shown only to an owner listed for that level (directly or
through ``[sensitivity.roles]``). The API role never widens that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Final

from fastapi import Depends, Request

from agent.api.context import ApiContext, Conn, Ctx
from agent.api.errors import ApiError
from agent.tokens import ROLES, Token, TokenStore
from config.common import printable

log = logging.getLogger("evidock")

ANY_ROLE: Final = ROLES
STATUS_ROLES: Final = ("clerk", "admin", "auditor")
METRICS_ROLES: Final = ("admin", "auditor")
CLIP_ROLES: Final = ("officer", "clerk", "auditor")
BEARER: Final = {"WWW-Authenticate": 'Bearer realm="evidock"'}


@dataclass
class AuthLimiter:
    """Failed authentications per client address: ``failures`` within ``window`` seconds
    and that address is refused (429) until the oldest of them is ``window`` old."""

    failures: int
    window: float
    clock: Callable[[], float] = time.monotonic
    total: int = 0  # every failure since start (metrics)
    _seen: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, client: str, now: float) -> deque[float]:
        seen = self._seen.setdefault(client, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if not seen:
            self._seen.pop(client, None)
        return seen

    def blocked(self, client: str) -> float | None:
        """Seconds until ``client`` may try again, or None if it may now."""
        with self._lock:
            now = self.clock()
            seen = self._recent(client, now)
            if len(seen) < self.failures:
                return None
            return max(seen[0] + self.window - now, 0.0)

    def failed(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            self._recent(client, now)
            self._seen.setdefault(client, deque()).append(now)
            self.total += 1


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _refuse(ctx: ApiContext, client: str, request: Request, why: str) -> None:
    ctx.limiter.failed(client)
    log.warning(
        "API: failed authentication from %s for %s %s: %s",
        client,
        request.method,
        request.url.path,
        printable(why),
    )


def caller(request: Request, ctx: Ctx, conn: Conn) -> Token:
    """The token of the request, or 401 (429 once its address failed too often)."""
    client = _client(request)
    wait = ctx.limiter.blocked(client)
    if wait is not None:
        log.warning(
            "API: %s refused: too many failed authentications (%d in %.0f s)",
            client,
            ctx.limiter.failures,
            ctx.limiter.window,
        )
        raise ApiError(
            429,
            "too_many_failures",
            f"too many failed authentications from {client}: wait {wait:.0f} s, then use a "
            "valid token (evidock token create makes one)",
            {"Retry-After": str(max(int(wait + 0.999), 1))},
        )
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        _refuse(ctx, client, request, "no bearer token")
        raise ApiError(
            401,
            "unauthorized",
            "this route needs a token: send 'Authorization: Bearer <token>' (IT makes one "
            "with `evidock token create`)",
            BEARER,
        )
    token, why = TokenStore(conn).authenticate(presented)
    if token is None:
        _refuse(ctx, client, request, why)
        raise ApiError(
            401,
            "unauthorized",
            "the token is not valid on this station (unknown, mistyped or revoked): ask IT "
            "for a new one",
            BEARER,
        )
    return token


def require(*roles: str) -> Callable[..., Token]:
    """A dependency: the caller's token, if its role is one of ``roles``; else 403."""

    def check(request: Request, token: Annotated[Token, Depends(caller)]) -> Token:
        if token.role not in roles:
            raise ApiError(
                403,
                "forbidden",
                f"a token of role {token.role} may not use {request.method} "
                f"{request.url.path}; roles that may: {', '.join(roles)}",
            )
        return token

    return check


AnyCaller = Annotated[Token, Depends(require(*ANY_ROLE))]
StatusCaller = Annotated[Token, Depends(require(*STATUS_ROLES))]
MetricsCaller = Annotated[Token, Depends(require(*METRICS_ROLES))]
ClipCaller = Annotated[Token, Depends(require(*CLIP_ROLES))]
