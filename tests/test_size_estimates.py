"""Tests for benchmarks/size_estimates.py (what size estimates of the job's batches cost, by coder)."""
from __future__ import annotations

from tests.helpers import load_benchmark


def _load():
    return load_benchmark("size_estimates")


def test_beam_estimates_the_first_ten_elements_then_about_ten_in_every_n():
    module = _load()
    assert [module.estimates_made(n) for n in (1, 10)] == [1, 10]
    assert module.estimates_made(500) == 49          # 10 + 10 ln 50
    assert module.estimates_made(5000) == 72


def test_the_batches_are_the_kinds_the_job_makes():
    module = _load()
    made = module.batches(30, seed=1)
    assert set(made) == {"profiles", "features", "pairs"}
    assert len(made["profiles"]) == 30 and len(made["pairs"]) == 29
    assert all("keys" in features for features in made["features"])   # with blocking keys, as they travel
    left, right, rules = made["pairs"][0]
    assert left is made["features"][0] and right is made["features"][1] and rules == ("name",)


def test_it_prints_a_row_per_kind_of_batch_and_per_collection_size(capsys):
    module = _load()
    assert module.main(["--batch", "20", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split("|")[1].strip() for line in lines if line.startswith("| ") and "---" not in line]
    assert rows == ["batch of 20", "profiles", "features", "pairs", "batches in a collection", "50", "500", "5,000"]
