"""Progress of a long dry run, logged while it runs.

Beam's counters reach the launcher only when a DirectRunner job ends, so a run over a million
profiles would say nothing for a quarter of an hour between its first line and its summary. Each
process that runs the job's steps (the launcher when the runner works in memory, each worker process
of the multi-processing mode, each worker of a distributed runner) also keeps its own tallies of what
its steps have done, and logs them in one line at most every ``PERIOD_S`` seconds while they grow.
The counts are that process's own; the summary at the end has the job's totals.

``counter(namespace, name)`` stands in for ``Metrics.counter``: it increments the Beam counter and,
for the counters listed in ``SHOWN``, the tally. The environment variable
``PROFILE_DEDUP_PROGRESS_SECONDS`` sets the period (0: a line at every increment; the tests use it).
"""
from __future__ import annotations

import logging
import os
import threading
import time

from apache_beam.metrics import Metrics

LOG = logging.getLogger("profile_dedup.progress")
# the first word of every progress line; pipeline.run shows worker lines that start with it
PREFIX = "progress"
PERIOD_S = float(os.environ.get("PROFILE_DEDUP_PROGRESS_SECONDS") or 30)

# The counters a progress line shows, in the order of the pipeline, with the words it uses.
SHOWN = {
    ("read", "records_read"): "records read",
    ("normalize", "profiles_normalized"): "profiles normalised",
    ("block", "candidate_pairs"): "candidate pairs made",
    ("compare", "pairs_compared"): "compared",
    ("score", "pairs_scored"): "scored",
    ("cluster", "clusters_planned"): "clusters planned",
}

_lock = threading.Lock()
_tallies: dict[tuple[str, str], int] = {}
_clock = {"started": None, "logged": None}


def progress_line(tallies: dict[tuple[str, str], int], seconds: float, pid: int) -> str:
    """One line: this process's tallies in pipeline order, e.g.
    "progress (process 12, 1 min 5 s): 20,000 records read, 20,000 profiles normalised"."""
    done = ", ".join(f"{tallies[key]:,} {words}" for key, words in SHOWN.items() if tallies.get(key))
    minutes, rest = divmod(int(seconds), 60)
    took = f"{minutes} min {rest} s" if minutes else f"{rest} s"
    return f"{PREFIX} (process {pid}, {took}): {done}"


def tally(key: tuple[str, str], n: int) -> None:
    """Add ``n`` to a tally; log this process's tallies if the last line is PERIOD_S old."""
    now = time.monotonic()
    with _lock:
        _tallies[key] = _tallies.get(key, 0) + n
        if _clock["started"] is None:
            _clock["started"] = _clock["logged"] = now
        if now - _clock["logged"] < PERIOD_S:
            return
        _clock["logged"] = now
        line = progress_line(_tallies, now - _clock["started"], os.getpid())
    _emit(line)


def _emit(line: str) -> None:
    """Log a progress line once. A Beam SDK worker process (the multi-processing mode's, a
    distributed runner's) forwards its log records to the runner through a handler on its root
    logger, and the DirectRunner's worker processes also print them on the terminal they share
    with the launcher: there the line goes only to the forwarding handler, which the launcher shows
    once (pipeline.run.keep_worker_line). Anywhere else it is logged as usual."""
    record = LOG.makeRecord(LOG.name, logging.INFO, __file__, 0, "%s", (line,), None)
    forwarding = [h for h in logging.getLogger().handlers if type(h).__name__ == "FnApiLogRecordHandler"]
    for handler in forwarding:
        handler.handle(record)
    if not forwarding and LOG.isEnabledFor(logging.INFO):
        LOG.handle(record)


class _TalliedCounter:
    """A Beam counter whose increments are also tallied for the progress lines."""

    def __init__(self, namespace: str, name: str):
        self._counter = Metrics.counter(namespace, name)
        self._key = (namespace, name)

    def inc(self, n: int = 1) -> None:
        self._counter.inc(n)
        tally(self._key, n)


def counter(namespace: str, name: str):
    """``Metrics.counter(namespace, name)``, tallied for the progress lines if SHOWN lists it."""
    return _TalliedCounter(namespace, name) if (namespace, name) in SHOWN else Metrics.counter(namespace, name)
