"""Copy+hash throughput of evidock's engine against cp, dc3dd, dcfldd and coreutils.

    python3 benchmarks/copy_hash.py [--size-gib 2] [--out DIR]

Generates a recorder-like corpus (50 MB - 1 GB clips of random bytes and small
sidecars), then times, in the same run and on the same disk, each way of getting
a hashed copy: ``cp -r`` + ``sync`` (the baseline), ``dc3dd hash=sha256`` and
``dcfldd hash=sha256`` per file (+ ``sync``), ``cp`` then ``b3sum`` then
``sha256sum``, and evidock (``evidock ingest`` when it works, else the engine
directly) with verify none, verify reread, SM3 added, and 8 recorders at once.
Every run is a child process: wall time, CPU (user+sys of the child tree, from
wait4) and peak RSS are its own. Prints a table and a kill -9 resume measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000
GIB = 1 << 30


@dataclass
class Run:
    name: str
    via: str
    wall: float
    cpu: float
    rss_mb: float
    ok: bool


def drop_caches() -> bool:
    """Flush and drop the page cache so every run reads the corpus from disk."""
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def measure(
    cmd: list[str], *, env: dict[str, str] | None = None
) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (MB) of ``cmd`` and all it waited for."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=REPO
    )
    assert proc.stderr is not None
    err = threading.Thread(target=proc.stderr.read)  # drain: dc3dd talks a lot
    err.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def make_corpus(root: Path, size: int, seed: int = 7) -> list[Path]:
    """Clips of 50 MB to 1 GB (last one what is left) plus NMEA/JSON sidecars."""
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == str(size):
        return sorted(p for p in root.rglob("*") if p.is_file() and p != marker)
    shutil.rmtree(root, ignore_errors=True)
    folder = root / "DCIM" / "100MEDIA"
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    left, index = size, 1
    while left > 0:
        clip = min(left, rng.randint(50 * MB, 1000 * MB)) if left > 60 * MB else left
        with open(folder / f"FILE{index:04d}.MP4", "wb") as out:
            remaining = clip
            while remaining:
                block = min(remaining, 8 << 20)
                out.write(os.urandom(block))
                remaining -= block
        for ext, n in ((".NMEA", rng.randint(2_000, 60_000)), (".JSON", rng.randint(200, 2_000))):
            (folder / f"FILE{index:04d}{ext}").write_bytes(os.urandom(n))
        left -= clip
        index += 1
    subprocess.run(["sync"], check=True)
    marker.write_text(str(size))
    return sorted(p for p in root.rglob("*") if p.is_file() and p != marker)


def shell(script: str) -> list[str]:
    return ["sh", "-c", "set -e\n" + script]


def q(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"


def per_file(files: list[Path], corpus: Path, dest: Path, line: str) -> list[str]:
    lines = []
    for f in files:
        out = dest / f.relative_to(corpus)
        lines.append(f"mkdir -p {q(out.parent)}")
        lines.append(line.format(src=q(f), dst=q(out)))
    return shell("\n".join([*lines, "sync"]))


def evidock_config(path: Path, *, verify: str, sm3: bool) -> Path:
    algorithms = '["sha256", "blake3", "sm3"]' if sm3 else '["sha256", "blake3"]'
    path.write_text(f'[hashing]\nalgorithms = {algorithms}\nverify = "{verify}"\n')
    return path


def engine_cmd(corpus: Path, store: Path, *, verify: str, sm3: bool, recorders: int) -> list[str]:
    args = [sys.executable, __file__, "_engine", str(corpus), str(store), verify]
    return [*args, "sm3" if sm3 else "-", str(recorders)]


def engine_worker(corpus: Path, store_root: Path, verify: str, sm3: str, recorders: int) -> None:
    """Child process: ``recorders`` threads, one CopyEngine each, one shared budget."""
    sys.path.insert(0, str(REPO))
    from config.models import HashingSection
    from hashing import BufferBudget, CopyEngine, EvidenceStore, HashOptions

    algorithms = ("sha256", "blake3", "sm3") if sm3 == "sm3" else ("sha256", "blake3")
    options = HashOptions.from_config(HashingSection(algorithms=algorithms, verify=verify))  # type: ignore[arg-type]
    budget = BufferBudget(options.buffer_budget_bytes, options.read_size)
    store = EvidenceStore(store_root)
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.name != ".complete")
    shares = [files[i::recorders] for i in range(recorders)]
    failures: list[BaseException] = []

    def recorder(share: list[Path]) -> None:
        engine = CopyEngine(store, options, budget=budget)
        try:
            for path in share:
                engine.copy(path)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=recorder, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]


def daemon_cmd(corpus: Path, mount_root: Path, data_dir: Path, recorders: int) -> list[str]:
    args = [sys.executable, __file__, "_daemon", str(corpus), str(mount_root), str(data_dir)]
    return [*args, str(recorders)]


def daemon_worker(corpus: Path, mount_root: Path, data_dir: Path, recorders: int) -> None:
    """Child process: the daemon's own concurrent path (one ingest session per docked
    recorder, one shared buffer budget), on ``recorders`` volumes that share the corpus
    out by hard links, without delivery (that is another copy, timed elsewhere)."""
    from agent.daemon import Daemon, volumes_under
    from agent.station import Station, embedded_config

    shutil.rmtree(mount_root, ignore_errors=True)
    files = [f for f in corpus.rglob("*") if f.is_file() and f.name != ".complete"]
    files.sort(key=lambda f: -f.stat().st_size)
    for n, f in enumerate(files):
        target = mount_root / f"REC{n % recorders:04d}" / f.relative_to(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(f, target)
    station = Station.open(embedded_config(data_dir))
    daemon = Daemon(station)
    docked = volumes_under(mount_root)
    reports = daemon.ingest_all(docked)
    daemon.close()
    if len(reports) != len(docked) or not all(r.ok for r in reports):
        raise SystemExit(f"daemon ingest failed: {[r.as_json()['problems'] for r in reports]}")


RESUME_CHILD = """
import sys
from pathlib import Path
from hashing import CopyEngine, EvidenceStore, HashOptions
store, source = EvidenceStore(Path(sys.argv[1])), Path(sys.argv[2])
done = 0
def progress(n):
    global done
    done += n
    print(done, flush=True)
