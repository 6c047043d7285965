"""A Mosquitto broker of the test's own: loopback port, persistence folder, optional
password file and TLS (a throwaway CA), stoppable, killable and restartable in place."""

from __future__ import annotations

import atexit
import shutil
import signal
import subprocess
from pathlib import Path

from services.ports import (
    LOOPBACK,
    ServiceError,
    end,
    free_port,
    kill,
    port_open,
    run,
    spawn,
    wait_until,
)
from services.tls import make_server_certificates

READY_TIMEOUT = 15.0


def installed() -> bool:
    return shutil.which("mosquitto") is not None


class Mosquitto:
    """One broker in `folder`: `port` (plain) and, with `tls=True`, `tls_port`.

    With `username`, anonymous clients are refused and that user is the only account.
    Persistence is saved on every change (autosave_on_changes), so a broker killed with
    SIGKILL and started again keeps its persistent sessions and their queued messages.
    """

    def __init__(
        self,
        folder: Path,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.folder = folder
        self.username = username
        self.password = password
        self.host = LOOPBACK
        self.port = free_port()
        self.tls_port: int | None = free_port() if tls else None
        self.config = folder / "mosquitto.conf"
        self.log = folder / "mosquitto.log"
        self.persistence = folder / "persistence"
        self.ca_file: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._registered = False
        folder.mkdir(parents=True, exist_ok=True)
        self.persistence.mkdir(exist_ok=True)
        if tls:
            self.ca_file = make_server_certificates(folder / "tls")
        if username is not None and password is not None:
            run(
                ["mosquitto_passwd", "-c", "-b", str(folder / "passwords"), username, password],
                what="mosquitto password file",
            )
        self.config.write_text(self._config_text())

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Mosquitto:
        """Start (or start again, same ports, same persistence) and wait until it listens."""
        if self.running:
            return self
        self._process = spawn(["mosquitto", "-c", str(self.config)], self.log)
        if not self._registered:
            atexit.register(self.stop)
            self._registered = True
        ports = [self.port] if self.tls_port is None else [self.port, self.tls_port]
        try:
            wait_until(
                lambda: all(port_open(p) for p in ports),
                what=f"mosquitto on {self.host}:{self.port}",
                timeout=READY_TIMEOUT,
                log=self.log,
                process=self._process,
            )
        except ServiceError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """A clean stop (SIGTERM): the broker saves its persistence file and exits."""
        self.resume()
        end(self._process)

    def kill(self) -> None:
        """A crash (SIGKILL): what was saved before is all that survives."""
        kill(self._process)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is acknowledged."""
        if self._process is not None and self.running:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused broker run again (SIGCONT)."""
        if self._process is not None and self.running:
            self._process.send_signal(signal.SIGCONT)

    def _config_text(self) -> str:
        lines = [
            # Run as root, mosquitto drops to its own user and cannot write our folder.
            "user root",
            f"listener {self.port} {self.host}",
            "persistence true",
            f"persistence_location {self.persistence}/",
            "autosave_interval 1",
            "autosave_on_changes true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if self.username is None:
            lines.append("allow_anonymous true")
        else:
            lines += ["allow_anonymous false", f"password_file {self.folder / 'passwords'}"]
        if self.tls_port is not None:
            tls = self.folder / "tls"
            lines += [
                f"listener {self.tls_port} {self.host}",
                f"cafile {tls / 'ca.crt'}",
                f"certfile {tls / 'server.crt'}",
                f"keyfile {tls / 'server.key'}",
                "tls_version tlsv1.2",
            ]
        return "\n".join(lines) + "\n"
