"""The API's one error shape: every error a request can end with, as JSON a person can act on.

::

    {"error": {"status": 401, "code": "unauthorized", "message": "..."}}

``code`` is stable text for scripts (the CLI's boundary uses the same codes for the same
errors: ``agent.boundary.classify``); ``message`` says what to do. 401, 403, 404, 405,
422 (FastAPI's own validation errors too), 429 and 500 all take this shape; a traceback
goes to the station's log, never to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.boundary import classify
from config.common import printable

log = logging.getLogger("evidock")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
            },
        }
    },
}


class ApiError(Exception):
    """An error a route ends a request with: its HTTP status, stable code and message."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"status": status, "code": code, "message": printable(message)}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


_HTTP_CODES = {
    400: ("bad_request", "the request cannot be read: {detail}"),
    404: ("not_found", "no such route: {method} {path}; /openapi.json lists the API's routes"),
    405: ("method_not_allowed", "{method} is not allowed on {path}; /openapi.json lists what is"),
}


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, text = _HTTP_CODES.get(exc.status_code, ("http_error", "{detail}"))
    message = text.format(detail=exc.detail, method=request.method, path=request.url.path)
    return error_response(exc.status_code, code, message, exc.headers)


def _where(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "header", "body"):
        name = ".".join(parts[1:]) or "(whole)"
        return f"{parts[0]} parameter {name}" if parts[0] != "body" else f"body field {name}"
    return ".".join(parts) or "the request"


def validation_message(errors: Sequence[Any]) -> str:
    """One line per problem, joined: where, what is wrong, what was given."""
    lines = []
    for err in errors:
        given = err.get("input")
        shown = f" (given {given!r})" if isinstance(given, str | int | float) else ""
        lines.append(f"{_where(err.get('loc', ()))}: {err.get('msg', 'not valid')}{shown}")
    return "; ".join(lines) or "the request is not valid"


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "bad_request", validation_message(exc.errors()))


def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


class ErrorGuard:
    """Any other error a route raises: the project's errors by ``agent.boundary``'s one
    map (status, code, message), anything else a 500 whose details go to the log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:
                raise
            outcome = classify(exc)
            where = f"{scope.get('method')} {scope.get('path')}"
            if outcome.code == "internal":
                log.error("API: %s failed: %s: %s", where, type(exc).__name__, exc, exc_info=exc)
                response = error_response(
                    500,
                    "internal",
                    "internal error; the request changed no evidence; the station's log has "
                    "the details: tell the station's IT staff",
                )
            else:
                log.warning("API: %s: %s", where, printable(outcome.message))
                response = error_response(outcome.http_status, outcome.code, outcome.message)
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(ErrorGuard)
