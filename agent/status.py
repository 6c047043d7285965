"""The station's status for IT: one function, shown by ``evidock status [--json]`` and
answered by the API's ``/api/v1/status`` (the same data, so a script may use either).

Slots and sessions, the upload queue's depth and its oldest job, disk free, the ledger's
size, the last signed checkpoint and the last published anchor and their age, and (where
configured) whether the MQTT broker and the S3 bucket answer. Everything is read from the
station's database and folders; the broker and the bucket are asked over the network,
each within ``PROBE_SECONDS``.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from agent.delivery import anchor_prefix, delivery_target
from agent.recorders_cli import session_rows
from agent.station import Station
from config.common import iso_utc, printable, utc_now
from uploader import UploadQueue

PROBE_SECONDS: Final = 3.0
DISK_LOW_PERCENT: Final = 10
NO_HASH: Final = "0" * 64
VERSION: Final = "0.1.0"

#: Asks one service whether it answers: None if it does, else why not (one line).
Probe = Callable[[], str | None]


def _age(stamp: str | None, now: datetime) -> float | None:
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round(max((now - moment).total_seconds(), 0.0), 3)


def _within(probe: Probe, what: str, seconds: float = PROBE_SECONDS) -> str | None:
    """Run ``probe`` on a thread of its own; an answer later than ``seconds`` is a no."""
    answer: list[str | None] = []

    def ask() -> None:
        try:
            answer.append(probe())
        except Exception as exc:  # any failure of a probe is "does not answer"
            answer.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=ask, name="evidock-status-probe", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return f"{what} did not answer within {seconds:.0f} s"
    return answer[0]


def _broker(station: Station, probe: bool) -> dict[str, Any]:
    section = station.config.mqtt
    if not section.host:
        return {"configured": False, "reachable": None, "problem": None}
    where = f"{section.host}:{section.port}"
    found: dict[str, Any] = {"configured": True, "address": where}
    if not probe:
        return {**found, "reachable": None, "problem": "not asked"}

    def connect() -> str | None:
        with socket.create_connection((section.host, section.port), timeout=PROBE_SECONDS):
            return None

    problem = _within(connect, f"the MQTT broker {where}")
    return {**found, "reachable": problem is None, "problem": problem}


def _bucket(station: Station, probe: bool) -> dict[str, Any]:
    delivery = station.config.delivery
    found: dict[str, Any] = {"target": delivery.target, "configured": delivery.target == "s3"}
    if delivery.target == "folder":
        # The folder target makes its folder at the first delivery: its parent will do.
        central = delivery.central_dir
        here = central.is_dir() or (not central.exists() and central.parent.is_dir())
        problem = None if here else f"central folder {central} is not there: is it mounted?"
        return {**found, "reachable": here, "problem": problem}
    if not probe:
        return {**found, "reachable": None, "problem": "not asked"}

    def head() -> str | None:
        delivery_target(station).head(NO_HASH)  # an answer, even "not held", is reachable
        return None

    problem = _within(head, f"the {delivery.target} bucket")
    return {**found, "reachable": problem is None, "problem": problem}


def _last_anchor(station: Station, now: datetime) -> dict[str, Any]:
    """The newest anchor a folder target holds of this station (its file's time); an S3
    target's anchors are not listed here (reading them is a download each)."""
    delivery = station.config.delivery
    if delivery.target != "folder":
        return {"known": False, "name": None, "published_at": None, "age_seconds": None}
    root = delivery.anchor_dir or delivery.central_dir / "anchors"
    folder = root / anchor_prefix(station).removeprefix("anchors/")
    try:
        files = [p for p in folder.glob("*.anchor") if p.is_file()]
        newest = max(files, key=lambda p: p.stat().st_mtime, default=None)
        stamp = None
        if newest is not None:
            stamp = iso_utc(datetime.fromtimestamp(newest.stat().st_mtime, tz=now.tzinfo))
    except OSError:
        newest, stamp = None, None
    return {
        "known": True,
        "name": newest.name if newest is not None else None,
        "published_at": stamp,
        "age_seconds": _age(stamp, now),
    }


def _slots(station: Station, sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each configured slot (and any other a session named): its newest session while
    the recorder was not taken out, else empty."""
    names = [str(v) for v in station.config.docking.slots.values()]
    names += [str(s["slot"]) for s in sessions if s["slot"] and str(s["slot"]) not in names]
    found: list[dict[str, Any]] = []
    for name in dict.fromkeys(names):
        newest = next(
            (s for s in sessions if s["slot"] is not None and str(s["slot"]) == name), None
        )
        if newest is None or newest["phase"] == "removed":
            found.append({"slot": name, "state": "empty", "session": None})
            continue
        keys = ("session_id", "recorder", "officer", "phase", "progress", "files", "files_done")
        found.append({"slot": name, "state": "docked", "session": {k: newest[k] for k in keys}})
    return found


def _queue(conn: sqlite3.Connection, now: datetime) -> dict[str, Any]:
    jobs = UploadQueue(conn).jobs()
    queued = [j for j in jobs if j.state == "queued"]
    oldest = min((j.created_at for j in queued if j.created_at), default=None)
    return {
        "depth": len(queued),
        "parked": sum(j.state == "parked" for j in jobs),
        "done": sum(j.state == "done" for j in jobs),
        "bytes_waiting": sum(j.size - j.sent_bytes for j in queued),
        "oldest_queued_at": oldest,
        "oldest_age_seconds": _age(oldest, now),
    }


def _disk(data_dir: Path) -> dict[str, Any]:
    try:
        usage = shutil.disk_usage(data_dir)
    except OSError as exc:
        return {"path": str(data_dir), "problem": exc.strerror or str(exc)}
    percent = round(usage.free * 100 / max(usage.total, 1), 1)
    return {
        "path": str(data_dir),
        "free_bytes": usage.free,
        "total_bytes": usage.total,
        "free_percent": percent,
    }


def station_status(
    station: Station, conn: sqlite3.Connection, *, probe: bool = True
) -> dict[str, Any]:
    """The status (``probe``: ask the broker and the bucket whether they answer)."""
    now = utc_now()
    sessions = session_rows(conn)
    by_state: dict[str, int] = {}
    by_phase: dict[str, int] = {}
    for s in sessions:
        by_state[s["state"]] = by_state.get(s["state"], 0) + 1
        by_phase[s["phase"]] = by_phase.get(s["phase"], 0) + 1
    leaves = station.ledger(conn).size()
    row = conn.execute(
        "SELECT tree_size, signed_at FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1"
    ).fetchone()
    checkpoint = {
        "tree_size": row["tree_size"] if row else None,
        "signed_at": row["signed_at"] if row else None,
        "age_seconds": _age(row["signed_at"], now) if row else None,
        "unsigned_leaves": leaves - (row["tree_size"] if row else 0),
    }
    section = station.config.station
    status: dict[str, Any] = {
        "station": {
            "id": station.station_id,
            "name": section.name,
            "place": section.place,
            "version": VERSION,
            "key": station.keyring().fingerprint(),
        },
        "at": iso_utc(now),
        "slots": _slots(station, sessions),
        "sessions": {
            "active": [s for s in sessions if s["state"] == "open"],
            "by_state": dict(sorted(by_state.items())),
            "by_phase": dict(sorted(by_phase.items())),
        },
        "queue": _queue(conn, now),
        "disk": _disk(station.data_dir),
        "ledger": {"leaves": leaves},
        "checkpoint": checkpoint,
        "anchor": _last_anchor(station, now),
        "broker": _broker(station, probe),
        "bucket": _bucket(station, probe),
    }
    status["problems"] = _problems(status)
    status["health"] = "ok" if not status["problems"] else "degraded"
    return status


def _problems(status: dict[str, Any]) -> list[str]:
    problems = []
    disk = status["disk"]
    if "problem" in disk:
        problems.append(f"disk of {disk['path']} not readable: {disk['problem']}")
    elif disk["free_percent"] < DISK_LOW_PERCENT:
        problems.append(f"disk {disk['free_percent']} % free")
    if status["queue"]["parked"]:
        problems.append(f"{status['queue']['parked']} upload(s) parked: see `evidock queue`")
    for name in ("broker", "bucket"):
        found = status[name]
        if found["configured"] and found["reachable"] is False:
            problems.append(f"{name} not reachable: {found['problem']}")
    if status["bucket"]["target"] == "folder" and status["bucket"]["reachable"] is False:
        problems.append(str(status["bucket"]["problem"]))
    return problems


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def status_lines(status: dict[str, Any]) -> list[str]:
    """The status as a person reads it."""
    st = status["station"]
    lines = [f"station {st['id']} ({st['name']}): {status['health']}"]
    lines += [f"  problem: {p}" for p in status["problems"]]
    for slot in status["slots"]:
        s = slot["session"]
        what = "empty" if s is None else f"{s['recorder']} {s['officer'] or '-'} {s['progress']}"
        lines.append(f"  slot {slot['slot']}: {what}")
    sessions = status["sessions"]
    states = ", ".join(f"{n} {k}" for k, n in sessions["by_state"].items()) or "none"
    lines.append(f"  sessions: {len(sessions['active'])} active; all: {states}")
    q = status["queue"]
    oldest = f", oldest queued {_ago(q['oldest_age_seconds'])}" if q["depth"] else ""
    lines.append(
        f"  upload queue: {q['depth']} queued ({q['bytes_waiting']} bytes){oldest}, "
        f"{q['parked']} parked, {q['done']} done"
    )
    disk = status["disk"]
    if "free_bytes" in disk:
        lines.append(
            f"  disk: {disk['free_bytes'] / 1e9:.1f} GB free of {disk['total_bytes'] / 1e9:.1f} GB"
            f" ({disk['free_percent']} %)"
        )
    cp = status["checkpoint"]
    lines.append(
        f"  ledger: {status['ledger']['leaves']} leaves; last checkpoint "
        f"{cp['tree_size'] if cp['tree_size'] is not None else '-'} signed "
        f"{_ago(cp['age_seconds'])}"
    )
    anchor = status["anchor"]
    if anchor["known"]:
        lines.append(f"  last anchor: {anchor['name'] or '-'} {_ago(anchor['age_seconds'])}")
    else:
        lines.append("  last anchor: kept in the bucket (verify --anchor s3 reads them)")
    for name in ("broker", "bucket"):
        found = status[name]
        if not found["configured"]:
            continue
        state = {True: "reachable", False: "NOT reachable", None: "not asked"}[found["reachable"]]
        extra = f": {found['problem']}" if found["reachable"] is False else ""
        lines.append(f"  {name}: {state}{extra}")
    return [printable(line) for line in lines]
