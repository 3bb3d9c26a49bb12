"""Benchmark the dry run: wall time, peak memory and quality at several sizes.

    python benchmarks/run.py                       # 10k and 100k, in-memory and 2 processes
    python benchmarks/run.py --sizes 10000 --modes inmemory
    python benchmarks/run.py --sizes 1000000 --keep /tmp/bench

Each row generates profiles with the project's generator (deterministic seed),
runs `python -m pipeline` as a child process and samples the resident memory and
CPU time of the whole process tree (the launcher and any worker processes) every 0.2 s.
It prints one table: wall time, CPU time of the tree (user + system, summed over its
processes: the work done, where wall time also counts waiting), peak memory,
profiles/s, candidate pairs, pairs compared/s, busy time per stage (from the job's Beam counters, in
seconds summed over workers) and pairwise precision / recall / F1 against the
generator's truth; after the table, the interpreter that ran the job, the cost exponent between consecutive
sizes (log of the time ratio over log of the size ratio: 1.0 is linear), and how the
same people fare in both (`benchmarks/same_people.py`: the generator's first N profiles are
its run of N when N is a multiple of its chunk of 10,000). This is
a benchmark, not a test: run it on a quiet machine
and compare medians of repeated runs (`--repeat`).

The job runs on this script's own interpreter, or on `--python PATH` (one whose environment has
the project's dependencies, a venv made with it and `pip install -e .`): how CPython was built
changes this job's speed as much as most code changes do (see Performance in the README).

When Splink is installed (`pip install -e '.[bench]'`), each size also gets a
`splink` row: `benchmarks/splink_run.py` deduplicates the same data with Splink 5
on DuckDB as a child process, measured the same way (its pairs are its blocked
pairs; it has no stage columns). After the table, the ratio of our in-memory wall
time to Splink's. `--no_splink` skips it.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.generate import CHUNK  # noqa: E402
from benchmarks.same_people import same_people_scores  # noqa: E402
from pipeline.evaluate import read_plan, read_truth  # noqa: E402

MODES = {
    "inmemory": ["--runner", "FnApiRunner"],
    "2proc": ["--runner", "FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    "3proc": ["--runner", "FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=3"],
    "4proc": ["--runner", "FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=4"],
}
STAGES = ("normalize", "block", "compare", "score", "cluster")


def generate(n: int, seed: int, directory: Path) -> tuple[Path, Path]:
    profiles, truth = directory / f"profiles_{n}.jsonl", directory / f"truth_{n}.csv"
    if not profiles.exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--n", str(n), "--seed", str(seed),
                        "--output", str(profiles), "--truth", str(truth)], check=True, capture_output=True)
    return profiles, truth


def _watch_tree(process: psutil.Process, stop: threading.Event, peak: list, cpu: dict) -> None:
    """Sample a process tree until ``stop``: the peak of its summed resident memory into ``peak[0]``,
    and each process's CPU time (user + system) so far into ``cpu[pid]``, so that a process that
    has ended keeps the last time seen (at most one interval short)."""
    while not stop.is_set():
        try:
            total = 0
            for member in [process, *process.children(recursive=True)]:
                try:
                    total += member.memory_info().rss
                    times = member.cpu_times()
                    cpu[member.pid] = times.user + times.system
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)
        except psutil.Error:
            return
        time.sleep(0.2)


def _measured(command: list[str]) -> tuple[int, bytes, bytes, float, float, float]:
    """Run a child process, sampling its tree: (return code, stdout, stderr, wall s, peak GB, CPU s)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, cpu, stop = [0], {}, threading.Event()
    watcher = threading.Thread(target=_watch_tree, args=(psutil.Process(child.pid), stop, peak, cpu), daemon=True)
    watcher.start()
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - started
    stop.set()
    watcher.join()
    return child.returncode, stdout, stderr, wall, peak[0] / 2**30, sum(cpu.values())


# Run by the interpreter under test: its version, and whether the running executable maps libpython
# as a shared library (as this machine's pyenv build does) or has it linked in (as Debian's
# /usr/bin/python3.11 does). Whether it was built with profile-guided optimisation cannot be read back.
_INTERPRETER_PROBE = """
import platform, sys
try:
    maps = open("/proc/self/maps").read()
    linked = "libpython as a shared library" if "libpython" in maps else "libpython linked in"
except OSError:
    linked = "libpython linkage unknown"
print(f"{sys.executable} (CPython {platform.python_version()}, {linked})")
"""


def interpreter_line(python: str) -> str:
    """What ``python`` is, as one line: its executable, version and how libpython is linked."""
    described = subprocess.run([python, "-c", _INTERPRETER_PROBE], capture_output=True, text=True, check=True)
    return "interpreter: " + described.stdout.strip()


