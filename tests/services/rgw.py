"""A throwaway single-node Ceph cluster with a RADOS Gateway: real S3 on loopback.

One monitor, one memstore OSD and one radosgw, no manager and no systemd, everything
(config, keys, monitor store, logs, pid files, sockets) in one temporary folder and every
daemon a foreground child owned by this process. Ready once an S3 user exists.
"""

from __future__ import annotations

import atexit
import json
import secrets
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

from services.ports import (
    LOOPBACK,
    ServiceError,
    end,
    free_port,
    kill,
    log_tail,
    port_open,
    run,
    spawn,
    wait_until,
)
from services.tls import make_server_certificates

READY_TIMEOUT = 60.0
DAEMONS = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph-authtool")


def installed() -> bool:
    return all(shutil.which(name) is not None for name in DAEMONS)


class Rgw:
    """A Ceph RGW at `endpoint` with one S3 user (`access_key`, `secret_key`).

    `memstore_bytes` caps what the OSD may hold (in memory). `kill_rgw()` / `start_rgw()`
    crash and restart the gateway alone, on the same port, while the cluster stays.
    """

    def __init__(
        self, folder: Path | None = None, *, memstore_bytes: int = 4 << 30, tls: bool = False
    ) -> None:
        # Unix socket paths are limited to 107 bytes: keep the folder short, under /tmp.
        self.folder = folder or Path(tempfile.mkdtemp(prefix="evidock-rgw-"))
        self.memstore_bytes = memstore_bytes
        self.mon_port = free_port()
        self.port = free_port()
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        # HTTPS as agencies run it: boto3 then streams with checksum trailers (see the docs).
        self.tls_port: int | None = free_port() if tls else None
        self.tls_endpoint = (
            f"https://{LOOPBACK}:{self.tls_port}" if tls else None
        )  # IP SAN: a minimal root may not resolve localhost
        self.ca_file: Path | None = None
        self.access_key = secrets.token_hex(10).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.user = "evidock-test"
        self.conf = self.folder / "ceph.conf"
        self._mon: subprocess.Popen[bytes] | None = None
        self._osd: subprocess.Popen[bytes] | None = None
        self._rgw: subprocess.Popen[bytes] | None = None
        self._registered = False

    # -- the whole cluster ------------------------------------------------------------

    def start(self) -> Rgw:
        """Make and start the cluster, then the gateway, then the S3 user (~12 s cold)."""
        if not self._registered:
            atexit.register(self.stop)
            self._registered = True
        try:
            self._make_cluster()
            self.start_rgw()
            run(
                ["radosgw-admin", "-c", str(self.conf), "user", "create", f"--uid={self.user}",
                 "--display-name=evidock tests", f"--access-key={self.access_key}",
                 f"--secret-key={self.secret_key}"],
                what="radosgw-admin user create",
            )  # fmt: skip
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every daemon by its own pid (gateway, OSD, monitor), then remove the folder."""
        for process in (self._rgw, self._osd, self._mon):
            end(process)
        self._rgw = self._osd = self._mon = None
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def pids(self) -> dict[str, int]:
        named = {"ceph-mon": self._mon, "ceph-osd": self._osd, "radosgw": self._rgw}
        return {name: p.pid for name, p in named.items() if p is not None and p.poll() is None}

    # -- the gateway alone -------------------------------------------------------------

    def start_rgw(self) -> None:
        """Start radosgw on its port and wait until it answers S3 (the cluster must run)."""
        if self._rgw is not None and self._rgw.poll() is None:
            return
        log = self.folder / "log" / "radosgw.out"
        self._rgw = spawn(["radosgw", "-f", "-c", str(self.conf), "-n", "client.rgw.a"], log)
        ports = [self.port] if self.tls_port is None else [self.port, self.tls_port]
        ready = lambda: all(port_open(p) for p in ports)  # noqa: E731
        self._wait(ready, "radosgw", self._rgw, "client.rgw.a")

    def kill_rgw(self) -> None:
        """SIGKILL the gateway (a crash mid-request); the monitor and the OSD keep running."""
        kill(self._rgw)
        self._rgw = None

    def client(self, *, tls: bool = False, **config: Any) -> Any:
        """A boto3 S3 client for this gateway: path-style, no retries hiding faults.

        `config` goes to botocore's Config (e.g. request_checksum_calculation=...);
        `tls=True` speaks HTTPS to `tls_endpoint`, trusting `ca_file` alone.
        """
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        options: dict[str, Any] = {
            "s3": {"addressing_style": "path"},
            "retries": {"max_attempts": 1, "mode": "standard"},
            "connect_timeout": 5,
            "read_timeout": 30,
        }
        options.update(config)
        if tls and self.tls_endpoint is None:
            raise ValueError("this gateway was made without tls=True")
        return boto3.client(
            "s3",
            endpoint_url=self.tls_endpoint if tls else self.endpoint,
            verify=str(self.ca_file) if tls else None,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(**options),
        )

    # -- making the cluster ------------------------------------------------------------

    def _make_cluster(self) -> None:
        for sub in ("run", "log", "mon", "osd/ceph-0", "rgw"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        if self.tls_port is not None:
            self.ca_file = make_server_certificates(self.folder / "tls")
        fsid = str(uuid.uuid4())
        self.conf.write_text(self._conf_text(fsid))
        keyring = self.folder / "keyring"
        tool = "ceph-authtool"
        run([tool, "--create-keyring", str(keyring), "--gen-key", "-n", "mon.",
             "--cap", "mon", "allow *"], what=tool)  # fmt: skip
        run([tool, str(keyring), "--gen-key", "-n", "client.admin", "--cap", "mon", "allow *",
             "--cap", "osd", "allow *", "--cap", "mgr", "allow *"], what=tool)  # fmt: skip
        run([tool, str(keyring), "--gen-key", "-n", "client.rgw.a", "--cap", "mon", "allow rw",
             "--cap", "osd", "allow rwx"], what=tool)  # fmt: skip
        monmap = self.folder / "monmap"
        run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a",
             f"[v2:{LOOPBACK}:{self.mon_port}]", str(monmap)], what="monmaptool")  # fmt: skip
        run(["ceph-mon", "-c", str(self.conf), "--mkfs", "-i", "a", "--monmap", str(monmap),
             "--keyring", str(keyring)], what="ceph-mon --mkfs")  # fmt: skip
        log = self.folder / "log" / "ceph-mon.out"
        self._mon = spawn(["ceph-mon", "-f", "-c", str(self.conf), "-i", "a"], log)
        self._wait(lambda: port_open(self.mon_port), "ceph-mon", self._mon, "mon.a")

        osd_uuid = str(uuid.uuid4())
        secret = run([tool, "--gen-print-key"], what=tool).strip()
        run(
            [*self._admin("ceph"), "osd", "new", osd_uuid, "0", "-i", "-"],
            what="ceph osd new",
            stdin=json.dumps({"cephx_secret": secret}).encode(),
        )
        osd_keyring = self.folder / "osd" / "ceph-0" / "keyring"
        run([tool, "--create-keyring", str(osd_keyring), "-n", "osd.0", "--add-key", secret],
            what=tool)  # fmt: skip
        run(["ceph-osd", "-c", str(self.conf), "-i", "0", "--mkfs", "--key", secret,
             "--osd-uuid", osd_uuid], what="ceph-osd --mkfs")  # fmt: skip
        log = self.folder / "log" / "ceph-osd.out"
        self._osd = spawn(["ceph-osd", "-f", "-c", str(self.conf), "-i", "0"], log)

    def _admin(self, tool: str) -> list[str]:
        return [tool, "-c", str(self.conf), "--connect-timeout", "30"]

    def _wait(
        self, ready: Any, what: str, process: subprocess.Popen[bytes] | None, name: str
    ) -> None:
        log = self.folder / "log" / f"ceph-{name}.log"
        try:
            wait_until(ready, what=what, timeout=READY_TIMEOUT, log=log, process=process)
        except ServiceError as exc:
            out = self.folder / "log" / f"{what}.out"
            raise ServiceError(f"{exc}\n{what} output:\n{log_tail(out, 10)}") from None

    def _conf_text(self, fsid: str) -> str:
        d = self.folder
        frontend = f"beast endpoint={LOOPBACK}:{self.port}"
        if self.tls_port is not None:
            frontend += (
                f" ssl_endpoint={LOOPBACK}:{self.tls_port}"
                f" ssl_certificate={d}/tls/server.crt ssl_private_key={d}/tls/server.key"
            )
        return f"""\
[global]
fsid = {fsid}
mon_host = v2:{LOOPBACK}:{self.mon_port}
mon_initial_members = a
ms_bind_msgr1 = false
ms_bind_msgr2 = true
public_addr = {LOOPBACK}
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = {d}/keyring
run_dir = {d}/run
admin_socket = {d}/run/$name.asok
log_file = {d}/log/ceph-$name.log
pid_file = {d}/run/$name.pid
mon_data = {d}/mon/$cluster-$id
osd_data = {d}/osd/$cluster-$id
osd_objectstore = memstore
memstore_device_bytes = {self.memstore_bytes}
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
osd_max_object_name_len = 460
osd_max_object_namespace_len = 64

[osd]
keyring = {d}/osd/$cluster-$id/keyring

[client.rgw.a]
rgw_frontends = {frontend}
rgw_data = {d}/rgw
# A crashed gateway's cache watches linger for osd_client_watch_timeout (30 s), and the
# next metadata write (a new bucket) waits for them; one gateway needs no shared cache.
rgw_cache_enabled = false
"""
