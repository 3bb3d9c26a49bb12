#!/usr/bin/env python3
"""Achieved vs configured MergeProfiles rate of the apply sink, against the local emulator.

    python benchmarks/apply_rate.py                      # the full table (about 8 minutes)
    python benchmarks/apply_rate.py --sizes 1000 --latencies 50 --workers 1

For every row: an emulator subprocess (``python -m emulator``) holding 2 x N synthetic
profiles, limited to --rate merges/s with a token bucket of --burst (default 1: the
harshest service: any two merges closer than 1/rate apart are throttled) and --latency ms
added to every call; a plan of N requests merging one profile into another; the real apply
path (``pipeline.apply.run_apply``, FnApiRunner, 1 worker or
``--direct_running_mode=multi_processing --direct_num_workers=W``) configured at the same
--rate. Columns:

- achieved/s: merges the emulator accepted, (n - 1) / (last - first acceptance time)
- % of R:     achieved / configured
- sent/s:     MergeProfiles the sink sent per second, retries included (its pacing)
- peak 1s:    most merges the emulator accepted in any 1-second window
- sends 1s:   most MergeProfiles the sink sent in any 1-second window, retries included
- 429s:       requests the emulator throttled
- BGP/req:    BatchGetProfile calls per request (the stale-plan and state checks)
- wall s:     the whole run_apply, Beam start-up included
"""
from __future__ import annotations

import argparse
import bisect
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pid(n: int) -> str:
    return f"{n:032x}"


def start_emulator(profiles_path: str, rate: float, burst: float, latency_ms: float):
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--profiles", profiles_path, "--domain", "bench",
         "--merge_rate", str(rate), "--merge_burst", str(burst), "--latency_ms", str(latency_ms)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, line.split()[-1]


def peak_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    return max((bisect.bisect_right(times, t + window - 1e-9) - i for i, t in enumerate(times)), default=0)


def run_row(n: int, latency_ms: float, workers: int, args) -> dict:
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.apply import ApplyStopped, run_apply
    from pipeline.options import ProfileDedupOptions

    with tempfile.TemporaryDirectory(prefix="apply_rate_") as tmp:
        profiles = os.path.join(tmp, "profiles.jsonl")
        plan = os.path.join(tmp, "plan.jsonl")
        with open(profiles, "w") as handle:
            for i in range(2 * n):
                handle.write(json.dumps({"ProfileId": pid(i), "FirstName": f"p{i}"}) + "\n")
        with open(plan, "w") as handle:
            for i in range(n):
                handle.write(json.dumps({"DomainName": "bench", "MainProfileId": pid(2 * i),
                                         "ProfileIdsToBeMerged": [pid(2 * i + 1)]}) + "\n")
        if args.in_process:
            from emulator import read_profiles_jsonl
            from emulator import start_emulator as start_in_process

            emu = start_in_process(read_profiles_jsonl(profiles), "bench", merge_rate=args.rate,
                                   merge_burst=args.burst, latency_ms=latency_ms)
            proc, url = None, emu.url
        else:
            proc, url = start_emulator(profiles, args.rate, args.burst, latency_ms)
        try:
            argv = ["--from_plan", plan, "--apply", "--output", os.path.join(tmp, "out"), "--domain_name", "bench",
                    "--endpoint_url", url, "--aws_region", "us-east-1",
                    "--max_merges_per_second", str(args.rate), "--merge_shards", str(args.shards),
                    "--merge_concurrency", str(args.concurrency), "--merge_rate_headroom", str(args.headroom)]
            if workers > 1:
                argv += ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
            options = PipelineOptions(argv)
            job = options.view_as(ProfileDedupOptions)
            job.check()
            started = time.time()
            try:
                summary = run_apply(options, job, plan)
            except ApplyStopped as stop:
                summary = stop.summary
            wall = time.time() - started
            stats = json.load(urllib.request.urlopen(url + "/_emulator/stats"))
            sends = []
            with open(os.path.join(tmp, "out", "applied.jsonl")) as handle:
                for line in handle:
                    sends += json.loads(line)["sent_at"]
        finally:
            if proc is None:
                emu.stop()
            else:
                proc.terminate()
                proc.wait(timeout=10)
    accepted = stats["accepted_merge_times"]
    achieved = (len(accepted) - 1) / (accepted[-1] - accepted[0]) if len(accepted) > 1 else 0.0
    run = summary["apply"]["this_run"]
    return {
        "n": n, "latency_ms": latency_ms, "workers": workers, "rate": args.rate,
        "achieved": achieved, "pct": 100 * achieved / args.rate, "peak": stats["peak_accepted_merges_1s"],
        "sends_peak": peak_in_window(sends), "throttled": stats["merges_rejected"]["rate_limit"],
        "send_rate": (len(sends) - 1) / (max(sends) - min(sends)) if len(sends) > 1 else 0.0,
        "merged": summary["apply"]["merged"], "bgp_per_request": run["batch_get_profile_calls_per_request"],
        "wall": wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="configured = emulator rate (default 100)")
    parser.add_argument("--burst", type=float, default=1.0, help="emulator token bucket size (default 1)")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--latencies", default="50,300", help="ms added to every API call")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--in_process", action="store_true", help="emulator in this process, not a subprocess")
    parser.add_argument("--headroom", type=float, default=0.05, help="--merge_rate_headroom (default 0.05)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="per shard; rate x latency / shards in flight are needed (default 8)")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
    logging.basicConfig(level=logging.WARNING)
    print(f"configured rate R = {args.rate:g}/s (emulator: {args.rate:g}/s, burst {args.burst:g}); "
          f"{args.shards} shards x {args.concurrency} in flight; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    header = (f"{'merges':>7} {'latency':>8} {'workers':>7} {'achieved/s':>10} {'% of R':>7} {'sent/s':>7} "
              f"{'peak 1s':>7} {'sends 1s':>8} {'429s':>5} {'BGP/req':>7} {'wall s':>7}")
    print(header)
    print("-" * len(header))
    for n in [int(x) for x in args.sizes.split(",")]:
        for latency in [float(x) for x in args.latencies.split(",")]:
            for workers in [int(x) for x in args.workers.split(",")]:
                row = run_row(n, latency, workers, args)
                assert row["merged"] == n, f"only {row['merged']} of {n} merged"
                print(f"{row['n']:>7} {row['latency_ms']:>6.0f}ms {row['workers']:>7} {row['achieved']:>10.1f} "
                      f"{row['pct']:>6.1f}% {row['send_rate']:>7.1f} {row['peak']:>7} {row['sends_peak']:>8} "
                      f"{row['throttled']:>5} "
                      f"{row['bgp_per_request']:>7.2f} {row['wall']:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
