"""The FastAPI application of one station (``create_app``): the routes, the one error
shape, and the OpenAPI document at ``/openapi.json`` (with a token, like every route
but ``/healthz``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from agent.api import (
    errors,
    metrics,
    routes_cases,
    routes_clips,
    routes_evidence,
    routes_health,
    routes_ledger,
    routes_pages,
    routes_queue,
    routes_sessions,
)
from agent.api.auth import AnyCaller, AuthLimiter
from agent.api.context import ApiContext
from agent.station import Station
from agent.status import VERSION

SCHEMA = errors.ERROR_SCHEMA
DESCRIPTION = (
    "The management API of an evidock station. Every route but /healthz needs "
    "'Authorization: Bearer <token>' (`evidock token create`). Errors are "
    '{"error": {"status", "code", "message"}}. No route deletes or alters evidence.'
)


def create_app(
    station: Station,
    *,
    mqtt_connected: Callable[[], bool | None] | None = None,
    worker_failures: Callable[[], int] | None = None,
    clock: Callable[[], float] | None = None,
) -> FastAPI:
    """The API of ``station``; the daemon passes what it knows live (its broker
    connection, its ingest workers' failures); ``clock`` is the limiter's (tests)."""
    section = station.config.api
    limiter = AuthLimiter(section.auth_failures, section.auth_window_seconds)
    if clock is not None:
        limiter.clock = clock
    ctx = ApiContext(station, limiter)
    if mqtt_connected is not None:
        ctx.mqtt_connected = mqtt_connected
    if worker_failures is not None:
        ctx.worker_failures = worker_failures
    app = FastAPI(
        # The document needs a token like every route but /healthz (served below).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        title=f"evidock station {station.station_id}",
        version=VERSION,
        description=DESCRIPTION,
        responses={
            code: {
                "description": what,
                "content": {"application/json": {"schema": errors.ERROR_SCHEMA}},
            }
            for code, what in (
                (401, "no token, or not a valid one"),
                (403, "the token's role may not use this route"),
                (422, "a parameter is not valid"),
                (429, "too many failed authentications from this address"),
                (500, "internal error (details in the station's log)"),
            )
        },
    )
    app.state.evidock = ctx
    errors.install(app)
    app.include_router(routes_health.router)
    # Before the cases routes: /api/v1/cases/rule is not a case number.
    app.include_router(routes_pages.router)
    app.include_router(metrics.router)
    app.include_router(routes_evidence.router)
    app.include_router(routes_clips.router)
    app.include_router(routes_sessions.router)
    app.include_router(routes_cases.router)
    app.include_router(routes_queue.router)
    app.include_router(routes_ledger.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(token: AnyCaller) -> dict[str, Any]:
        return app.openapi()

    return app
