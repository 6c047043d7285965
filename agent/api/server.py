"""The API served by the daemon: uvicorn on a thread of the daemon's own process, started
after start-up reconciliation and stopped with the daemon (``serve_api``)."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Final

import uvicorn

from agent.api.app import create_app
from agent.errors import EvidockError
from agent.station import Station

if TYPE_CHECKING:
    from agent.daemon import Daemon

log = logging.getLogger("evidock")

START_SECONDS: Final = 15.0
STOP_SECONDS: Final = 10.0


class ApiStartError(EvidockError):
    """The API cannot listen as configured (the port is taken, a TLS file is unreadable)."""


class ApiServer:
    """uvicorn on its own thread: ``start`` returns once it listens (or raises), ``stop``
    returns once it has closed its socket and its thread has ended."""

    def __init__(self, station: Station, daemon: Daemon | None = None) -> None:
        section = station.config.api
        app = create_app(
            station,
            mqtt_connected=(lambda: _connected(daemon)) if daemon is not None else None,
            worker_failures=(lambda: len(daemon.failures)) if daemon is not None else None,
        )
        self.section = section
        self.app = app
        self.config = uvicorn.Config(
            app,
            host=section.host,
            port=section.port,
            ssl_certfile=str(section.tls_cert_file) if section.tls_cert_file else None,
            ssl_keyfile=str(section.tls_key_file) if section.tls_key_file else None,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(self.config)
        self.thread: threading.Thread | None = None
        self.failure: BaseException | None = None

    def _serve(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # uvicorn ends a failed start with SystemExit
            self.failure = exc

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS chose for ``port = 0``)."""
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.section.port

    @property
    def url(self) -> str:
        scheme = "https" if self.section.tls else "http"
        host = f"[{self.section.host}]" if ":" in self.section.host else self.section.host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> ApiServer:
        self.thread = threading.Thread(target=self._serve, name="evidock-api", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                where = f"{self.section.host}:{self.section.port}"
                raise ApiStartError(
                    f"the API cannot listen on {where} (the port may be taken, or a TLS "
                    "file unreadable: the log says which); set [api] port or host, or "
                    "enabled = false"
                )
            time.sleep(0.02)
        if not self.section.loopback:
            log.warning(
                "API: listening on %s, reachable from the network%s",
                self.section.host,
                ""
                if self.section.tls
                else " WITHOUT TLS: set [api] tls_cert_file and tls_key_file",
            )
        log.info("API: serving %s", self.url)
        return self

    def stop(self) -> None:
        # Streams first (they would hold the server open), then the server itself.
        self.app.state.evidock.stopping.set()
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(STOP_SECONDS)
            if self.thread.is_alive():
                log.error("API: did not stop within %.0f s", STOP_SECONDS)
            else:
                log.info("API: stopped")


def _connected(daemon: Daemon) -> bool | None:
    publisher = daemon.telemetry.publisher
    return None if publisher is None else bool(publisher.state.connected)


def serve_api(station: Station, daemon: Daemon | None = None) -> ApiServer | None:
    """Start the API when ``[api] enabled``; None otherwise."""
    if not station.config.api.enabled:
        return None
    return ApiServer(station, daemon).start()
