"""Tests for transforms/validate.py: MergeProfiles requests are checked before anything is sent."""
from __future__ import annotations

import pytest

from tests.helpers import pid
from transforms.validate import validate_merge_request

MAIN = pid(1)


def request(**changes):
    base = {"DomainName": "my-domain_1", "MainProfileId": MAIN, "ProfileIdsToBeMerged": [pid(2), pid(3)],
            "FieldSourceProfileIds": {"FirstName": pid(2), "ProfileType": pid(3), "EngagementPreferences": pid(2),
                                      "Attributes": {"tier": pid(3)}}}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def one_problem(problems, *words):
    assert len(problems) == 1, problems
    for word in words:
        assert word in problems[0], problems
    return problems[0]


def test_valid_request_has_no_problems():
    assert validate_merge_request(request()) == []
    assert validate_merge_request(request(), "my-domain_1") == []
    assert validate_merge_request(request(FieldSourceProfileIds=None, ProfileIdsToBeMerged=[pid(i) for i in range(2, 22)])) == []
    # naming the main as a source is allowed (it is in the request)
    assert validate_merge_request(request(FieldSourceProfileIds={"LastName": MAIN})) == []


def test_21_ids_are_too_many():
    one_problem(validate_merge_request(request(ProfileIdsToBeMerged=[pid(i) for i in range(2, 23)], FieldSourceProfileIds=None)),
                "21 ids", "at most 20")


@pytest.mark.parametrize("bad", [pid(0xABCDEF).upper(), "abc", pid(2)[:31], "01234567-89ab-cdef-0123-456789abcdef", pid(2) + "\n"])
def test_bad_ids_to_merge(bad):
    one_problem(validate_merge_request(request(ProfileIdsToBeMerged=[pid(3), bad], FieldSourceProfileIds=None)),
                "ProfileIdsToBeMerged", "[a-f0-9]{32}")


@pytest.mark.parametrize("bad", [pid(0xABCDEF).upper(), "main", MAIN + "\n", " " + MAIN])
def test_bad_main_id(bad):
    problems = validate_merge_request(request(MainProfileId=bad, FieldSourceProfileIds=None))
    one_problem(problems, "MainProfileId", "[a-f0-9]{32}")


def test_main_in_the_list():
    one_problem(validate_merge_request(request(ProfileIdsToBeMerged=[pid(2), MAIN], FieldSourceProfileIds=None)),
                "MainProfileId is also in")


def test_duplicate_ids():
    one_problem(validate_merge_request(request(ProfileIdsToBeMerged=[pid(2), pid(3), pid(2)])), "repeats an id")


def test_another_domain():
    one_problem(validate_merge_request(request(), "other-domain"), "not the domain of this run")


@pytest.mark.parametrize("domain", ["bad domain", "a" * 65, "dom.ain", "", "dom\n", "dömain"])
def test_domain_name_pattern(domain):
    problems = validate_merge_request(request(DomainName=domain))
    assert any("DomainName" in p for p in problems), problems


def test_field_source_not_in_the_request():
    stranger = pid(99)
    one_problem(validate_merge_request(request(FieldSourceProfileIds={"FirstName": stranger})),
                "not in this request", stranger)
    one_problem(validate_merge_request(request(FieldSourceProfileIds={"Attributes": {"tier": stranger}})),
                "not in this request", stranger)


@pytest.mark.parametrize("changes,words", [
    ({"ProfileIdsToBeMerged": "x", "FieldSourceProfileIds": None}, ("ProfileIdsToBeMerged", "type")),
    ({"ProfileIdsToBeMerged": [5], "FieldSourceProfileIds": None}, ("ProfileIdsToBeMerged[0]", "type")),
    ({"ProfileIdsToBeMerged": [], "FieldSourceProfileIds": None}, ("ProfileIdsToBeMerged", "length")),
    ({"MainProfileId": 5, "FieldSourceProfileIds": None}, ("MainProfileId", "type")),
    ({"DomainName": 5}, ("DomainName", "type")),
    ({"FieldSourceProfileIds": {"FirstName": 5}}, ("FirstName", "type")),
    ({"FieldSourceProfileIds": {"Attributes": "x"}}, ("Attributes", "type")),
    ({"FieldSourceProfileIds": {"Bogus": pid(2)}}, ("Bogus",)),
    ({"FieldSourceProfileIds": "x"}, ("FieldSourceProfileIds", "type")),
    ({"Extra": 1}, ("Unknown parameter", "Extra")),
])
def test_botocore_shape_errors(changes, words):
    problems = validate_merge_request(request(**changes))
    assert problems, f"no problem found in {changes}"
    assert any(all(word in p for word in words) for p in problems), problems


def test_missing_members():
    problems = validate_merge_request({"MainProfileId": MAIN})
    assert any("DomainName" in p for p in problems), problems
    assert any("ProfileIdsToBeMerged" in p for p in problems), problems


def test_not_an_object():
    assert validate_merge_request([]) == ["a request must be a JSON object"]
    assert validate_merge_request(None) == ["a request must be a JSON object"]


def test_several_problems_are_all_reported():
    problems = validate_merge_request({"DomainName": "bad domain", "MainProfileId": MAIN,
                                       "ProfileIdsToBeMerged": [MAIN, "X", "X"] + [pid(i) for i in range(2, 21)]},
                                      "other")
    text = " | ".join(problems)
    for words in ("does not match [a-zA-Z0-9_-]", "not the domain of this run", "22 ids", "do not match [a-f0-9]{32}",
                  "repeats an id", "MainProfileId is also in"):
        assert words in text, text
