"""Tests for pipeline/evaluate.py with small cases worked out by hand."""
from __future__ import annotations

import re

import orjson
import pytest

from pipeline import evaluate

# Truth: A = {a1, a2, a3}, B = {b1, b2}, C = {c1}
TRUTH = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B", "c1": "C"}
# Prediction: {a1, a2}, {a3, b1}; b2 and c1 untouched (singletons)
PRED = [["a1", "a2"], ["a3", "b1"]]

# Worked by hand:
#   true pairs      a1a2 a1a3 a2a3 b1b2              = 4
#   predicted pairs a1a2 a3b1                        = 2
#   true positives  a1a2                             = 1
#   precision 1/2, recall 1/4, F1 = 2*(1/2)(1/4)/(3/4) = 1/3
# B-cubed, per id (precision, recall):
#   a1 (1, 2/3)  a2 (1, 2/3)  a3 (1/2, 1/3)  b1 (1/2, 1/2)  b2 (1, 1/2)  c1 (1, 1)
#   precision = 5/6, recall = 11/18, F1 = 2PR/(P+R) = 55/78


def test_pairwise_hand_case():
    s = evaluate.pairwise_scores(PRED, TRUTH)
    assert (s["true_pairs"], s["predicted_pairs"], s["true_positive_pairs"]) == (4, 2, 1)
    assert s["precision"] == pytest.approx(1 / 2)
    assert s["recall"] == pytest.approx(1 / 4)
    assert s["f1"] == pytest.approx(1 / 3)


def test_bcubed_hand_case():
    s = evaluate.bcubed(PRED, TRUTH)
    assert s["precision"] == pytest.approx(5 / 6)
    assert s["recall"] == pytest.approx(11 / 18)
    assert s["f1"] == pytest.approx(55 / 78)


def test_mapping_and_groups_inputs_agree():
    as_map = {"a1": "x", "a2": "x", "a3": "y", "b1": "y"}
    truth_groups = [["a1", "a2", "a3"], ["b1", "b2"], ["c1"]]
    assert evaluate.pairwise_scores(as_map, truth_groups) == evaluate.pairwise_scores(PRED, TRUTH)
    assert evaluate.bcubed(as_map, truth_groups) == evaluate.bcubed(PRED, TRUTH)


def test_singleton_labels_do_not_collide():
    # two untouched ids must not be treated as one predicted cluster
    s = evaluate.pairwise_scores({}, {"x": 1, "y": 1})
    assert s["predicted_pairs"] == 0 and s["true_pairs"] == 1
    assert (s["precision"], s["recall"], s["f1"]) == (1.0, 0.0, 0.0)


def test_perfect_and_all_in_one():
    perfect = evaluate.pairwise_scores(TRUTH, TRUTH)
    assert (perfect["precision"], perfect["recall"], perfect["f1"]) == (1.0, 1.0, 1.0)
    assert evaluate.bcubed(TRUTH, TRUTH)["f1"] == 1.0
    lump = evaluate.pairwise_scores([list(TRUTH)], TRUTH)
    assert lump["predicted_pairs"] == 15
    assert lump["precision"] == pytest.approx(4 / 15)
    assert lump["recall"] == 1.0
    b3 = evaluate.bcubed([list(TRUTH)], TRUTH)
    # each id: precision |T|/6 -> (3*3 + 2*2 + 1*1) / 6 / 6
    assert b3["precision"] == pytest.approx(14 / 36)
    assert b3["recall"] == 1.0


def test_predicted_ids_outside_truth_are_ignored():
    s = evaluate.pairwise_scores([["a1", "a2", "zz"]], TRUTH)
    assert s["predicted_pairs"] == 1 and s["true_positive_pairs"] == 1


