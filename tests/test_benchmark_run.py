"""Tests for benchmarks/run.py's measuring of a child process tree (the benchmark itself is not a test)."""
from __future__ import annotations

import sys
import textwrap

from benchmarks.run import _measured


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
