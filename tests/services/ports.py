"""Free loopback ports, readiness polling and owned child processes for the test services.

Every daemon here is a foreground child of the process that started it: its pid is kept,
it is stopped by that pid only, and it is told by the kernel to die with its parent
(PR_SET_PDEATHSIG), so a test run killed outright leaves no broker or Ceph daemon behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class ServiceError(RuntimeError):
    """A test service did not start or stop; the message carries the daemon's log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    log: Path,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll `ready` until it is true; fail with the daemon's log tail if it dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if process is not None and process.poll() is not None:
            raise ServiceError(
                f"{what}: the process exited with {process.returncode}; log {log}:\n{log_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{what}: not ready after {timeout:.0f} s; log {log}:\n{log_tail(log)}"
            )
        time.sleep(0.1)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask for SIGKILL when the parent goes away.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(argv: Sequence[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a foreground daemon owned by this process, its output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            preexec_fn=_die_with_parent,
        )


def end(process: subprocess.Popen[bytes] | None, *, grace: float = 10.0) -> None:
    """Stop one owned child by its pid: SIGTERM, then SIGKILL after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)


def kill(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL one owned child by its pid and reap it (a crash, as the fault tests want)."""
    if process is None or process.poll() is not None:
        return
    process.kill()
    process.wait(timeout=10)


def run(
    argv: Sequence[str], *, what: str, timeout: float = 60.0, stdin: bytes | None = None
) -> str:
    """Run a setup command to completion; fail with its output if it does not succeed."""
    try:
        done = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"{what}: {argv[0]} did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace").strip()
        raise ServiceError(f"{what}: {' '.join(argv)} exited {done.returncode}:\n{output}")
    return done.stdout.decode(errors="replace")
