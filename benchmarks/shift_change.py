"""Shift change: N recorders docked within 10 s of each other, each read at USB speed,
through the daemon's own path; when is the last officer's recorder safe, at what cost?

    .venv/bin/python benchmarks/shift_change.py [--quick] [--recorders 1,4,8,16,24]
        [--rates 35,150] [--mb-per-recorder 300] [--spread-s 10] [--seed 16] [--clean]
        [--corpus /dev/shm/evidock-shift-change]

Each recorder is a folder laid out like one (``DEVICE.INF`` with its own serial,
``DCIM/100MEDIA`` clips of 40-150 MB and their NMEA/JSON sidecars) of random bytes, so no
two recorders share content and the store's de-duplication hides no work. The corpus is
made once in /var/tmp and reused. Every run is a child process (wall, CPU of the child
tree and peak RSS from wait4; caches dropped first) that opens a station on a fresh data
dir, puts a ``docking.UsbLink`` per recorder in ``Station.source_opener``, and hands the
daemon a ``Docked`` event per recorder at its (seeded) time in the spread. Times come from
the ledger: a recorder's time-to-safe is its ``docking.opened`` to its ``docking.closed``
leaf (every copy re-read and in the ledger; with the wipe policy ``after_verified`` that
session is safe). Central delivery is not part of the run. The same run measures the
single-stream limit (one recorder, no link, same daemon path), the station's capacity (all
recorders docked at once, no link) and ``cp -r`` + ``sync`` (CPU-s/GB).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from copy_hash import drop_caches, q, shell  # the sibling benchmark's helpers

from docking.usb_link import DEFAULT_LATENCY_S
from hashing.options import HashOptions

REPO = Path(__file__).resolve().parent.parent
HOME = Path("/var/tmp/evidock-shift-change")
MB = 1_000_000
GB = 1e9


# --- the corpus ---------------------------------------------------------------------


def make_recorder(root: Path, number: int, size: int, seed: int) -> None:
    """One recorder of about ``size`` bytes (made once; a marker beside it says so)."""
    marker = root.with_name(root.name + ".complete")
    if marker.exists() and marker.read_text() == str(size):
        return
    shutil.rmtree(root, ignore_errors=True)
    folder = root / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    serial = f"BENCH{number:04d}"
    (root / "DEVICE.INF").write_text(
        f"serial={serial}\nmodel=EVIDOCK-SIM\nfirmware=1.0.0\nofficer={100000 + number}\n"
    )
    rng = random.Random(seed * 1000 + number)
    # Named by the recorder's clock as recorders name them (a clip a second per MB).
    left, index, at = size, 1, datetime(2026, 11, 22, 8, 0, 0) + timedelta(hours=number)
    while left > 0:
        clip = min(left, rng.randint(40 * MB, 150 * MB)) if left >= 80 * MB else left
        stem = folder / f"{at:%Y%m%d_%H%M%S}_{index:04d}"
        with open(stem.with_suffix(".MP4"), "wb") as out:
            for start in range(0, clip, 8 << 20):
                out.write(os.urandom(min(8 << 20, clip - start)))
        stem.with_suffix(".NMEA").write_bytes(os.urandom(rng.randint(2_000, 60_000)))
        stem.with_suffix(".JSON").write_bytes(os.urandom(rng.randint(200, 2_000)))
        left -= clip
        index += 1
        at += timedelta(seconds=clip // MB + 5)
    subprocess.run(["sync"], check=True)
    marker.write_text(str(size))


# --- one run, in a child process ----------------------------------------------------


def run_worker(spec_path: Path) -> None:
    """Child: a station on a fresh data dir, the daemon, a Docked event per recorder."""
    from agent.daemon import Daemon
    from agent.station import Station, embedded_config
    from docking import Docked, UsbLink, link_opener
    from hashing import open_source

    spec = json.loads(spec_path.read_text())
    peak = {"threads": 0}
    sampling = threading.Event()

    def sample() -> None:
        status = Path("/proc/self/status")
        while not sampling.wait(0.05):
            for line in status.read_text().splitlines():
                if line.startswith("Threads:"):
                    peak["threads"] = max(peak["threads"], int(line.split()[1]))

    sampler = threading.Thread(target=sample, name="bench-sampler", daemon=True)
    sampler.start()
    data_dir = Path(spec["data_dir"])
    station = Station.open(embedded_config(data_dir, docking={"wipe": "after_verified"}))
    volumes = [Path(v) for v in spec["volumes"]]
    if spec["rate"]:
        links = {
            v: UsbLink(spec["rate"] * MB, seed=spec["seed"] + i) for i, v in enumerate(volumes)
        }
        station.source_opener = link_opener(links, inner=open_source)
    daemon = Daemon(station)

    def cpu() -> tuple[float, float]:
        """CPU seconds of this process and of the children it waited for (ffprobe)."""
        own, kids = (
            resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
        return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime

    docks = []
    cpu_start, t0 = cpu(), time.monotonic()
    for offset, volume in sorted(zip(spec["offsets"], volumes, strict=True)):
        delay = t0 + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        docks.append((str(volume), datetime.now(UTC).isoformat()))
        daemon.on_event(Docked(volume=volume))
    daemon.close()  # every session's worker has ended
    cpu_end = cpu()
    sampling.set()
    sampler.join()
    ok = len(daemon.reports) == len(volumes) and all(r.ok for r in daemon.reports)
    problems = [p for r in daemon.reports for p in r.as_json()["problems"]]
    problems += [f.error for f in daemon.failures]
    station.close()
    result = {
        "docks": docks,
        "problems": problems[:5],
        "cpu_window": cpu_end[0] + cpu_end[1] - cpu_start[0] - cpu_start[1],
        "cpu_children": cpu_end[1] - cpu_start[1],
        "threads": peak["threads"],
        "ok": ok,
    }
    Path(spec["out"]).write_text(json.dumps(result))


@dataclass
class Child:
    wall: float
    cpu: float
    rss_mb: float
    code: int
    stderr: str


def measure(cmd: list[str], stderr_file: Path) -> Child:
    """Wall seconds, CPU seconds of the child tree and its peak RSS (MB), from wait4."""
    start = time.perf_counter()
    with open(stderr_file, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
        _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    text = stderr_file.read_text(errors="replace").strip()
    return Child(
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        os.waitstatus_to_exitcode(status),
        text.splitlines()[-1] if text else "",
    )


@dataclass
class Recorder:
    volume: str
    size: int
    docked: float  # seconds after the first dock: the Docked event
    opened: float  # the docking.opened leaf
    closed: float  # the docking.closed leaf

    @property
    def time_to_safe(self) -> float:
        return self.closed - self.opened


def ledger_times(data_dir: Path, docks: list[tuple[str, str]]) -> list[Recorder]:
    """Each session's docking.opened/closed leaf times and the bytes it read."""
    from ledger import Ledger

    t0 = datetime.fromisoformat(docks[0][1])
    docked = {v: (datetime.fromisoformat(at) - t0).total_seconds() for v, at in docks}
    conn = sqlite3.connect(f"file:{data_dir / 'station.db'}?mode=ro", uri=True)
    try:
        led = Ledger(conn, station_id="read-only")
        leaves = {
            (leaf.kind, leaf.body["session_id"]): leaf.at
            for kind in ("docking.opened", "docking.closed")
            for leaf in led.leaves_of_kind(kind)
        }
        rows = conn.execute("SELECT session_id, volume, bytes_total FROM docking_sessions")
        out = []
        for session_id, volume, size in rows:

            def at(kind: str, sid: str = session_id) -> float:
                moment = datetime.fromisoformat(leaves[(kind, sid)])
                return (moment - t0).total_seconds()

            out.append(
                Recorder(volume, size, docked[volume], at("docking.opened"), at("docking.closed"))
            )
        return out
    finally:
        conn.close()


