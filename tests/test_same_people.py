"""Tests for benchmarks/same_people.py (a plan scored on a fixed set of people)."""
from __future__ import annotations

import json

import pytest

from tests.helpers import load_benchmark, pid


def _load():
    return load_benchmark("same_people")


# People 1-6 are scored; 7-9 are the rest of the domain.
TRUTH = {pid(1): "A", pid(2): "A", pid(3): "A", pid(4): "B", pid(5): "B", pid(6): "C",
         pid(7): "C", pid(8): "D", pid(9): "E"}
PEOPLE = {pid(n) for n in range(1, 7)}
# The plan joins 1+2 (right), 3 stays alone (a true pair 1-3 and 2-3 missed), 4+5+8 (4-5 right,
# 4-8 and 5-8 wrong, touching), 6+7 (right, across the subset's edge), 9 alone.
PLAN = [(pid(1), [pid(2)]), (pid(4), [pid(5), pid(8)]), (pid(6), [pid(7)])]


def _pred() -> dict:
    return {member: main for main, others in PLAN for member in [main, *others]}


def test_scores_hold_the_people_fixed():
    s = _load().same_people_scores(_pred(), TRUTH, PEOPLE)
    assert s["true_pairs"] == 4            # 1-2, 1-3, 2-3 and 4-5 (6-7 is not among the people)
    assert s["found"] == 2                 # 1-2 and 4-5
    assert s["recall"] == pytest.approx(0.5)
    assert s["precision_inside"] == pytest.approx(1.0)
    # touching: 1-2, 4-5, 4-8, 5-8, 6-7; wrong: 4-8 and 5-8
    assert s["pairs_touching"] == 5
    assert s["false_touching"] == 2
    assert s["precision_touching"] == pytest.approx(3 / 5)


def test_a_plan_outside_the_people_scores_nothing_made():
    s = _load().same_people_scores({pid(8): "x", pid(9): "x"}, TRUTH, PEOPLE)
    assert s["found"] == 0 and s["pairs_touching"] == 0
    assert s["recall"] == 0.0 and s["precision_touching"] == 1.0


def _write(tmp_path):
    (tmp_path / "truth.csv").write_text("profile_id,cluster_id\n" + "".join(f"{k},{v}\n" for k, v in TRUTH.items()))
    (tmp_path / "people.csv").write_text("profile_id,cluster_id\n" + "".join(
        f"{k},{v}\n" for k, v in TRUTH.items() if k in PEOPLE))
    (tmp_path / "plan.jsonl").write_text("".join(json.dumps({"DomainName": "d", "MainProfileId": main,
                                                             "ProfileIdsToBeMerged": others}) + "\n"
                                                 for main, others in PLAN))


def test_script_prints_a_row_per_plan(tmp_path, capsys):
    _write(tmp_path)
    module = _load()
    assert module.main(["--truth", str(tmp_path / "truth.csv"), "--people", str(tmp_path / "people.csv"),
                        str(tmp_path / "plan.jsonl"), str(tmp_path / "plan.jsonl")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "6 people, scored in each plan"
    rows = [line.split() for line in lines[2:]]
    assert len(rows) == 2
    assert rows[0][1:] == ["4", "0.5000", "1.0000", "0.6667", "2", "0.6000"]


def test_script_refuses_people_outside_the_truth(tmp_path):
    _write(tmp_path)
    (tmp_path / "people.csv").write_text("profile_id,cluster_id\n" + f"{pid(99)},Z\n")
    with pytest.raises(SystemExit):
        _load().main(["--truth", str(tmp_path / "truth.csv"), "--people", str(tmp_path / "people.csv"),
                      str(tmp_path / "plan.jsonl")])
