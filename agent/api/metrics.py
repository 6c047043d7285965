"""``/metrics``: the station in Prometheus' text exposition format (version 0.0.4),
written here (a dozen series need no client library).

Series (each with ``# HELP`` and ``# TYPE``): ingest bytes and clips, sessions by state
and by phase, upload queue depth and its oldest job's age, jobs by state, errors by kind,
disk free and total, ledger size, the last checkpoint's and anchor's age, the MQTT
connection. An age with nothing to measure (no checkpoint yet) is left out, never 0.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from agent.api.auth import MetricsCaller
from agent.api.context import ApiContext, Conn, Ctx
from agent.status import VERSION, station_status

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

router = APIRouter()

Sample = tuple[dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    """One metric family: its HELP and TYPE lines, then one line per sample."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        lines.append(f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}")
    return lines


def _errors(conn: sqlite3.Connection, ctx: ApiContext) -> list[Sample]:
    incomplete = conn.execute(
        "SELECT count(*) FROM docking_sessions WHERE state = 'incomplete'"
    ).fetchone()[0]
    damaged = conn.execute(
        "SELECT count(*) FROM clip_media WHERE integrity IN ('truncated', 'undecodable')"
    ).fetchone()[0]
    refused = conn.execute(
        "SELECT count(*) FROM ledger_leaves WHERE kind = 'access.refused'"
    ).fetchone()[0]
    return [
        ({"kind": "session_incomplete"}, incomplete),
        ({"kind": "clip_damaged"}, damaged),
        ({"kind": "access_refused"}, refused),
        ({"kind": "api_auth_failed"}, ctx.limiter.total),
        ({"kind": "ingest_worker"}, ctx.worker_failures()),
    ]


def render(ctx: ApiContext, conn: sqlite3.Connection) -> str:
    status = station_status(ctx.station, conn, probe=False)
    size, clips = conn.execute("SELECT coalesce(sum(size), 0), count(*) FROM clips").fetchone()
    jobs = dict(conn.execute("SELECT state, count(*) FROM upload_jobs GROUP BY state").fetchall())
    queue = status["queue"]
    lines: list[str] = []
    lines += family(
        "evidock_station_info",
        "gauge",
        "The station this is (always 1).",
        [({"station": ctx.station.station_id, "version": VERSION}, 1)],
    )
    lines += family(
        "evidock_ingest_bytes_total", "counter", "Bytes of evidence ingested.", [({}, size)]
    )
    lines += family("evidock_clips_total", "counter", "Clips ingested.", [({}, clips)])
    sessions = status["sessions"]
    lines += family(
        "evidock_sessions",
        "gauge",
        "Docking sessions by state.",
        [({"state": s}, sessions["by_state"].get(s, 0)) for s in ("open", "closed", "incomplete")],
    )
    lines += family(
        "evidock_session_phases",
        "gauge",
        "Docking sessions by phase.",
        [({"phase": p}, n) for p, n in sessions["by_phase"].items()],
    )
    lines += family(
        "evidock_upload_queue_depth", "gauge", "Upload jobs queued.", [({}, queue["depth"])]
    )
    if queue["oldest_age_seconds"] is not None:
        lines += family(
            "evidock_upload_queue_oldest_age_seconds",
            "gauge",
            "Age of the oldest queued upload job.",
            [({}, queue["oldest_age_seconds"])],
        )
    lines += family(
        "evidock_upload_jobs",
        "gauge",
        "Upload jobs by state.",
        [({"state": s}, jobs.get(s, 0)) for s in ("queued", "parked", "done")],
    )
    lines += family("evidock_errors_total", "counter", "Errors by kind.", _errors(conn, ctx))
    disk = status["disk"]
    if "free_bytes" in disk:
        lines += family(
            "evidock_disk_free_bytes", "gauge", "Free bytes of the data dir's disk.",
            [({}, disk["free_bytes"])],
        )  # fmt: skip
        lines += family(
            "evidock_disk_total_bytes", "gauge", "Size of the data dir's disk.",
            [({}, disk["total_bytes"])],
        )  # fmt: skip
    lines += family(
        "evidock_ledger_leaves",
        "gauge",
        "Leaves in the ledger.",
        [({}, status["ledger"]["leaves"])],
    )
    checkpoint = status["checkpoint"]
    if checkpoint["age_seconds"] is not None:
        lines += family(
            "evidock_last_checkpoint_age_seconds", "gauge", "Age of the last signed checkpoint.",
            [({}, checkpoint["age_seconds"])],
        )  # fmt: skip
    anchor = status["anchor"]
    if anchor["age_seconds"] is not None:
        lines += family(
            "evidock_last_anchor_age_seconds", "gauge", "Age of the last published anchor.",
            [({}, anchor["age_seconds"])],
        )  # fmt: skip
    configured = status["broker"]["configured"]
    connected = ctx.mqtt_connected() if configured else None
    lines += family(
        "evidock_mqtt_configured", "gauge", "1 if [mqtt] names a broker.", [({}, int(configured))]
    )
    lines += family(
        "evidock_mqtt_connected",
        "gauge",
        "1 while the daemon is connected to the MQTT broker.",
        [({}, int(bool(connected)))],
    )
    return "\n".join(lines) + "\n"


@router.get("/metrics", summary="Prometheus text format", response_class=PlainTextResponse)
def metrics(ctx: Ctx, conn: Conn, token: MetricsCaller) -> PlainTextResponse:
    return PlainTextResponse(render(ctx, conn), media_type=CONTENT_TYPE)