def test_large_clusters_counted_without_enumerating_pairs():
    n = 300_000                       # C(n, 2) = 4.5e10 pairs: enumeration would never finish
    truth = {str(i): i % 2 for i in range(n)}
    pred = {str(i): 0 for i in range(n)}
    s = evaluate.pairwise_scores(pred, truth)
    half = n // 2
    assert s["true_pairs"] == 2 * (half * (half - 1) // 2)
    assert s["predicted_pairs"] == n * (n - 1) // 2
    assert s["recall"] == 1.0


def _hex(c: str) -> str:
    return c * 32


def _write_plan(path, requests):
    with open(path, "wb") as f:
        for main, others in requests:
            f.write(orjson.dumps({"DomainName": "demo", "MainProfileId": main,
                                  "ProfileIdsToBeMerged": others,
                                  "FieldSourceProfileIds": {"FirstName": main}}) + b"\n")
        f.write(b"\n")                # a trailing blank line is tolerated


def test_read_plan_unions_requests_sharing_a_main(tmp_path):
    plan = tmp_path / "plan.jsonl"
    a, b, c, d, e = (_hex(x) for x in "abcde")
    _write_plan(plan, [(a, [b]), (a, [c]), (d, [e])])
    labels, stats = evaluate.read_plan(str(plan))
    assert stats["requests"] == 3
    assert labels[a] == labels[b] == labels[c]
    assert labels[d] == labels[e] != labels[a]
    assert stats["ids_merged_away"] == 3          # b, c and e


def test_read_plan_flags_problems(tmp_path):
    plan = tmp_path / "plan.jsonl"
    a, b, c = (_hex(x) for x in "abc")
    _write_plan(plan, [(a, [b]), (c, [b]), (b, [_hex("d")]),
                       (a, [_hex(str(i % 10)) for i in range(21)]), ("NOT-HEX", [c])])
    _, stats = evaluate.read_plan(str(plan))
    assert stats["requests_with_bad_id_count"] == 1
    assert stats["malformed_ids"] == 1
    assert stats["ids_merged_away_twice"] >= 1          # b is merged into a and into c
    assert stats["mains_merged_away_elsewhere"] >= 1    # b is a main and merged away


def test_read_plan_reads_sharded_files(tmp_path):
    a, b, c, d = (_hex(x) for x in "abcd")
    _write_plan(tmp_path / "merge_plan.jsonl-00000-of-00002", [(a, [b])])
    _write_plan(tmp_path / "merge_plan.jsonl-00001-of-00002", [(c, [d])])
    labels, stats = evaluate.read_plan(str(tmp_path / "merge_plan.jsonl"))
    assert stats["requests"] == 2 and len(labels) == 4


def test_read_plan_rejects_garbage(tmp_path):
    plan = tmp_path / "plan.jsonl"
    plan.write_bytes(b'\n{"MainProfileId": "x"}\n')
    with pytest.raises(ValueError, match=r"plan\.jsonl:2: not a MergeProfiles request"):   # blank lines still count
        evaluate.read_plan(str(plan))


def test_cli_last_line(tmp_path, capsys):
    ids = {name: _hex(ch) for name, ch in zip(TRUTH, "abcdef")}
    truth = tmp_path / "truth.csv"
    truth.write_text("profile_id,cluster_id\n"
                     + "".join(f"{ids[k]},{v}\n" for k, v in TRUTH.items()))
    plan = tmp_path / "plan.jsonl"
    _write_plan(plan, [(ids["a1"], [ids["a2"]]), (ids["a3"], [ids["b1"]])])
    assert evaluate.main(["--plan", str(plan), "--truth", str(truth)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "F1=0.3333 precision=0.5000 recall=0.2500"
    assert re.fullmatch(r"F1=\d\.\d{4} precision=\d\.\d{4} recall=\d\.\d{4}", out[-1])
    text = "\n".join(out)
    assert "true=4 predicted=2 true_positive=1" in text
    assert "B-cubed:  precision=0.8333 recall=0.6111 F1=0.7051" in text


def test_read_truth_requires_header(tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text("id,cluster\n1,1\n")
    with pytest.raises(ValueError):
        evaluate.read_truth(str(bad))


def test_why_missed_counts_each_missed_true_pair_by_its_reason(tmp_path, capsys):
    # true people: X = a b c, Y = d e, Z = f g, W = h i; the plan merges a and b only
    # (and V = j k, a pair reviewed only for its score)
    ids = {name: _hex(ch) for name, ch in zip("abcdefghijk", "abcdef01234")}
    truth = tmp_path / "truth.csv"
    people = {"a": "X", "b": "X", "c": "X", "d": "Y", "e": "Y", "f": "Z", "g": "Z", "h": "W", "i": "W",
              "j": "V", "k": "V"}
    truth.write_text("profile_id,cluster_id\n" + "".join(f"{ids[k]},{v}\n" for k, v in people.items()))
    out = tmp_path / "out"
    out.mkdir()
    _write_plan(out / "merge_plan.jsonl", [(ids["a"], [ids["b"]])])
    review = [
        # d and e: stopped by a guard (its first reason), though also below the threshold
        {"kind": "pair", "a": ids["e"], "b": ids["d"],
         "reasons": ["guard: different first names", "probability 0.9000 is below --match_threshold 0.95"]},
        {"kind": "pair", "a": ids["j"], "b": ids["k"], "reasons": ["probability 0.9100 is below --match_threshold 0.95"]},
        # a reviewed pair of two different people: not a missed true pair
        {"kind": "pair", "a": ids["a"], "b": ids["h"], "reasons": ["probability 0.6 is below --match_threshold 0.95"]},
        {"kind": "split_off", "profile": ids["c"], "reason": "does not match ..."},
        {"kind": "held_cluster", "members": [ids["f"], ids["g"]], "size": 60, "reason": "60 linked profiles"},
    ]
    (out / "review.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in review))
    pred, _ = evaluate.read_plan(str(out / "merge_plan.jsonl"))
    missed = evaluate.missed_pair_reasons(pred, evaluate.read_truth(str(truth)),
                                          *evaluate.read_review(str(out / "review.jsonl")))
    assert missed == {evaluate.SPLIT_OFF: 2, "guard: different first names": 1, evaluate.HELD: 1,
                      evaluate.NOT_LINKED: 1, evaluate.BELOW_MATCH: 1}
    # the CLI finds review.jsonl beside the plan; the breakdown adds up to the false negatives
    # and comes before the last line, which stays the scores
    assert evaluate.main(["--plan", str(out / "merge_plan.jsonl"), "--truth", str(truth), "--why_missed"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "false_negative=6" in "\n".join(lines)
    assert "missed true pairs by reason: 6" in lines
    assert lines[lines.index("missed true pairs by reason: 6") + 1].split() == ["2", *evaluate.SPLIT_OFF.split()]
    assert re.fullmatch(r"F1=\d\.\d{4} precision=\d\.\d{4} recall=\d\.\d{4}", lines[-1])
    # without the flag nothing about reasons is printed
    evaluate.main(["--plan", str(out / "merge_plan.jsonl"), "--truth", str(truth)])
    assert "missed true pairs" not in capsys.readouterr().out


def test_why_missed_does_not_enumerate_huge_true_clusters(monkeypatch):
    monkeypatch.setattr(evaluate, "MAX_EXPLAINED_CLUSTER", 3)
    truth = {f"{n:032x}": "big" for n in range(5)} | {f"{n:032x}": "small" for n in range(5, 7)}
    missed = evaluate.missed_pair_reasons({}, truth, {}, {})
    assert missed == {"in a true cluster of more than 3 profiles (not broken down)": 10, evaluate.NOT_LINKED: 1}
