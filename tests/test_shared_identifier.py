"""Tests for benchmarks/shared_identifier.py (pairs sharing an account, by first-name and birth-date level)."""
from __future__ import annotations

import csv
import json

from tests.helpers import load_benchmark


def _load():
    return load_benchmark("shared_identifier")


def _profile(number: int, first: str, birth: str, account: str) -> dict:
    return {"ProfileId": f"{number:032x}", "FirstName": first, "LastName": "Whiteway", "BirthDate": birth,
            "AccountNumber": account, "Address": {"Address1": "3 Cotton Street", "PostalCode": "3123", "Country": "AU"}}


PROFILES = [
    _profile(1, "Liam", "1961-07-04", "5163016"),      # a household: father and daughter share the account
    _profile(2, "Ashleigh", "1994-09-16", "5163016"),
    _profile(3, "Noah", "1980-01-02", "777"),           # one person, a name replaced (FEBRL-style)
    _profile(4, "Peta", "1980-01-02", "777"),
    _profile(5, "Zoe", "1975-05-05", "888"),            # one person, twice
    _profile(6, "Zoe", "1975-05-05", "888"),
    _profile(7, "Ann", "1975-05-05", ""),               # no account: not paired
]
TRUTH = {1: "a", 2: "b", 3: "c", 4: "c", 5: "d", 6: "d", 7: "e"}


def _files(tmp_path):
    profiles, truth = tmp_path / "p.jsonl", tmp_path / "t.csv"
    profiles.write_text("".join(json.dumps(p) + "\n" for p in PROFILES))
    with truth.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["profile_id", "cluster_id"])
        writer.writerows([(f"{n:032x}", c) for n, c in TRUTH.items()])
    return profiles, truth


def test_table_counts_levels_and_people(tmp_path):
    module = _load()
    from transforms.normalize import profile_features
    features = [profile_features(p, "US", ()) for p in PROFILES]
    pairs = module.shared_value_pairs(features, "account", 50)
    assert sorted((a["id"][-1], b["id"][-1]) for a, b in pairs) == [("1", "2"), ("3", "4"), ("5", "6")]
    truth = {f"{n:032x}": c for n, c in TRUTH.items()}
    table = {kind: (count, people) for kind, count, people in module.disagreement_table(pairs, truth)}
    assert table["all pairs sharing the value"] == (3, 2)
    assert table["first names unrelated"] == (2, 1)          # the household and the replaced name
    assert table["birth dates a generation apart"] == (1, 0)  # only the household
    assert table["both"] == (1, 0)


def test_blocks_above_the_limit_are_skipped_and_cli_prints_the_table(tmp_path, capsys):
    module = _load()
    from transforms.normalize import profile_features
    features = [profile_features(p, "US", ()) for p in PROFILES]
    assert module.shared_value_pairs(features, "account", 1) == []
    profiles, truth = _files(tmp_path)
    assert module.main(["--profiles", str(profiles), "--truth", str(truth)]) == 0
    out = capsys.readouterr().out
    assert "7 profiles, 3 pairs sharing a value of 'account'" in out
    assert "| first names unrelated            |       2 |  66.7% |          1 |" in out