@dataclass
class Run:
    """One (N, rate) run: the child's figures and each recorder's ledger times."""

    n: int
    rate: float  # MB/s of each recorder's link; 0: no link
    child: Child
    recorders: list[Recorder]
    other: float  # share of the machine's CPU that other processes used during the run
    cpu_window: float = 0.0  # child's CPU from the first dock until every session ended
    cpu_children: float = 0.0  # the part of it spent in the processes it ran (ffprobe)
    threads: int = 0
    ok: bool = False
    problem: str = ""
    single: float = 0.0  # bytes/s: the single stream (the limit)
    capacity: float = 0.0  # bytes/s: the larger of it and N unthrottled recorders at once

    @property
    def bytes(self) -> int:
        return sum(r.size for r in self.recorders)

    @property
    def last_safe(self) -> float:
        """First dock to the last docking.closed leaf."""
        return max(r.closed for r in self.recorders)

    def ideal_rate(self, limit: float) -> float:
        return min(self.n * self.rate * MB, limit) if self.rate else limit

    @property
    def ideal_last(self) -> float:
        """All bytes at the ideal aggregate, or the last recorder at its own rate after
        its dock, whichever is later (docking is staggered)."""
        by_dock = max((r.docked + r.size / (self.rate * MB) for r in self.recorders), default=0)
        return max(self.bytes / self.ideal_rate(self.capacity), by_dock if self.rate else 0.0)

    def figures(self) -> dict[str, float]:
        aggregate = self.bytes / self.last_safe
        return {
            "bytes": self.bytes,
            "aggregate_mb_s": aggregate / MB,
            "ideal_aggregate_mb_s": self.ideal_rate(self.capacity) / MB,
            "x_ideal": aggregate / self.ideal_rate(self.capacity),
            "x_single_stream_ideal": aggregate / self.ideal_rate(self.single),
            "x_sched": self.ideal_last / self.last_safe,
            "cpu_s_per_gb": self.cpu_window / (self.bytes / GB),
            "ffprobe_cpu_s_per_gb": self.cpu_children / (self.bytes / GB),
            "cpu_tree_s": self.child.cpu,
            "rss_mb": self.child.rss_mb,
            "threads": self.threads,
            "last_safe_s": self.last_safe,
            "ideal_last_s": self.ideal_last,
            "x_last": self.last_safe / self.ideal_last,
            "slowest_s": max(r.time_to_safe for r in self.recorders),
            "worst_x_own": max(r.time_to_safe * self.rate * MB / r.size for r in self.recorders),
            "lag_s": max(r.opened - r.docked for r in self.recorders),
            "other_cpu_share": self.other,
        }


