"""Tests for pipeline/datasets.py (public labelled data -> Profile JSONL + truth)."""
from __future__ import annotations

import csv
import hashlib
import math
from collections import Counter
from pathlib import Path

import orjson
import pytest

from pipeline import datasets

FAKE1000 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "splink_fake_1000.csv"


def needs_fake(test):
    """The labelled file lives in ../shared beside the checkout (CI has it too): fail clearly without it."""
    def wrapper(*args, **kwargs):
        assert FAKE1000.exists(), f"labelled data missing: {FAKE1000} (shared/ must sit beside the checkout)"
        return test(*args, **kwargs)
    wrapper.__name__ = test.__name__
    wrapper.__doc__ = test.__doc__
    import inspect
    wrapper.__signature__ = inspect.signature(test)
    return wrapper


def test_profile_id_is_md5_of_dataset_and_source_id():
    pid = datasets.profile_id("fake1000", 17)
    assert pid == hashlib.md5(b"fake1000:17").hexdigest()
    assert len(pid) == 32 and pid == pid.lower()
    assert datasets.profile_id("febrl3", "rec-1-org") != datasets.profile_id("febrl4", "rec-1-org")


@needs_fake
def test_fake1000_counts_and_mapping(tmp_path):
    counts = datasets.write(datasets.convert_fake1000(str(FAKE1000)), str(tmp_path))
    assert counts == {"profiles": 1000, "clusters": 251}
    profiles = [orjson.loads(x) for x in (tmp_path / "profiles.jsonl").read_bytes().splitlines()]
    with open(tmp_path / "truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(profiles) == len(rows) == 1000
    assert [p["ProfileId"] for p in profiles] == [r["profile_id"] for r in rows]

    with open(FAKE1000, newline="") as f:
        src = list(csv.DictReader(f))
    by_id = {p["ProfileId"]: p for p in profiles}
    for row, truth in zip(src, rows):
        p = by_id[datasets.profile_id("fake1000", row["unique_id"])]
        assert truth["cluster_id"] == row["cluster"]
        assert p.get("FirstName", "") == row["first_name"]
        assert p.get("LastName", "") == row["surname"]
        assert p.get("BirthDate", "") == row["dob"]
        assert p.get("EmailAddress", "") == row["email"]
        assert p.get("Address", {}).get("City", "") == row["city"]
        # empty source values are left out, never written as ""
        assert "" not in p.values()
        assert ("Address" in p) == bool(row["city"])


def test_febrl3_counts_and_mapping(tmp_path):
    counts = datasets.write(datasets.convert_febrl("febrl3"), str(tmp_path))
    assert counts == {"profiles": 5000, "clusters": 2000}
    profiles = {}
    for line in (tmp_path / "profiles.jsonl").read_bytes().splitlines():
        p = orjson.loads(line)
        profiles[p["ProfileId"]] = p
    with open(tmp_path / "truth.csv", newline="") as f:
        truth = {r["profile_id"]: r["cluster_id"] for r in csv.DictReader(f)}
    assert set(truth) == set(profiles)
    assert Counter(Counter(truth.values()).values())[1] < 2000   # most entities have duplicates

    p = profiles[datasets.profile_id("febrl3", "rec-1496-org")]
    assert truth[p["ProfileId"]] == "1496"
    assert p["FirstName"] == "mitchell" and p["LastName"] == "green"
    assert p["BirthDate"] == "19560409"
    assert p["Address"] == {"Address1": "7 wallaby place", "Address2": "delmar",
                            "City": "cleveland", "PostalCode": "2119", "State": "sa",
                            "Country": "AU"}
    assert p["AccountNumber"] == "1804974" and "Attributes" not in p
    # every duplicate record lands in its original's cluster
    assert truth[datasets.profile_id("febrl3", "rec-552-dup-3")] == "552"
    # missing values (NaN in the source frame) are omitted
    assert sum(1 for q in profiles.values() if "FirstName" not in q) > 0
    for q in profiles.values():
        for v in q.values():
            assert not (isinstance(v, float) and math.isnan(v))
        assert all(isinstance(v, str) and v for v in q["Address"].values())


def test_febrl_profile_street_parts():
    nan = float("nan")
    row = {"given_name": nan, "surname": "li", "street_number": nan, "address_1": "main road",
           "address_2": nan, "suburb": "x", "postcode": "2000", "state": nan,
           "date_of_birth": nan, "soc_sec_id": "1"}
    p = datasets.febrl_profile("febrl3", "rec-9-dup-0", row)
    assert "FirstName" not in p and "BirthDate" not in p
    assert p["Address"] == {"Address1": "main road", "City": "x", "PostalCode": "2000",
                            "Country": "AU"}


@pytest.mark.parametrize("rec,entity", [("rec-0-org", "0"), ("rec-552-dup-3", "552"),
                                        ("rec-10-dup-0", "10")])
def test_febrl_entity(rec, entity):
    assert datasets.febrl_entity(rec) == entity


def test_febrl_entity_rejects_other_ids():
    with pytest.raises(ValueError):
        datasets.febrl_entity("rec-x-org")


@needs_fake
def test_cli_writes_both_files(tmp_path):
    out = tmp_path / "fake"
    assert datasets.main(["fake1000", "--input", str(FAKE1000), "--output", str(out)]) == 0
    assert (out / "profiles.jsonl").read_bytes().count(b"\n") == 1000
    assert (out / "truth.csv").read_text().splitlines()[0] == "profile_id,cluster_id"


def test_write_rejects_duplicate_ids(tmp_path):
    recs = [({"ProfileId": "a" * 32}, "1"), ({"ProfileId": "a" * 32}, "2")]
    with pytest.raises(ValueError):
        datasets.write(recs, str(tmp_path))