def run_once(profiles: Path, out: Path, mode: str, python: str = sys.executable) -> dict:
    command = [python, "-m", "pipeline", "--input", str(profiles), "--output", str(out), *MODES[mode]]
    code, _, stderr, wall, peak_gb, cpu = _measured(command)
    if code != 0:
        # Keep the other rows: a size that does not fit (the kernel's OOM killer sends SIGKILL)
        # is a result too.
        how = "killed (SIGKILL: out of memory?)" if code == -9 else f"exit {code}"
        print(f"pipeline failed ({mode}, {how}): {stderr.decode()[-2000:]}", file=sys.stderr)
        return {"wall": wall, "peak_gb": peak_gb, "cpu": cpu, "failed": how}
    summary = json.loads((out / "summary.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else {}
    return {"wall": wall, "peak_gb": peak_gb, "cpu": cpu, "summary": summary, "metrics": metrics}


def evaluate(out: Path, truth: Path) -> dict:
    result = subprocess.run([sys.executable, "-m", "pipeline.evaluate", "--plan", str(out / "merge_plan.jsonl"),
                             "--truth", str(truth)], capture_output=True, text=True, check=True, cwd=ROOT)
    last = result.stdout.strip().splitlines()[-1]
    return {k: float(v) for k, v in (part.split("=") for part in last.split())}


def run_splink_once(profiles: Path, truth: Path, out: Path) -> dict:
    """benchmarks/splink_run.py as a child process, its tree's memory sampled like ours."""
    command = [sys.executable, str(ROOT / "benchmarks" / "splink_run.py"), "--profiles", str(profiles),
               "--truth", str(truth), "--out", str(out)]
    code, stdout, stderr, wall, peak_gb, cpu = _measured(command)
    if code != 0:
        raise RuntimeError(f"splink failed: {stderr.decode()[-2000:]}")
    return {"wall": wall, "peak_gb": peak_gb, "cpu": cpu, **json.loads(stdout.decode().strip().splitlines()[-1])}


def _lead(n: int, mode: str, wall: float, cpu: float, peak: float) -> str:
    """The first columns of a table row: size, mode, wall s, CPU s, peak GB."""
    return f"{n:>9} {mode:>8} {wall:>7.1f} {cpu:>7.1f} {peak:>7.2f}"


def splink_row(n: int, runs: list[dict]) -> str:
    wall = statistics.median(r["wall"] for r in runs)
    peak = statistics.median(r["peak_gb"] for r in runs)
    cpu = statistics.median(r["cpu"] for r in runs)
    last = runs[-1]
    pairs = last["blocked_pairs"]
    return (_lead(n, "splink", wall, cpu, peak) + f" {n / wall:>7.0f} {pairs:>9} {pairs / wall:>8.0f} "
            + " ".join(f"{'-':>7}" for _ in STAGES)
            + f" {last['precision']:>6.4f} {last['recall']:>6.4f} {last['F1']:>6.4f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated profile counts")
    parser.add_argument("--modes", default="inmemory,2proc", help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the table shows medians")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--keep", default=None, help="directory for generated data and outputs (default: temp)")
    parser.add_argument("--splink", dest="splink", action="store_true", default=None,
                        help="also run Splink on the same data (default: when splink is importable)")
    parser.add_argument("--no_splink", dest="splink", action="store_false", help="skip the Splink comparison")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter that runs the job (default: this one); its environment needs the "
                             "project's dependencies")
    args = parser.parse_args(argv)
    splink_installed = importlib.util.find_spec("splink") is not None
    if args.splink and not splink_installed:
        parser.error("--splink needs splink: pip install -e '.[bench]'")
    use_splink = splink_installed if args.splink is None else args.splink
    walls = {}
    directory = Path(args.keep or tempfile.mkdtemp(prefix="profile-dedup-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    header = (f"{'profiles':>9} {'mode':>8} {'wall s':>7} {'CPU s':>7} {'peak GB':>7} {'prof/s':>7} {'pairs':>9} {'pairs/s':>8} "
              + " ".join(f"{s[:7]:>7}" for s in STAGES) + f" {'prec':>6} {'recall':>6} {'F1':>6}")
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        profiles, truth = generate(n, args.seed, directory)
        for mode in args.modes.split(","):
            runs = []
            for attempt in range(args.repeat):
                out = directory / f"out_{n}_{mode}_{attempt}"
                runs.append(run_once(profiles, out, mode, args.python))
            failed = next((r for r in runs if "failed" in r), None)
            if failed:
                rows.append(_lead(n, mode, failed["wall"], failed["cpu"], failed["peak_gb"]) + f"  {failed['failed']}")
                print(rows[-1], file=sys.stderr, flush=True)
                continue
            wall = statistics.median(r["wall"] for r in runs)
            walls[(n, mode)] = wall
            peak = statistics.median(r["peak_gb"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            last = runs[-1]
            pairs = last["summary"]["pairs_scored"]
            stage_s = [last["metrics"].get(f"{s}.busy_usec", 0) / 1e6 for s in STAGES]
            quality = evaluate(directory / f"out_{n}_{mode}_{args.repeat - 1}", truth)
            rows.append(_lead(n, mode, wall, cpu, peak) + f" {n / wall:>7.0f} {pairs:>9} {pairs / wall:>8.0f} "
                        + " ".join(f"{s:>7.1f}" for s in stage_s)
                        + f" {quality['precision']:>6.4f} {quality['recall']:>6.4f} {quality['F1']:>6.4f}")
            print(rows[-1], file=sys.stderr, flush=True)
        if use_splink:
            runs = [run_splink_once(profiles, truth, directory / f"out_{n}_splink_{attempt}")
                    for attempt in range(args.repeat)]
            walls[(n, "splink")] = statistics.median(r["wall"] for r in runs)
            walls[(n, "splink_core")] = statistics.median(r["load_to_clusters_s"] for r in runs)
            rows.append(splink_row(n, runs))
            print(rows[-1], file=sys.stderr, flush=True)
    print(header)
    for row in rows:
        print(row)
    print(interpreter_line(args.python))
    if not use_splink:
        print("splink: skipped (" + ("--no_splink" if splink_installed else
                                     "not installed; pip install -e '.[bench]'") + ")")
    for n in (int(x) for x in args.sizes.split(",")):
        if (n, "splink") in walls and (n, "inmemory") in walls:
            print(f"{n:>9} profiles: in-memory wall / splink wall = "
                  f"{walls[(n, 'inmemory')] / walls[(n, 'splink')]:.2f} (splink process {walls[(n, 'splink')]:.1f} s, "
                  f"of which load to clusters {walls[(n, 'splink_core')]:.1f} s)")
    sizes = sorted(int(x) for x in args.sizes.split(","))
    for line in cost_exponents(walls, sizes, args.modes.split(",")):
        print(line)
    for line in same_people_lines(directory, walls, sizes, args.modes.split(","), args.repeat):
        print(line)
    return 0


def cost_exponent(small: int, small_wall: float, large: int, large_wall: float) -> float:
    """How cost grows with size: log(time ratio) / log(size ratio); 1.0 is linear."""
    return math.log(large_wall / small_wall) / math.log(large / small)


def cost_exponents(walls: dict, sizes: list[int], modes: list[str]) -> list[str]:
    """One line per mode and pair of consecutive sizes (the issue's bar: at most 1.1 from 100k to 1M)."""
    lines = []
    for mode in modes + ["splink"]:
        for small, large in zip(sizes, sizes[1:]):
            if (small, mode) in walls and (large, mode) in walls:
                exponent = cost_exponent(small, walls[(small, mode)], large, walls[(large, mode)])
                lines.append(f"cost exponent {mode} {small} -> {large}: {exponent:.2f}")
    return lines


def same_people_lines(directory: Path, walls: dict, sizes: list[int], modes: list[str], repeat: int) -> list[str]:
    """One line per mode and pair of consecutive sizes: the smaller run's profiles (the generator's first
    ones, when its size is a multiple of ``CHUNK``) scored in both runs' plans, so that a larger domain's
    quality is compared on the same people."""
    lines = []
    for mode in modes:
        for small, large in zip(sizes, sizes[1:]):
            if small % CHUNK or (small, mode) not in walls or (large, mode) not in walls:
                continue
            truth = read_truth(str(directory / f"truth_{large}.csv"))
            people = set(read_truth(str(directory / f"truth_{small}.csv")))
            alone, among = (same_people_scores(read_plan(str(directory / f"out_{n}_{mode}_{repeat - 1}" / "merge_plan.jsonl"))[0],
                                               truth, people) for n in (small, large))
            lines.append(f"same people {mode}: the first {small} profiles in the {large} run: recall {among['recall']:.4f} "
                         f"({alone['recall']:.4f} alone), wrong pairs with them {among['false_touching']} "
                         f"({alone['false_touching']}), precision of pairs with them {among['precision_touching']:.4f} "
                         f"({alone['precision_touching']:.4f})")
    return lines


if __name__ == "__main__":
    sys.exit(main())
