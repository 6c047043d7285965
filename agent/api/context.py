"""What every route is handed: the station, what the daemon knows live, the limiter."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from agent.station import Station

if TYPE_CHECKING:
    from agent.api.auth import AuthLimiter


def _never() -> bool | None:
    return None


def _none() -> int:
    return 0


@dataclass
class ApiContext:
    """The station the API serves. ``mqtt_connected``: the daemon's broker connection
    now (None: no broker, or no daemon); ``worker_failures``: ingest workers that ended
    with an unexpected error since the daemon started."""

    station: Station
    limiter: AuthLimiter
    mqtt_connected: Callable[[], bool | None] = field(default=_never)
    worker_failures: Callable[[], int] = field(default=_none)
    # Set when the server stops: long-lived responses (the SSE stream) end at once.
    stopping: threading.Event = field(default_factory=threading.Event)


def context(request: Request) -> ApiContext:
    found = request.app.state.evidock
    assert isinstance(found, ApiContext)
    return found


def connection(request: Request) -> Iterator[sqlite3.Connection]:
    """A connection of the station's database for one request (closed after it)."""
    conn = context(request).station.connect()
    try:
        yield conn
    finally:
        conn.close()


Ctx = Annotated[ApiContext, Depends(context)]
Conn = Annotated[sqlite3.Connection, Depends(connection)]
