"""Tests for benchmarks/stage_memory.py, the diagnostic that prints where the job's memory is, stage by stage
(it wraps Beam's runner, so the run is in a child process)."""
from __future__ import annotations

from apache_beam.runners.portability.fn_api_runner import execution

from benchmarks.stage_memory import COLUMNS, buffered_bytes
from tests.helpers import generated_profiles, run_diagnostic


def test_a_run_in_two_worker_processes_gives_a_row_per_stage_with_its_memory(tmp_path):
    profiles, _ = generated_profiles(tmp_path, 150, 5)
    table = tmp_path / "stages.tsv"
    result = run_diagnostic("stage_memory.py", ["--table", str(table)], profiles, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "merge_plan.jsonl").exists()
    lines = table.read_text().splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) > 20   # the job runs dozens of stages
    stages = " ".join(row[-1] for row in rows)
    assert "ResolveClusters" in stages and "BlockPairs" in stages
    # the workers are other processes: their memory is counted, and every peak is at least what it is made of
    assert all(int(row[COLUMNS.index("workers_mb")]) > 0 for row in rows)
    for row in rows:
        peak, launcher, workers = (int(row[COLUMNS.index(c)]) for c in ("peak_mb", "peak_launcher_mb", "peak_workers_mb"))
        assert peak == 0 or launcher + workers - 1 <= peak <= launcher + workers + 1
    ended = [float(row[0]) for row in rows]
    assert ended == sorted(ended)
    assert "highest peak:" in result.stdout


def test_buffered_bytes_weighs_list_and_grouping_buffers_and_nothing_else():
    listed = execution.ListBuffer(None)
    listed.append(b"x" * 1000)
    listed.append(b"y" * 24)

    class Grouping:   # the fields of Beam's GroupingBuffer that hold bytes
        pass

    grouped = Grouping()
    grouped._table = {b"k": [b"v" * 300, "not bytes", b"w" * 7]}
    grouped._grouped_output = [[b"z" * 50]]
    assert buffered_bytes([listed, grouped, b"q" * 999, [b"r" * 10]], execution.ListBuffer, Grouping) == (1024, 357)