def one_run(work: Path, volumes: list[Path], rate: float, offsets: list[float], seed: int) -> Run:
    """Run the child on a fresh data dir (deleted after) and read its ledger times."""
    data_dir, out = work / "data", work / "result.json"
    shutil.rmtree(data_dir, ignore_errors=True)
    out.unlink(missing_ok=True)
    spec = {"data_dir": str(data_dir), "volumes": [str(v) for v in volumes], "rate": rate,
            "offsets": offsets, "seed": seed, "out": str(out)}  # fmt: skip
    (work / "spec.json").write_text(json.dumps(spec))
    drop_caches()
    busy = busy_cpu_s()
    child = measure([sys.executable, __file__, "_run", str(work / "spec.json")], work / "stderr")
    other = (busy_cpu_s() - busy - child.cpu) / (child.wall * (os.cpu_count() or 1))
    try:
        result = json.loads(out.read_text())
        recorders = ledger_times(data_dir, [tuple(d) for d in result.pop("docks")])
    except (OSError, ValueError, KeyError, IndexError, sqlite3.Error) as exc:
        return Run(len(volumes), rate, child, [], other, problem=child.stderr or f"{exc}")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    problem = "; ".join(result.pop("problems")) or (child.stderr if child.code else "")
    result["ok"] = result["ok"] and child.code == 0 and len(recorders) == len(volumes)
    return Run(len(volumes), rate, child, recorders, other, problem=problem, **result)


def busy_cpu_s() -> float:
    """CPU seconds every CPU of the machine has been busy since boot (/proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def dock_offsets(n: int, spread: float, seed: int) -> list[float]:
    """The first recorder at 0 s, the others anywhere in the spread (seeded)."""
    rng = random.Random(seed + n)
    return [0.0, *sorted(rng.uniform(0, spread) for _ in range(n - 1))]


# --- the report -----------------------------------------------------------------------


LEGEND = """\
capacity = the most this station was seen to do in this run: the single stream (the issue's
  limit), all recorders docked at once without links, or any run's aggregate (a baseline
  that other work on the machine slowed would otherwise make every run look ideal).