r = CopyEngine(store, HashOptions()).copy(source, resume_key="be0c4", progress=progress)
print("RESULT", r.resumed_bytes, r.source_bytes_read, r.size, r.window_size, flush=True)
"""


def resume_measurement(source: Path, store: Path) -> dict[str, int]:
    """kill -9 a copy at ~50%, copy again with the same key, report what was re-read."""
    size = source.stat().st_size
    child = subprocess.Popen(
        [sys.executable, "-c", RESUME_CHILD, str(store), str(source)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert child.stdout is not None
    killed_at = 0
    for line in child.stdout:
        killed_at = int(line)
        if killed_at >= size // 2:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait()
    rerun = subprocess.run(
        [sys.executable, "-c", RESUME_CHILD, str(store), str(source)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    last = rerun.stdout.strip().splitlines()[-1].split()
    resumed, read, total, window = (int(x) for x in last[1:])
    return {
        "size": total,
        "killed_at": killed_at,
        "resumed_bytes": resumed,
        "source_bytes_read": read,
        "reread_of_copied": max(0, killed_at - resumed),
        "window": window,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=2.0, help="corpus size (default 2)")
    parser.add_argument("--out", type=Path, help="work folder (default: a new one in /var/tmp)")
    parser.add_argument("--no-cli", action="store_true", help="time the engine, not evidock")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="evidock-bench-", dir="/var/tmp"))
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus"
    print(f"corpus: {args.size_gib} GiB in {corpus} ...", flush=True)
    files = make_corpus(corpus, int(args.size_gib * GIB))
    total = sum(f.stat().st_size for f in files)
    clips = [f for f in files if f.suffix == ".MP4"]
    dest = out / "dest"
    cli = None if args.no_cli else shutil.which("evidock")
    runs: list[Run] = []
    caches_dropped = True

    def timed(name: str, via: str, cmd: list[str]) -> Run:
        nonlocal caches_dropped
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        caches_dropped = drop_caches() and caches_dropped
        wall, cpu, rss, code = measure(cmd)
        run = Run(name, via, wall, cpu, rss, code == 0)
        print(f"  {name:<34} {wall:7.2f} s  exit {code}", flush=True)
        return run

    def evidock(name: str, *, verify: str, sm3: bool) -> Run:
        if cli is not None:
            config = evidock_config(out / f"{verify}-{sm3}.toml", verify=verify, sm3=sm3)
            cmd = [cli, "ingest", str(corpus), "--data-dir", str(dest), "--json"]
            run = timed(name, "evidock ingest", [*cmd, "--config", str(config)])
            if run.ok:
                return run
        cmd = engine_cmd(corpus, dest / "store", verify=verify, sm3=sm3, recorders=1)
        return timed(name, "engine (CLI absent/failed)" if cli else "engine", cmd)

    runs.append(timed("cp -r + sync", "coreutils", shell(f"cp -r {q(corpus)} {q(dest)}; sync")))
    runs.append(
        timed(
            "dc3dd hash=sha256 (+sync)",
            "dc3dd",
            per_file(files, corpus, dest, "dc3dd if={src} of={dst} hash=sha256 log=/dev/null"),
        )
    )
    runs.append(
        timed(
            "dcfldd hash=sha256 (+sync)",
            "dcfldd",
            per_file(files, corpus, dest, "dcfldd if={src} of={dst} hash=sha256 status=off"),
        )
    )
    names = " ".join(q(f.relative_to(corpus)) for f in files)
    runs.append(
        timed(
            "cp + sync, b3sum, sha256sum",
            "coreutils",
            shell(
                f"cp -r {q(corpus)} {q(dest / 'c')}; sync; cd {q(dest / 'c')}\n"
                f"b3sum {names} >/dev/null\nsha256sum {names} >/dev/null"
            ),
        )
    )
    runs.append(evidock("evidock sha256+blake3, verify none", verify="none", sm3=False))
    runs.append(evidock("evidock sha256+blake3, reread", verify="reread", sm3=False))
    runs.append(evidock("evidock +sm3, reread", verify="reread", sm3=True))
    single = timed(
        "engine 1 recorder, reread",
        "engine",
        engine_cmd(corpus, dest / "store", verify="reread", sm3=False, recorders=1),
    )
    multi = timed(
        "engine 8 recorders at once, reread",
        "engine, 8 threads",
        engine_cmd(corpus, dest / "store", verify="reread", sm3=False, recorders=8),
    )
    runs += [single, multi]
    daemon8 = timed(
        "daemon, up to 8 docked, reread",
        "Daemon.ingest_all",
        daemon_cmd(corpus, out / "dock8", dest / "daemon", 8),
    )
    runs.append(daemon8)
    shutil.rmtree(out / "dock8", ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)

    base, dc3dd = runs[0], runs[1]
    print()
    print(
        f"corpus {total / MB:.0f} MB in {len(files)} files ({len(clips)} clips); "
        f"page cache {'dropped' if caches_dropped else 'NOT dropped (not writable)'} "
        f"before each run; {os.cpu_count()} CPUs"
    )
    header = (
        f"{'run':<36}{'via':<28}{'MB/s':>7}{'CPU-s/GB':>10}{'RSS MB':>8}"
        f"{'x cp+sync':>10}{'x dc3dd':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        rate = total / MB / r.wall
        print(
            f"{r.name:<36}{r.via:<28}{rate:7.0f}{r.cpu / (total / 1e9):10.2f}{r.rss_mb:8.0f}"
            f"{base.wall / r.wall:10.2f}{dc3dd.wall / r.wall:9.2f}" + ("" if r.ok else "  FAILED")
        )
    print(f"8 recorders / 1 recorder aggregate throughput: {single.wall / multi.wall:.2f}x")
    none, reread = runs[4], runs[5]
    gb = total / 1e9
    targets = [
        ("verify none >= 0.95x cp+sync", base.wall / none.wall, 0.95, True),
        ("verify reread >= 0.8x cp+sync", base.wall / reread.wall, 0.8, True),
        ("sha256+blake3 verify none <= 1.5 CPU-s/GB", none.cpu / gb, 1.5, False),
        ("sha256+blake3 reread <= 1.5 CPU-s/GB", reread.cpu / gb, 1.5, False),
        ("8 at once >= 0.9x one stream", single.wall / multi.wall, 0.9, True),
        ("8 at once RSS <= 150 MB", multi.rss_mb, 150, False),
        ("daemon 8 docked >= 0.9x one ingest", reread.wall / daemon8.wall, 0.9, True),
        ("daemon 8 docked RSS <= 150 MB", daemon8.rss_mb, 150, False),
    ]
    print("targets:")
    for label, value, bound, at_least in targets:
        met = value >= bound if at_least else value <= bound
        print(f"  {label:<44}{value:8.2f}  {'met' if met else 'MISSED'}")

    big = max(clips, key=lambda p: p.stat().st_size)
    resume = resume_measurement(big, out / "resume-store")
    shutil.rmtree(out / "resume-store", ignore_errors=True)
    print(
        f"resume after kill -9 at {resume['killed_at'] / MB:.0f} of {resume['size'] / MB:.0f} MB: "
        f"resumed {resume['resumed_bytes'] / MB:.1f} MB from staging, read "
        f"{resume['source_bytes_read'] / MB:.1f} MB from source; copied data read again "
        f"{resume['reread_of_copied'] / MB:.2f} MB (window {resume['window'] / MB:.1f} MB)"
    )
    print(json.dumps({"runs": [r.__dict__ for r in runs], "resume": resume, "bytes": total}))
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_daemon":
        daemon_worker(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "_engine":
        engine_worker(
            Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
        )
        sys.exit(0)
    sys.exit(main())
