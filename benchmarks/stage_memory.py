"""Run the job and print, stage by stage, where its memory is: a table of one row per stage the runner executes.

    python benchmarks/stage_memory.py [--table stages.tsv] -- --input p.jsonl --output out \\
        --runner FnApiRunner --direct_running_mode multi_processing --direct_num_workers 2

For each stage (in the order the FnApiRunner runs them): when it ended (seconds since the start), how long it
took, the peak resident memory of the whole process tree while it ran (sampled every 0.2 s) with the
launcher's and the workers' parts of that peak, their resident memory when it ended, and the bytes held in the
runner's buffers between stages then (list buffers: collections waiting for the stage that reads them; grouping
buffers: shuffles). A shuffle or a waiting collection that is large at a million profiles shows here at 100k
already, a tenth of the size.

It wraps ``FnApiRunner._execute_bundle``, a private method of Beam 2.77's runner, in this process: a tool, not
the job, and tied to the Beam version the project pins. Finding the buffers walks the garbage collector's
objects after each stage, which adds a little time per stage.
"""
from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]

COLUMNS = ("ended_s", "took_s", "peak_mb", "peak_launcher_mb", "peak_workers_mb", "launcher_mb", "workers_mb",
           "list_buffers_mb", "grouping_buffers_mb", "stage")


def buffered_bytes(objects, list_type, grouping_type) -> tuple[int, int]:
    """Bytes held by the runner's list buffers and grouping buffers among ``objects``."""
    in_lists = in_groups = 0
    for obj in objects:
        kind = type(obj)
        if kind is list_type:
            in_lists += sum(map(len, obj._inputs)) + sum(len(part) for parts in (obj._grouped_output or ())
                                                         for part in parts)
        elif kind is grouping_type:
            in_groups += sum(len(v) for values in obj._table.values() for v in values if isinstance(v, bytes))
            in_groups += sum(len(part) for parts in (obj._grouped_output or ()) for part in parts)
    return in_lists, in_groups


class _TreePeak:
    """The peak of (launcher + workers) resident memory since the last ``take``, sampled in a thread."""

    def __init__(self, interval: float = 0.2):
        self._me = psutil.Process()
        self._peak = (0, 0, 0)
        self._lock = threading.Lock()
        threading.Thread(target=self._run, args=(interval,), daemon=True).start()

    def now(self) -> tuple[int, int]:
        workers = 0
        for child in self._me.children(recursive=True):
            try:
                workers += child.memory_info().rss
            except psutil.Error:
                pass
        return self._me.memory_info().rss, workers

    def _run(self, interval: float) -> None:
        while True:
            launcher, workers = self.now()
            with self._lock:
                if launcher + workers > self._peak[0]:
                    self._peak = (launcher + workers, launcher, workers)
            time.sleep(interval)

    def take(self) -> tuple[int, int, int]:
        with self._lock:
            peak, self._peak = self._peak, (0, 0, 0)
        return peak


def install(rows: list[tuple]) -> None:
    """Wrap the runner so that each executed stage appends a row (``COLUMNS``) to ``rows``."""
    from apache_beam.runners.portability.fn_api_runner import execution, fn_runner  # noqa: PLC0415

    original = fn_runner.FnApiRunner._execute_bundle
    started = time.perf_counter()
    peaks = _TreePeak()
    mb = 1 << 20

    def execute_bundle(self, context, bundle_context_manager, bundle_input):
        began = time.perf_counter()
        result = original(self, context, bundle_context_manager, bundle_input)
        peak, peak_launcher, peak_workers = peaks.take()
        launcher, workers = peaks.now()
        in_lists, in_groups = buffered_bytes(gc.get_objects(), execution.ListBuffer, execution.GroupingBuffer)
        ended = time.perf_counter()
        rows.append((round(ended - started, 1), round(ended - began, 1), peak // mb, peak_launcher // mb,
                     peak_workers // mb, launcher // mb, workers // mb, in_lists // mb, in_groups // mb,
                     bundle_context_manager.stage.name))
        return result

    fn_runner.FnApiRunner._execute_bundle = execute_bundle


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, job = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", help="also write the table here (tab-separated, with a header)")
    parser.add_argument("--min_seconds", type=float, default=0.0,
                        help="print only stages that took at least this long (the table file keeps all)")
    args = parser.parse_args(ours)
    sys.path.insert(0, str(ROOT))
    from pipeline.run import main as run_job  # noqa: PLC0415

    rows: list[tuple] = []
    install(rows)
    status = run_job(job)
    print("\t".join(COLUMNS))
    for row in rows:
        if row[1] >= args.min_seconds:
            print("\t".join(str(v) for v in row[:-1]) + "\t" + row[-1][:160])
    if rows:
        top = max(rows, key=lambda r: r[2])
        print(f"highest peak: {top[2]} MB ({top[3]} launcher + {top[4]} workers) in stage {top[-1][:160]}")
    if args.table:
        with open(args.table, "w", encoding="utf-8") as out:
            out.write("\t".join(COLUMNS) + "\n")
            out.writelines("\t".join(str(v) for v in row) + "\n" for row in rows)
    return status


if __name__ == "__main__":
    sys.exit(main())
