"""Tests for pipeline/io.py: JSON Lines outputs under their exact names, written shard by shard."""
from __future__ import annotations

import json
import re

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import io


def _write(records, path, workers: int = 1):
    options = PipelineOptions(["--direct_num_workers", str(workers), "--direct_running_mode", "multi_threading"])
    with beam.Pipeline(runner="FnApiRunner", options=options) as p:
        p | beam.Create(records, reshuffle=True) | io.WriteJsonLines(str(path))


def test_write_json_lines_makes_one_exact_file_and_leaves_no_shards(tmp_path):
    records = [{"n": n, "name": f"Zoë {n}"} for n in range(2000)]
    _write(records, tmp_path / "out.jsonl", workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted((json.loads(line) for line in lines), key=lambda r: r["n"]) == records


def test_write_json_lines_of_nothing_is_an_empty_file(tmp_path):
    _write([], tmp_path / "rejected.jsonl")
    assert (tmp_path / "rejected.jsonl").read_text() == ""
    assert [p.name for p in tmp_path.iterdir()] == ["rejected.jsonl"]


def test_concatenate_copies_shards_in_name_order_and_deletes_them(tmp_path):
    names = [tmp_path / f"beam-temp-x-part-0000{i}-of-00003" for i in (2, 0, 1)]
    for i, path in zip((2, 0, 1), names):
        path.write_text(f'{{"shard": {i}}}\n')
    assert io.concatenate([str(p) for p in names], str(tmp_path / "x.jsonl")) == str(tmp_path / "x.jsonl")
    assert (tmp_path / "x.jsonl").read_text() == '{"shard": 0}\n{"shard": 1}\n{"shard": 2}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["x.jsonl"]


def test_resolve_inputs_absolute_paths_directories_and_globs(tmp_path, monkeypatch, caplog):
    import pytest

    exports = tmp_path / "exports"
    (exports / "old").mkdir(parents=True)
    (exports / "a.jsonl").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    # a relative path becomes absolute, so that two names of one file are one file
    assert io.resolve_inputs(["exports/a.jsonl"]) == [str(exports / "a.jsonl")]
    # a directory (with or without its slash) stands for the files in it
    assert io.resolve_inputs(["exports"]) == [str(exports / "*")]
    assert io.resolve_inputs([str(exports) + "/"]) == [str(exports / "*")]
    # ... and says so when files in its sub-folders are left out
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    (exports / "dated").mkdir()
    (exports / "dated" / "2025-07-31.jsonl").write_text("{}\n")
    kept: list = []
    assert io.resolve_inputs(["exports"], kept) == [str(exports / "*")]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "1 file(s) in its sub-folders are not read" in warned[0]
    assert kept == warned   # for summary.json and the report
    assert str(exports / "**") in warned[0]
    assert io.resolve_inputs([str(exports / "**")]) == [str(exports / "**")]
    assert io.resolve_inputs(["exports/*.jsonl"]) == [str(exports / "*.jsonl")]   # a pattern of one's own: no warning
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1
    (exports / "dated" / "2025-07-31.jsonl").unlink()
    assert io.resolve_inputs(["exports/*.jsonl", "exports/a*"]) == [str(exports / "*.jsonl"), str(exports / "a*")]
    for pattern in ["exports/b.jsonl", "exports/*.csv", "exports/old", "missing/"]:
        with pytest.raises(ValueError, match=re.escape(f"--input '{pattern}' matches no file")):
            io.resolve_inputs(["exports/a.jsonl", pattern])
    with pytest.raises(ValueError, match="--input names no file"):
        io.resolve_inputs([])
    # a pattern that cannot be listed at all says why, not that it matched nothing
    with pytest.raises(ValueError, match=re.escape("--input 'nosuch://bucket/x' cannot be listed: Unable to get filesystem")):
        io.resolve_inputs(["nosuch://bucket/x"])


def test_check_output_refuses_a_file_in_the_way(tmp_path):
    import pytest

    io.check_output(str(tmp_path))
    io.check_output(str(tmp_path / "not yet made"))
    io.check_output("s3://bucket/out")
    (tmp_path / "taken").write_text("x")
    with pytest.raises(ValueError, match="is a file; it must be a directory"):
        io.check_output(str(tmp_path / "taken"))
