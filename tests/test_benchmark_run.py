"""Tests for benchmarks/run.py's measuring of a child process tree and its same-people lines (the benchmark itself
is not a test)."""
from __future__ import annotations

import json
import sys
import textwrap

from benchmarks.run import _measured
from tests.helpers import pid


def test_measured_sums_the_cpu_time_of_every_process_in_the_tree(tmp_path):
    script = tmp_path / "tree.py"
    script.write_text(textwrap.dedent("""
        import resource, subprocess, sys, time
        def work():
            total = 0
            for i in range(3_000_000):
                total += i * i
            usage = resource.getrusage(resource.RUSAGE_SELF)
            time.sleep(0.6)
            return usage.ru_utime + usage.ru_stime
        if sys.argv[1:] == ["grandchild"]:
            print(work(), flush=True)
        else:
            grandchild = subprocess.Popen([sys.executable, __file__, "grandchild"], stdout=subprocess.PIPE, text=True)
            own = work()
            print(own, grandchild.communicate()[0].strip(), flush=True)
    """))
    code, stdout, _, wall, peak_gb, cpu = _measured([sys.executable, str(script)])
    assert code == 0
    own, grandchild = map(float, stdout.decode().split())
    # both processes' work is counted, each at most one sampling interval short; the tree's
    # memory is that of two Python processes
    assert own > 0.05 and grandchild > 0.05
    assert cpu >= 0.9 * (own + grandchild)
    assert cpu <= wall * 2 + 1
    assert 0.005 < peak_gb < 1


def _write_run(directory, n: int, mode: str, truth: dict, merges: list) -> None:
    (directory / f"truth_{n}.csv").write_text("profile_id,cluster_id\n" + "".join(f"{k},{v}\n" for k, v in truth.items()))
    out = directory / f"out_{n}_{mode}_0"
    out.mkdir()
    (out / "merge_plan.jsonl").write_text("".join(
        json.dumps({"DomainName": "d", "MainProfileId": main, "ProfileIdsToBeMerged": others}) + "\n"
        for main, others in merges))


def test_same_people_lines_score_the_smaller_runs_profiles_in_both_plans(tmp_path, monkeypatch):
    import benchmarks.run as run
    monkeypatch.setattr(run, "CHUNK", 2)
    small = {pid(1): "A", pid(2): "A", pid(3): "B", pid(4): "B"}
    large = dict(small, **{pid(5): "C", pid(6): "C"})
    _write_run(tmp_path, 4, "2proc", small, [(pid(1), [pid(2)]), (pid(3), [pid(4)])])
    # in the larger domain 3 and 4 are left apart, and 1 is joined with a stranger
    _write_run(tmp_path, 6, "2proc", large, [(pid(1), [pid(2), pid(5)])])
    walls = {(4, "2proc"): 1.0, (6, "2proc"): 2.0}
    lines = run.same_people_lines(tmp_path, walls, [4, 6], ["2proc"], 1)
    assert lines == ["same people 2proc: the first 4 profiles in the 6 run: recall 0.5000 (1.0000 alone), "
                     "wrong pairs with them 2 (0), precision of pairs with them 0.3333 (1.0000)"]
    # a size that is not a whole number of the generator's chunks is not the first profiles of a larger run
    monkeypatch.setattr(run, "CHUNK", 3)
    assert run.same_people_lines(tmp_path, walls, [4, 6], ["2proc"], 1) == []
    # nor is a run that failed
    monkeypatch.setattr(run, "CHUNK", 2)
    assert run.same_people_lines(tmp_path, {(4, "2proc"): 1.0}, [4, 6], ["2proc"], 1) == []


def test_interpreter_line_names_the_interpreter_its_version_and_how_libpython_is_linked():
    import platform

    from benchmarks.run import interpreter_line
    line = interpreter_line(sys.executable)
    assert line.startswith(f"interpreter: {sys.executable} (CPython {platform.python_version()}, ")
    # the child runs this very interpreter, so it maps libpython exactly when this process does
    with open("/proc/self/maps") as maps:
        shared = "libpython" in maps.read()
    assert line.endswith("libpython as a shared library)" if shared else "libpython linked in)")


def test_run_once_runs_the_job_on_the_interpreter_it_is_given(tmp_path):
    from benchmarks.run import run_once
    called = tmp_path / "argv.txt"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$@" > {called}\nexit 3\n')
    python.chmod(0o755)
    result = run_once(tmp_path / "profiles.jsonl", tmp_path / "out", "2proc", str(python))
    assert result["failed"] == "exit 3"
    assert called.read_text().split() == ["-m", "pipeline", "--input", str(tmp_path / "profiles.jsonl"),
                                          "--output", str(tmp_path / "out"), "--runner", "FnApiRunner",
                                          "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