ideal = min(N x rate, capacity); ideal s = max(total bytes / ideal, max_i(dock_i + size_i /
  rate)): docking is staggered, the larger of the two is the ideal.
x ideal = aggregate (total bytes / last s) / ideal; x 1-str = the same against min(N x rate,
  single stream); x sched = ideal s / last s (the docking spread taken into account);
  x = last s / ideal s.
slowest s = the longest time-to-safe (docking.opened -> docking.closed leaf); x own = the
  worst recorder's time-to-safe / (its size / rate); lag s = the longest Docked event ->
  docking.opened leaf (not in the time-to-safe).
CPU-s/GB = the child's user+sys from the first dock until every session ended, ffprobe
  included (ffprobe: its part); RSS = the child's peak; thr = its peak threads (main and
  sampler included); other = the machine's CPU other processes used during the run."""

COLUMNS = (  # (heading, figure, format)
    ("GB", "bytes", "{:6.2f}"),
    ("agg MB/s", "aggregate_mb_s", "{:9.0f}"),
    ("ideal", "ideal_aggregate_mb_s", "{:6.0f}"),
    ("x ideal", "x_ideal", "{:8.2f}"),
    ("x 1-str", "x_single_stream_ideal", "{:8.2f}"),
    ("x sched", "x_sched", "{:8.2f}"),
    ("CPU-s/GB", "cpu_s_per_gb", "{:9.2f}"),
    ("ffprobe", "ffprobe_cpu_s_per_gb", "{:8.2f}"),
    ("RSS MB", "rss_mb", "{:7.0f}"),
    ("thr", "threads", "{:4.0f}"),
    ("last s", "last_safe_s", "{:7.1f}"),
    ("ideal s", "ideal_last_s", "{:8.1f}"),
    ("x", "x_last", "{:6.2f}"),
    ("slowest s", "slowest_s", "{:10.1f}"),
    ("x own", "worst_x_own", "{:6.2f}"),
    ("lag s", "lag_s", "{:6.2f}"),
    ("other", "other_cpu_share", "{:6.0%}"),
)


READ_SIZE = HashOptions().read_size
LINK_LATENCY_S = DEFAULT_LATENCY_S


def link_ceiling(rate: float) -> float:
    """Bytes/s one link delivers at best: every request pays its latency on top."""
    return READ_SIZE / (LINK_LATENCY_S + READ_SIZE / rate)


