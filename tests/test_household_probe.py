"""Tests for benchmarks/household_probe.py: its table of crafted profiles and how it reads the job's output
(no job is run here)."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from benchmarks.household_probe import (CASES, case_statuses, invalid_phones, probe_profiles, read_jsonl, read_truth,
                                        report, summary_line, write_probe)


def _pid(n: int) -> str:
    return f"{n:032x}"


def test_the_table_is_well_formed():
    rows = probe_profiles()
    ids = [profile["ProfileId"] for _, _, profile in rows]
    assert len(rows) == 95 and len(CASES) == 45
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-f0-9]{32}", pid) for pid in ids)
    per_case = Counter(case for case, _, _ in rows)
    assert len(per_case) == len(CASES)                  # no case name is used twice
    assert min(per_case.values()) >= 2
    assert invalid_phones(rows) == []
    one_person = {case for case, people in CASES if len({entity for entity, _ in people}) == 1}
    assert len(one_person) == 13 and "R5_kanji_romaji_same" in one_person


def test_profile_ids_are_those_of_the_original_probe_and_do_not_change():
    rows = probe_profiles()
    assert rows[0][2]["ProfileId"] == "2e2bbac69270f7ae8ad768de770ff483"     # A1_wangwei_building, w1
    assert rows[1][2]["ProfileId"] == "faa373fea4c34c6a4f6cc00e7dabe93c"     # A1_wangwei_building, w2
    assert [p["ProfileId"] for _, _, p in rows] == [p["ProfileId"] for _, _, p in probe_profiles()]


def test_a_field_set_to_none_is_left_out_and_defaults_are_kept_otherwise():
    profiles = {(case, entity): profile for case, entity, profile in probe_profiles()}
    business = profiles[("F2_business_party_vs_owner", "biz")]
    assert "ProfileType" not in business and business["PartyType"] == "BUSINESS"
    assert profiles[("F2_business_party_vs_owner", "owner")]["ProfileType"] == "PROFILE"
    assert profiles[("F1_account_vs_owner", "biz")]["ProfileType"] == "ACCOUNT_PROFILE"


def test_the_phone_check_finds_a_number_that_is_not_valid():
    rows = [("X_case", "x", {"ProfileId": _pid(1), "MobilePhoneNumber": "+1 123 456 7890"}),
            ("Y_case", "y", {"ProfileId": _pid(2), "HomePhoneNumber": "0161 496 0732",
                             "Address": {"Country": "United Kingdom"}}),
            ("Z_case", "z", {"ProfileId": _pid(3), "PhoneNumber": "not a number"})]
    assert invalid_phones(rows) == [("X_case", "MobilePhoneNumber", "+1 123 456 7890"),
                                    ("Z_case", "PhoneNumber", "not a number")]


# A hand-made outcome. Profiles 1-14 are crafted; 90 and 91 are generated ones (not in the truth).
TRUTH = [
    (_pid(1), "T_twins", "t1"), (_pid(2), "T_twins", "t2"),         # merged together: a false merge
    (_pid(3), "T_same", "k"), (_pid(4), "T_same", "k"),             # merged together: ok
    (_pid(5), "T_apart", "s"), (_pid(6), "T_apart", "s"),           # left apart: a miss
    (_pid(7), "T_stranger", "o"), (_pid(8), "T_stranger", "o"),     # merged, but with a generated profile
    (_pid(9), "T_siblings", "a"), (_pid(10), "T_siblings", "b"),    # left apart: ok
    (_pid(11), "T_both", "m"), (_pid(12), "T_both", "m"), (_pid(13), "T_both", "n"),  # m#0 with n, m#1 alone
    (_pid(14), "T_lone_stranger", "p"), (_pid(15), "T_lone_stranger", "q"),  # p with a generated profile
]
PLAN = [
    {"MainProfileId": _pid(1), "ProfileIdsToBeMerged": [_pid(2)]},
    {"MainProfileId": _pid(4), "ProfileIdsToBeMerged": [_pid(3)]},
    {"MainProfileId": _pid(90), "ProfileIdsToBeMerged": [_pid(7), _pid(8)]},
    {"MainProfileId": _pid(13), "ProfileIdsToBeMerged": [_pid(11)]},
    {"MainProfileId": _pid(14), "ProfileIdsToBeMerged": [_pid(91)]},
    {"MainProfileId": _pid(92), "ProfileIdsToBeMerged": [_pid(93)]},       # two generated profiles
]
REVIEW = [
    {"kind": "pair", "a": _pid(10), "b": _pid(9), "probability": 0.99,
     "reasons": ["guard: different first names", "guard: nothing but names"]},
    {"kind": "pair", "a": _pid(5), "b": _pid(94), "probability": 0.9, "reasons": ["probability 0.9 is below"]},
    {"kind": "pair", "a": _pid(6), "b": _pid(3), "probability": 0.7, "reasons": []},
    {"kind": "split_off", "profile": _pid(12), "best_probability": 0.98, "reason": "conflicts with a member"},
    {"kind": "held_cluster", "members": [_pid(95), _pid(15)], "size": 2, "reason": "too large"},
    {"kind": "pair", "a": _pid(96), "b": _pid(97), "probability": 0.5, "reasons": ["not ours"]},
]


@pytest.fixture()
def statuses():
    return {s.case: s for s in case_statuses(PLAN, REVIEW, TRUTH)}


def test_statuses_tell_a_false_merge_a_miss_and_ok(statuses):
    assert list(statuses) == ["T_twins", "T_same", "T_apart", "T_stranger", "T_siblings", "T_both",
                              "T_lone_stranger"]
    assert {case: s.status for case, s in statuses.items()} == {
        "T_twins": "FALSE MERGE", "T_same": "ok", "T_apart": "MISS", "T_stranger": "FALSE MERGE",
        "T_siblings": "ok", "T_both": "FALSE MERGE, MISS", "T_lone_stranger": "FALSE MERGE"}
    assert {case: s.one_person for case, s in statuses.items()} == {
        "T_twins": False, "T_same": True, "T_apart": True, "T_stranger": True, "T_siblings": False,
        "T_both": False, "T_lone_stranger": False}


def test_groups_list_the_cases_profiles_and_count_outsiders(statuses):
    assert statuses["T_twins"].groups == [["t1#0", "t2#1"]]
    assert statuses["T_same"].groups == [["k#0", "k#1"]]        # in the case's order, not the request's
    assert statuses["T_apart"].groups == []
    assert statuses["T_stranger"].groups == [["o#0", "o#1", "+1 outside"]]
    assert statuses["T_both"].groups == [["m#0", "n#2"]]
    assert statuses["T_lone_stranger"].groups == [["p#0", "+1 outside"]]
    assert {case: s.outside for case, s in statuses.items() if s.outside} == {"T_stranger": 2, "T_lone_stranger": 1}


def test_reviews_are_shown_for_every_case_they_name(statuses):
    assert statuses["T_siblings"].reviews == ["pair b#1 ~ a#0: p=0.99 guard: different first names; "
                                              "guard: nothing but names"]
    assert statuses["T_apart"].reviews == ["pair s#0 ~ outside: p=0.9 probability 0.9 is below",
                                           "pair s#1 ~ T_same/k#0: p=0.7"]
    assert statuses["T_same"].reviews == ["pair T_apart/s#1 ~ k#0: p=0.7"]
    assert statuses["T_both"].reviews == ["split off m#1 (best p=0.98): conflicts with a member"]
    assert statuses["T_lone_stranger"].reviews == ["held group of 2 with q#1: too large"]
    assert statuses["T_twins"].reviews == []


def test_summary_counts_groups_of_different_people_merged_and_of_one_person_apart(statuses):
    line = summary_line(list(statuses.values()))
    assert line == "groups of different people merged: 3 of 4; groups of one person left apart: 1 of 3"
    lines = report(list(statuses.values()))
    assert lines[-1] == line
    assert lines[-2] == "groups merged with a profile from outside the group: 2 (T_stranger, T_lone_stranger)"
    assert "    review: split off m#1 (best p=0.98): conflicts with a member" in lines
    assert not any("different first names" in text for text in lines)   # T_siblings is ok: no reviews shown


def test_nothing_merged_is_ok_for_different_people_and_a_miss_for_one_person():
    truth = [(_pid(1), "T_pair", "a"), (_pid(2), "T_pair", "b"), (_pid(3), "T_one", "c"), (_pid(4), "T_one", "c")]
    assert [(s.case, s.status) for s in case_statuses([], [], truth)] == [("T_pair", "ok"), ("T_one", "MISS")]


def test_the_probe_input_is_the_background_then_the_crafted_profiles(tmp_path):
    rows = probe_profiles()
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    probe, truth = write_probe(tmp_path / "a", rows, 20, "5")
    profiles = [json.loads(line) for line in probe.read_text(encoding="utf-8").splitlines()]
    assert len(profiles) == 20 + len(rows)
    assert profiles[20:] == [profile for _, _, profile in rows]
    assert not {p["ProfileId"] for p in profiles[:20]} & {p["ProfileId"] for _, _, p in rows}
    assert read_truth(truth) == [(profile["ProfileId"], case, entity) for case, entity, profile in rows]
    assert write_probe(tmp_path / "b", rows, 20, "5")[0].read_bytes() == probe.read_bytes()   # the same seed
    assert write_probe(tmp_path / "c", rows, 20, "6")[0].read_bytes() != probe.read_bytes()


def test_read_jsonl_reads_shards_and_refuses_a_missing_file(tmp_path):
    (tmp_path / "review.jsonl-00000-of-00002").write_text('{"kind": "pair"}\n\n')
    (tmp_path / "review.jsonl-00001-of-00002").write_text('{"kind": "split_off"}\n')
    assert read_jsonl(tmp_path / "review.jsonl") == [{"kind": "pair"}, {"kind": "split_off"}]
    with pytest.raises(FileNotFoundError):
        read_jsonl(tmp_path / "merge_plan.jsonl")
