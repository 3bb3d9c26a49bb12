"""Tests for benchmarks/missed_shapes.py (the missed true pairs by reason and shape, and the F1 bounds)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import load_benchmark


def _load():
    return load_benchmark("missed_shapes")


def _id(n: int) -> str:
    return f"{n:032x}"


def _profile(n: int, first: str, birth: str | None, account: str | None) -> dict:
    profile = {"ProfileId": _id(n), "FirstName": first, "LastName": "Whiteway",
               "Address": {"Address1": "3 Cotton Street", "PostalCode": "3123", "Country": "AU"}}
    if birth:
        profile["BirthDate"] = birth
    if account:
        profile["AccountNumber"] = account
    return profile


PROFILES = [
    _profile(1, "Natalie", "1969-02-20", "4281779"),   # X: one person shaped like twins
    _profile(2, "Chelsea", "1969-02-20", "4088606"),
    _profile(3, "Renee", "1905-04-15", "8508455"),     # Y: one person, birth dates a generation apart
    _profile(4, "Renee", "1947-09-08", "8508455"),
    _profile(5, "Ava", "1990-01-01", "111"),           # Z: never linked, one birth date missing
    _profile(6, "Ava", None, "222"),
    _profile(7, "Liam", "1961-07-04", "333"),          # W: merged by the plan
    _profile(8, "Liam", "1961-07-04", "333"),
]
TRUTH = {1: "X", 2: "X", 3: "Y", 4: "Y", 5: "Z", 6: "Z", 7: "W", 8: "W"}
REVIEW = [
    {"kind": "pair", "a": _id(2), "b": _id(1), "reasons": ["guard: different first names"]},
    {"kind": "pair", "a": _id(3), "b": _id(4), "reasons": ["guard: birth dates a generation apart",
                                                            "probability 0.9 is below --match_threshold 0.95"]},
]


def _files(tmp_path: Path) -> dict:
    (tmp_path / "profiles.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROFILES) + "not json\n")
    (tmp_path / "truth.csv").write_text("profile_id,cluster_id\n" + "".join(f"{_id(n)},{c}\n" for n, c in TRUTH.items()))
    out = tmp_path / "out"
    out.mkdir()
    (out / "merge_plan.jsonl").write_text(json.dumps({"DomainName": "d", "MainProfileId": _id(7),
                                                      "ProfileIdsToBeMerged": [_id(8)]}) + "\n")
    (out / "review.jsonl").write_text("".join(json.dumps(r) + "\n" for r in REVIEW))
    return {"--profiles": tmp_path / "profiles.jsonl", "--plan": out / "merge_plan.jsonl", "--truth": tmp_path / "truth.csv"}


def test_shapes_of_birth_dates_and_account_numbers():
    module = _load()
    assert module.birth_shape("1969-02-20", "1969-02-20") == "same"
    assert module.birth_shape("1969-02-20", "1984-02-20") == "apart <= 15 years"
    assert module.birth_shape("1969-02-20", "1985-01-01") == "apart > 15 years"
    assert module.birth_shape(None, "1985-01-01") == "one missing"
    assert module.account_shape("1", "1") == "same"
    assert module.account_shape("1", "2") == "different"
    assert module.account_shape("", "2") == "one missing"


def test_f1_if_found_adds_true_pairs_without_false_ones():
    module = _load()
    scores = {"true_pairs": 4, "predicted_pairs": 2, "true_positive_pairs": 1}
    assert module.f1_if_found(scores, 0) == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert module.f1_if_found(scores, 3) == pytest.approx(2 * 0.8 * 1.0 / 1.8)   # 4 true of 5 predicted, all 4 found


def test_cli_prints_each_missed_pair_by_reason_and_shape_and_the_bounds(tmp_path, capsys):
    module = _load()
    args = [str(part) for option, path in _files(tmp_path).items() for part in (option, path)]
    assert module.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {" ".join(line.split()) for line in lines[1:4]}
    assert rows == {"1 same different guard: different first names",
                    "1 apart > 15 years same guard: birth dates a generation apart",
                    "1 one missing different not linked: scored below --review_threshold, or never a candidate pair"}
    # 4 true pairs, the plan finds 1 (precision 1, recall 1/4); the guards hold 2, one of them with different accounts
    assert lines[4] == "missed 3 of 4 true pairs; F1 now 0.4000"
    assert lines[5].endswith(f"{2 * 0.5 / 1.5:.4f}")        # all but the 2 guarded found: recall 2/4
    assert lines[6].endswith(f"{2 * 0.75 / 1.75:.4f}")      # all but the twins' shape found: recall 3/4