def print_table(runs: list[Run], single: float, capacity: float, cp_cpu_gb: float) -> None:
    header = f"{'N':>3}{'USB':>5}" + "".join(
        f"{name:>{len(fmt.format(0))}}" for name, _, fmt in COLUMNS
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        if not r.recorders:
            print(f"{r.n:>3}{r.rate:>5.0f}  FAILED: {r.problem}")
            continue
        figures = r.figures()
        figures["bytes"] /= GB
        cells = "".join(fmt.format(figures[key]) for _, key, fmt in COLUMNS)
        print(f"{r.n:>3}{r.rate:>5.0f}{cells}" + ("" if r.ok else f"  FAILED: {r.problem}"))
    print(
        f"single stream (1 recorder, no link, daemon path): {single / MB:.0f} MB/s; capacity: "
        f"{capacity / MB:.0f} MB/s; cp -r + sync: {cp_cpu_gb:.2f} CPU-s/GB"
    )
    for rate in sorted({r.rate for r in runs if r.rate}):
        ceiling = link_ceiling(rate * MB)
        print(
            f"a {rate:.0f} MB/s link's own ceiling at the engine's {READ_SIZE >> 20} MiB reads "
            f"({LINK_LATENCY_S * 1000:g} ms a request): {ceiling / MB:.1f} MB/s "
            f"({ceiling / (rate * MB):.3f}x; the ideal does not take it off)"
        )
    print(LEGEND)


TARGETS = (  # (label, figure, bound, at most, which runs)
    ("aggregate >= 0.9x ideal (x sched)", "x_sched", 0.9, False, "all"),
    ("last safe <= 1.15x ideal", "x_last", 1.15, True, "all"),
    ("no recorder > 1.5x own size/rate (N x rate < capacity)", "worst_x_own", 1.5, True, "below"),
    ("<= 1.6 CPU-s/GB", "cpu_s_per_gb", 1.6, True, "all"),
    ("peak RSS <= 200 MB at N=24", "rss_mb", 200, True, "24"),
)


def targets(runs: list[Run], capacity: float) -> list[dict[str, object]]:
    """Each target's worst figure over the runs it applies to, met or MISSED."""
    out: list[dict[str, object]] = []
    for label, key, bound, at_most, which in TARGETS:
        pick = [
            r
            for r in runs
            if r.recorders
            and (which != "below" or r.n * r.rate * MB < capacity)
            and (which != "24" or r.n == 24)
        ]
        if not pick:
            out.append({"target": label, "value": None, "met": None, "where": "not run"})
            continue
        figure, run = (max if at_most else min)(
            ((r.figures()[key], r) for r in pick), key=lambda f: f[0]
        )
        met = figure <= bound if at_most else figure >= bound
        where = f"N={run.n}, {run.rate:.0f} MB/s"
        out.append({"target": label, "value": round(figure, 3), "met": met, "where": where})
    return out


def commit_measured() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "hashing", "agent"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    return head.stdout.strip() + (
        " + uncommitted hashing/agent changes" if dirty.stdout.strip() else ""
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recorders", default="1,4,8,16,24", help="N values (default 1,4,8,16,24)")
    parser.add_argument("--rates", default="35,150", help="MB/s per recorder (default 35,150)")
    parser.add_argument("--mb-per-recorder", type=int, default=300, help="default 300")
    parser.add_argument("--spread-s", type=float, default=10.0, help="docking spread (10 s)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="smoke run: N=1,4; 40 MB each")
    parser.add_argument("--clean", action="store_true", help=f"delete the corpus in {HOME}, stop")
    parser.add_argument(
        "--corpus",
        type=Path,
        default=HOME,
        help="where the recorders' files are made (default: the station's disk, in "
        f"{HOME}); e.g. /dev/shm/evidock-shift-change so the station's disk carries only "
        "the station's own traffic, as with real recorders on USB",
    )
    args = parser.parse_args()
    if args.quick:
        args.recorders, args.mb_per_recorder = "1,4", 40
    try:
        args.counts = sorted({int(n) for n in args.recorders.split(",")})
        args.rate_list = [float(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error("--recorders and --rates take numbers separated by commas: --recorders 1,4,8")
    if min(args.counts) < 1 or max(args.counts) > 24 or min(args.rate_list) <= 0:
        parser.error("--recorders takes 1 to 24 recorders, --rates rates above 0 MB/s")
    if args.mb_per_recorder < 1:
        parser.error("--mb-per-recorder takes 1 MB or more")
    return args


def space_problem(corpus: Path, recorders: int, size: int) -> str | None:
    """What is missing on the corpus's disk for the corpus and one run's store, if any."""
    have = sum(1 for n in range(1, recorders + 1) if (corpus / f"REC{n:02d}.complete").exists())
    need = (recorders - have) * size + recorders * size * 1.1 + 1e9
    free = shutil.disk_usage(corpus).free
    if free >= need:
        return None
    return (
        f"{corpus.parent} has {free / GB:.1f} GB free; this run needs about {need / GB:.1f} GB "
        f"(the corpus, {recorders} x {size // MB} MB, and a store as large): free some space "
        "or lower --mb-per-recorder / --recorders"
    )


def baselines(work: Path, volumes: list[Path], seed: int) -> tuple[float, float, float]:
    """cp's CPU-s/GB, the single stream and the capacity (bytes/s), in this run."""
    drop_caches()
    cp = measure(shell(f"cp -r {q(volumes[0])} {q(work / 'cp')}; sync"), work / "stderr")
    cp_bytes = sum(p.stat().st_size for p in volumes[0].rglob("*") if p.is_file())
    shutil.rmtree(work / "cp", ignore_errors=True)
    cp_cpu_gb = cp.cpu / (cp_bytes / GB)
    print(f"  cp -r + sync of 1 recorder: {cp_bytes / MB / cp.wall:.0f} MB/s, "
          f"{cp_cpu_gb:.2f} CPU-s/GB", flush=True)  # fmt: skip
    rates = []
    for what, docked in (("single stream", volumes[:1]), (f"{len(volumes)} at once", volumes)):
        run = one_run(work, docked, 0, [0.0] * len(docked), seed)
        if not run.ok:
            raise SystemExit(f"the {what} run (no link) failed: {run.problem}")
        rates.append(run.bytes / run.last_safe)
        other = f"other work: {run.other:.0%} of the CPUs"
        print(f"  {what}, no link: {rates[-1] / MB:.0f} MB/s ({other})", flush=True)
    return cp_cpu_gb, rates[0], max(rates)


def report(runs: list[Run], limits: tuple[float, float, float], header: str) -> None:
    cp_cpu_gb, single, capacity = limits
    capacity = max([capacity, *(r.bytes / r.last_safe for r in runs if r.recorders)])
    for run in runs:
        run.single, run.capacity = single, capacity
    print()
    print(header)
    print_table(runs, single, capacity, cp_cpu_gb)
    checked = targets(runs, capacity)
    print("targets:")
    for t in checked:
        state = "not run" if t["met"] is None else ("met" if t["met"] else "MISSED")
        figure = "" if t["value"] is None else f"{t['value']:8.2f}  ({t['where']})"
        print(f"  {t['target']:<56}{figure:<28}{state}")
    print(json.dumps({
        "header": header, "single_stream_mb_s": single / MB, "capacity_mb_s": capacity / MB,
        "cp_cpu_s_per_gb": cp_cpu_gb, "targets": checked,
        "runs": [{"n": r.n, "rate": r.rate, "ok": r.ok, **(r.figures() if r.recorders else {})}
                 for r in runs],
    }))  # fmt: skip


def main() -> int:
    args = parse_args()
    if args.clean:
        for place in {HOME, args.corpus}:
            shutil.rmtree(place, ignore_errors=True)
            print(f"removed {place}")
        return 0
    size, most = args.mb_per_recorder * MB, max(args.counts)
    corpus = args.corpus / f"{args.mb_per_recorder}mb"
    corpus.mkdir(parents=True, exist_ok=True)
    problem = space_problem(corpus, most, size)
    if problem:
        print(problem)
        return 2
    commit = commit_measured()
    print(f"corpus: {most} recorders x {args.mb_per_recorder} MB in {corpus} (kept for the "
          f"next run; --clean removes it); commit {commit} ...", flush=True)  # fmt: skip
    volumes = [corpus / f"REC{n:02d}" for n in range(1, most + 1)]
    for n, volume in enumerate(volumes, 1):
        make_recorder(volume, n, size, args.seed)
    HOME.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=HOME))  # the station's data: its disk
    runs: list[Run] = []
    try:
        limits = baselines(work, volumes, args.seed)
        for n in args.counts:
            for rate in args.rate_list:
                offsets = dock_offsets(n, args.spread_s, args.seed)
                run = one_run(work, volumes[:n], rate, offsets, args.seed)
                runs.append(run)
                done = f"last safe {run.last_safe:.1f} s" if run.recorders else "no result"
                state = "ok" if run.ok else f"FAILED: {run.problem}"
                other = f"other work: {run.other:.0%} of the CPUs"
                print(f"  N={n:<2} {rate:.0f} MB/s: {done} ({state}; {other})", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    after = commit_measured()
    report(runs, limits, (
        f"commit {commit}" + (f" (at the end: {after})" if after != commit else "")
        + f"; {args.mb_per_recorder} MB per recorder; {os.cpu_count()} CPUs; page cache "
        + ("dropped" if drop_caches() else "NOT dropped (not writable here; reads use O_DIRECT)")
        + " before each run; wipe policy after_verified: a verified session is safe (central"
        " delivery is not part of the run)"
    ))  # fmt: skip
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_run":
        run_worker(Path(sys.argv[2]))
        sys.exit(0)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(f"interrupted; the corpus stays in {HOME} for the next run (--clean removes it)")
        sys.exit(130)
