"""Tests for benchmarks/trace_handovers.py, the diagnostic that weighs each hand-over of data between
Beam's runner and its worker processes (the diagnostic itself wraps Beam, so it runs in a child)."""
from __future__ import annotations

import json

from benchmarks.trace_handovers import disagreements
from tests.helpers import generated_profiles, run_diagnostic


def test_a_job_in_two_worker_processes_is_weighed_on_both_sides_and_agrees(tmp_path):
    profiles, _ = generated_profiles(tmp_path, 120, 4)
    trace_path = tmp_path / "trace.json"
    result = run_diagnostic("trace_handovers.py", ["--trace", str(trace_path)], profiles, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    trace = json.loads(trace_path.read_text())
    assert trace["problems"] == []
    assert "disagreements: 0" in result.stdout
    kinds = {entry["what"] for entry in trace["worker"]}
    assert kinds == {"input", "output", "decoded"}
    # both workers took part, and the normalised profiles' hand-over was weighed on both sides
    assert len({entry["bundle"] for entry in trace["worker"]}) > 2
    normalised = [entry for entry in trace["worker"] if entry["what"] == "input" and entry["bytes"] > 0]
    sent = {(b, t): n for b, t, n, _ in trace["runner"]["sent"]}
    assert normalised and all(sent[(e["bundle"], e["transform"])] == e["bytes"] for e in normalised)
    decoded = sum(entry["elements"] for entry in trace["worker"] if entry["what"] == "decoded")
    assert decoded > 0


def test_disagreements_name_the_side_that_lost_bytes():
    sent = {("bundle_5", "read"): 100}
    received = {("bundle_5", "write"): 40, ("bundle_6", "write"): 60}
    buffer_of = {("bundle_5", "write"): "materialize:features", ("bundle_6", "write"): "materialize:features"}
    worker = [
        {"what": "input", "bundle": "bundle_5", "transform": "read", "bytes": 90},
        {"what": "output", "bundle": "bundle_5", "transform": "write", "bytes": 40},
        {"what": "output", "bundle": "bundle_6", "transform": "write", "bytes": 65},
    ]
    partitioned = [{"buffer": "materialize:features", "bytes": 100, "parts": [60, 30]}]
    problems = disagreements(sent, received, buffer_of, {"materialize:features": 95}, partitioned, worker)
    assert problems == [
        "('bundle_5', 'read'): the runner sent 100 bytes, the worker received 90",
        "('bundle_6', 'write'): the worker sent 65 bytes, the runner received 60",
        "materialize:features: received 100 bytes, appended 95",
        "materialize:features: partitioned 100 bytes into parts of [60, 30]",
    ]
    agreed = [dict(worker[0], bytes=100), worker[1], dict(worker[2], bytes=60)]
    assert disagreements(sent, received, buffer_of, {"materialize:features": 100},
                         [dict(partitioned[0], parts=[70, 30])], agreed) == []
