"""``evidock demo``: the main job on embedded defaults, end to end, on simulated recorders.

Makes recorder volumes (real H.264/AAC clips by ffmpeg) under ``DIR/dock``, docks them
all at once through the daemon's own path, links each docking session to a case,
delivers to a local folder as central storage, publishes a signed checkpoint as an
anchor, verifies the ledger and the store against it, and prints a summary.
Run it again on the same folder to see a second docking recorded without duplicates.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.anchoring import anchor_files
from agent.cases import link
from agent.daemon import Daemon, record_boot, volumes_under
from agent.delivery import deliver_due
from agent.phases import advance_phases
from agent.progress import Progress
from agent.station import Station, embedded_config
from agent.verification import verify_data_dir
from config import StationConfig
from config.common import printable
from docking import generate_volume

DEMO_PLACES = ((31.2304, 121.4737), (39.9042, 116.4074), (22.5431, 114.0579))


def demo_config(data_dir: Path) -> StationConfig:
    return embedded_config(
        data_dir, station={"id": "demo-station", "place": "示范执法大队 demo unit"}
    )


def make_recorders(mount_root: Path, recorders: int, clips: int) -> list[Path]:
    made: list[Path] = []
    start = datetime(2026, 11, 22, 8, 30, tzinfo=UTC)
    for n in range(recorders):
        serial = f"DEMO{n + 1:04d}"
        root = mount_root / serial
        if not root.exists():
            generate_volume(
                root,
                serial=serial,
                clips=clips,
                seconds=3,
                start=start + timedelta(minutes=17 * n),
                place=DEMO_PLACES[n % len(DEMO_PLACES)],
                officer=f"{100200 + n}",
                audio=n == 0,
                photo=n == 1,
            )
        made.append(root)
    return made


def run_demo(data_dir: Path, *, recorders: int, clips: int, as_json: bool) -> int:
    data_dir = data_dir.absolute()
    config = demo_config(data_dir)
    say = (lambda *_: None) if as_json else print
    station = Station.open(config)  # first: a data dir that cannot be used says so at once
    say(f"evidock demo: station {config.station.id}, data dir {data_dir}")
    say(f"making {recorders} simulated recorders under {config.docking.mount_root} ...")
    make_recorders(config.docking.mount_root, recorders, clips)
    record_boot(station)
    progress = Progress("dock", enabled=None if not as_json else False)
    daemon = Daemon(station, progress=progress)
    results = daemon.ingest_all(volumes_under(config.docking.mount_root))
    daemon.close()
    # A recorder already copied by an earlier run of the demo is not read again
    # (docking.recheck = "metadata"): it has no new session to link.
    unchanged = [r for r in results if r is not None and r.already_safe_in is not None]
    reports = [r for r in results if r is not None and r.already_safe_in is None]
    progress.finish()
    for n, report in enumerate(sorted(reports, key=lambda r: r.recorder)):
        report.case_number = f"示范公(治)行字〔2026〕{1001 + n}号"
        link(
            station.conn,
            station.ledger(),
            report.case_number,
            session_id=report.session_id,
            officer=report.officer,
            object_of_proof="现场执法过程 / on-scene enforcement",
            reason="demo",
        )
    delivery = deliver_due(station, station.conn, daemon.target)
    advance_phases(station.conn, config.docking.wipe)  # delivered sessions become safe
    daemon.checkpoint()
    anchors = anchor_files(daemon.target)
    outcome = verify_data_dir(data_dir, anchors=anchors[-1:])
    summary: dict[str, Any] = {
        "station": config.station.id,
        "data_dir": str(data_dir),
        "recorders": len(reports) + len(unchanged),
        "recorders_unchanged": [
            {"recorder": r.recorder, "session_id": r.already_safe_in} for r in unchanged
        ],
        "sessions": [r.as_json() for r in reports],
        "clips_new": sum(r.count("new") for r in reports),
        "clips_already_stored": sum(r.count("seen") for r in reports),
        "problems": sum(len(r.problems) for r in reports) + len(daemon.failures),
        "failed_recorders": [
            {"volume": str(f.volume), "session_id": f.session_id, "error": f.error}
            for f in daemon.failures
        ],
        "delivered": delivery.delivered,
        "delivery_failed": delivery.failed + delivery.parked,
        "ledger_leaves": station.ledger().size(),
        "verified": outcome.ok,
        "verify_lines": outcome.lines,
    }
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, indent=1))
    else:
        for done in unchanged:
            print(
                f"  {done.recorder}: unchanged since session {done.already_safe_in}: "
                "not read again, already safe"
            )
        for failure in daemon.failures:
            print(f"  {printable(str(failure.volume))}: failed: {failure.error}")
        for report in reports:
            print(
                f"  {report.recorder}: session {report.session_id}, {report.count('new')} new, "
                f"{report.count('seen')} already stored, case {report.case_number}"
            )
        print(
            f"ingested {summary['clips_new']} new clips ({summary['clips_already_stored']} "
            f"already stored), {summary['problems']} problems; delivered "
            f"{summary['delivered']} to {config.delivery.central_dir}"
        )
        print(f"ledger: {summary['ledger_leaves']} leaves")
        for line in outcome.lines:
            print(f"  {line}")
        print("ledger verified: OK" if outcome.ok else "ledger verified: FAILED")
        print(
            f"check it yourself: {_evidock()} verify --data-dir {_shown(data_dir)} "
            f"--anchor {_shown(config.delivery.anchor_dir or data_dir / 'anchors')}"
        )
    ok = outcome.ok and summary["problems"] == 0 and summary["delivery_failed"] == 0
    return 0 if ok else 1


def _evidock() -> str:
    """How the user called evidock (``.venv/bin/evidock`` from a clone), to repeat it."""
    called = Path(sys.argv[0])
    if called.name != "evidock":
        return "evidock"
    try:
        return str(called.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(called)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
