"""Tests for transforms/progress.py: the progress lines a long run logs while it runs."""
from __future__ import annotations

import logging

import apache_beam as beam
import pytest

from transforms import progress


@pytest.fixture
def fresh(monkeypatch):
    """Empty tallies, a line at every increment."""
    monkeypatch.setattr(progress, "_tallies", {})
    monkeypatch.setattr(progress, "_clock", {"started": None, "logged": None})
    monkeypatch.setattr(progress, "PERIOD_S", 0.0)


def test_progress_line_lists_tallies_in_pipeline_order_with_thousands():
    tallies = {("score", "pairs_scored"): 1200, ("read", "records_read"): 1_000_000, ("block", "candidate_pairs"): 0}
    assert progress.progress_line(tallies, 65.4, 12) == \
        "progress (process 12, 1 min 5 s): 1,000,000 records read, 1,200 scored"
    assert progress.progress_line({("read", "records_read"): 3}, 9.9, 1) == "progress (process 1, 9 s): 3 records read"


def test_tally_logs_at_most_once_a_period(fresh, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=progress.LOG.name)
    progress.tally(("read", "records_read"), 5)
    progress.tally(("normalize", "profiles_normalized"), 4)
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "5 records read", "5 records read, 4 profiles normalised"]
    caplog.clear()
    monkeypatch.setattr(progress, "PERIOD_S", 3600.0)
    progress.tally(("read", "records_read"), 1)
    assert caplog.records == [], "the last line is less than a period old"


def test_in_a_worker_process_the_line_goes_only_to_the_forwarding_handler(fresh, caplog):
    """Beam's SDK worker forwards records through a handler on its root logger (FnApiLogRecordHandler)."""
    class FnApiLogRecordHandler(logging.Handler):   # stands in for Beam's, found by its class name
        def __init__(self):
            super().__init__()
            self.records = []

        def emit(self, record):
            self.records.append(record)

    caplog.set_level(logging.INFO, logger=progress.LOG.name)
    forwarding = FnApiLogRecordHandler()
    logging.getLogger().addHandler(forwarding)
    try:
        progress.tally(("read", "records_read"), 2)
    finally:
        logging.getLogger().removeHandler(forwarding)
    assert [r.getMessage() for r in forwarding.records] == [progress.progress_line(
        {("read", "records_read"): 2}, 0, __import__("os").getpid())]
    assert caplog.records == [], "not printed a second time by the process's own handlers"


def test_counter_increments_the_beam_counter_and_the_tally(fresh):
    with beam.Pipeline(runner="FnApiRunner") as p:
        _ = p | beam.Create([1, 2, 3]) | beam.Map(lambda x, c=progress.counter("read", "records_read"): c.inc(x))
    result = p.result.metrics().query(beam.metrics.MetricsFilter().with_name("records_read"))
    assert sum(c.committed for c in result["counters"]) == 6
    assert progress._tallies[("read", "records_read")] == 6
    # a counter no progress line shows is Beam's own
    assert isinstance(progress.counter("read", "files_read"), type(beam.metrics.Metrics.counter("a", "b")))
