"""Tests for transforms/choose.py: the main profile, the winner of every merge field, the requests."""
from __future__ import annotations

import itertools

import pytest

from tests.helpers import pid
from transforms.choose import (
    MAX_IDS_PER_REQUEST,
    Policy,
    choose_fields,
    choose_main,
    completeness,
    is_empty,
    merge_fields,
    plan_requests,
)
from transforms.validate import validate_merge_request

RECENT = Policy("most_recent", recency_attribute="Attributes.last_updated")
COMPLETE = Policy("most_complete")
SOURCE = Policy("source_priority", recency_attribute="Attributes.last_updated", source_attribute="Attributes.source",
                source_priority=("crm", "web", "app"))

ALL_FIELDS = (
    "AccountNumber", "AdditionalInformation", "PartyType", "BusinessName", "FirstName", "MiddleName", "LastName",
    "BirthDate", "Gender", "PhoneNumber", "MobilePhoneNumber", "HomePhoneNumber", "BusinessPhoneNumber",
    "EmailAddress", "PersonalEmailAddress", "BusinessEmailAddress", "Address", "ShippingAddress", "MailingAddress",
    "BillingAddress", "Attributes", "ProfileType", "EngagementPreferences",
)


def address(n):
    return {"Address1": f"{n} Main St", "City": "Springfield", "PostalCode": f"6270{n}", "Country": "US"}


def good_value(field, n=1):
    """A valid value of each merge field (n varies it)."""
    values = {
        "AccountNumber": f"ACC-{n}", "AdditionalInformation": f"note {n}", "PartyType": "INDIVIDUAL",
        "BusinessName": f"Acme {n}", "FirstName": "John", "MiddleName": "Quincy", "LastName": "Smith",
        "BirthDate": f"1980-04-{10 + n}", "Gender": "MALE",
        "PhoneNumber": f"+1 415 555 26{10 + n}", "MobilePhoneNumber": f"+1 415 555 27{10 + n}",
        "HomePhoneNumber": f"+1 415 555 28{10 + n}", "BusinessPhoneNumber": f"+1 415 555 29{10 + n}",
        "EmailAddress": f"john{n}@example.com", "PersonalEmailAddress": f"john.p{n}@example.com",
        "BusinessEmailAddress": f"john.b{n}@example.com",
        "Address": address(n), "ShippingAddress": address(n), "MailingAddress": address(n), "BillingAddress": address(n),
        "Attributes": {"loyalty": f"gold-{n}"}, "ProfileType": "PROFILE",
        "EngagementPreferences": {"Email": [{"KeyName": "_email", "KeyValue": f"john{n}@example.com",
                                             "ContactType": "EmailAddress"}]},
    }
    return values[field]


def test_merge_fields_are_the_23_of_field_source_profile_ids():
    assert set(merge_fields()) == set(ALL_FIELDS)
    assert len(merge_fields()) == 23


# ----------------------------------------------------------------- choose_main


def test_most_complete():
    a = {"ProfileId": pid(1), "FirstName": "A"}
    b = {"ProfileId": pid(2), "FirstName": "B", "LastName": "X", "Address": {"City": "C", "PostalCode": "P"}}
    c = {"ProfileId": pid(3), "FirstName": "C", "LastName": "X", "EmailAddress": "  "}  # blank does not count
    main, reason = choose_main([a, b, c], COMPLETE)
    assert main is b
    assert reason == "most complete (4 fields filled)"


def test_most_complete_tie_breaks_by_recency_then_profile_id():
    policy = Policy("most_complete", recency_attribute="Attributes.last_updated")
    old = {"ProfileId": pid(1), "FirstName": "A", "Attributes": {"last_updated": "2020-01-01T00:00:00Z"}}
    new = {"ProfileId": pid(2), "FirstName": "B", "Attributes": {"last_updated": "2024-01-01T00:00:00Z"}}
    assert choose_main([old, new], policy)[0] is new
    x, y = {"ProfileId": pid(5), "FirstName": "A"}, {"ProfileId": pid(4), "FirstName": "B"}
    assert choose_main([x, y], COMPLETE)[0] is y       # smallest ProfileId


def test_most_recent():
    profiles = [
        {"ProfileId": pid(1), "FirstName": "A", "LastName": "B", "Attributes": {"last_updated": "2023-09-10T01:07:59Z"}},
        {"ProfileId": pid(2), "Attributes": {"last_updated": "2024-02-01T00:00:00+05:00"}},
        {"ProfileId": pid(3), "FirstName": "A", "LastName": "B", "MiddleName": "C"},  # no timestamp: last
        {"ProfileId": pid(4), "Attributes": {"last_updated": "2024-01-31"}},
    ]
    main, reason = choose_main(profiles, RECENT)
    assert main["ProfileId"] == pid(2)
    assert reason == "most recent Attributes.last_updated (2024-02-01T00:00:00+05:00)"
    # epoch seconds are understood too
    epoch = {"ProfileId": pid(9), "Attributes": {"last_updated": "1893456000"}}   # 2030-01-01
    assert choose_main(profiles + [epoch], RECENT)[0] is epoch


def test_most_recent_tie_breaks_by_completeness_then_id():
    same = "2024-01-01T00:00:00Z"
    a = {"ProfileId": pid(1), "Attributes": {"last_updated": same}}
    b = {"ProfileId": pid(2), "FirstName": "B", "Attributes": {"last_updated": same}}
    assert choose_main([a, b], RECENT)[0] is b
    c = {"ProfileId": pid(3), "FirstName": "C", "Attributes": {"last_updated": same}}
    assert choose_main([c, b], RECENT)[0] is b


@pytest.mark.parametrize("odd", ["NaN", "nan", "inf", "-Infinity", "1e309"])
def test_most_recent_a_value_that_is_no_time_ranks_as_missing_in_any_order(odd):
    old = {"ProfileId": pid(1), "Attributes": {"last_updated": "2020-01-01"}}
    none = {"ProfileId": pid(2), "FirstName": "A", "LastName": "B", "Attributes": {"last_updated": odd}}
    new = {"ProfileId": pid(3), "Attributes": {"last_updated": "2024-06-01"}}
    for order in itertools.permutations([old, none, new]):
        main, reason = choose_main(list(order), RECENT)
        assert main is new, (odd, [p["ProfileId"] for p in order])
    assert choose_main([old, none], RECENT)[0] is old


def test_most_recent_reads_milliseconds_and_dates_as_the_profile_s_country_writes_them():
    june = {"ProfileId": pid(1), "Attributes": {"last_updated": "2024-06-01T00:00:00Z"}}
    ms = {"ProfileId": pid(2), "Attributes": {"last_updated": "1700000000000"}}   # 2023-11-14, in milliseconds
    assert choose_main([ms, june], RECENT)[0] is june
    march = {"ProfileId": pid(3), "Attributes": {"last_updated": "2024-03-15"}}
    us = {"ProfileId": pid(4), "Address": {"Country": "US"}, "Attributes": {"last_updated": "06/01/2024"}}   # 1 June
    gb = {"ProfileId": pid(5), "Address": {"Country": "GB"}, "Attributes": {"last_updated": "06/01/2024"}}   # 6 January
    assert choose_main([march, us], RECENT)[0] is us
    assert choose_main([march, gb], RECENT)[0] is march


@pytest.mark.parametrize("newer, older", [
    ("2024-06-01 10:00:00 UTC", "2024-06-01T08:00:00Z"),     # a zone written as a word
    ("2024/06/01 18:00", "2024/06/01 09:00"),                # the time of a date as people write it
    ("06/01/2024 10:00", "2023-01-01T00:00:00Z"),            # a US date with a time (the profile is in the US)
    ("06/01/2024 10:00 PM", "06/01/2024 11:00 AM"),
    ("2024-06-01 10:00 -02:00", "2024-06-01 11:00 +00:00"),  # 12:00 UTC against 11:00 UTC
])
def test_most_recent_reads_the_time_after_a_date(newer, older):
    """The time of day decides between two updates of one day; read as a date alone, it was dropped (a
    tie, settled by completeness) or the value was not read at all (ranked last)."""
    a = {"ProfileId": pid(1), "Address": {"Country": "US"}, "Attributes": {"last_updated": newer}}
    b = {"ProfileId": pid(2), "FirstName": "More", "LastName": "Complete", "Gender": "FEMALE",
         "Address": {"Country": "US"}, "Attributes": {"last_updated": older}}
    for order in ([a, b], [b, a]):
        main, reason = choose_main(order, RECENT)
        assert main is a and reason == f"most recent Attributes.last_updated ({newer})"


def test_most_recent_compact_date():
    # "20240101" is a date (1 Jan 2024), not 20,240,101 seconds after 1970
    old = {"ProfileId": pid(1), "Attributes": {"last_updated": "2023-06-01T00:00:00Z"}}
    new = {"ProfileId": pid(2), "Attributes": {"last_updated": "20240101"}}
    assert choose_main([old, new], RECENT)[0] is new


def test_source_priority():
    profiles = [
        {"ProfileId": pid(1), "FirstName": "A", "LastName": "B", "Attributes": {"source": "app"}},
        {"ProfileId": pid(2), "Attributes": {"source": " Web "}},
        {"ProfileId": pid(3), "FirstName": "A", "LastName": "B", "MiddleName": "C", "Attributes": {"source": "other"}},
        {"ProfileId": pid(4)},
    ]
    main, reason = choose_main(profiles, SOURCE)
    assert main["ProfileId"] == pid(2)
    assert "Web" in reason and "--source_priority" in reason
    crm_old = {"ProfileId": pid(7), "Attributes": {"source": "CRM", "last_updated": "2020-01-01"}}
    crm_new = {"ProfileId": pid(8), "Attributes": {"source": "crm", "last_updated": "2021-01-01"}}
    assert choose_main(profiles + [crm_old, crm_new], SOURCE)[0] is crm_new   # same source: more recent
    # neither ranked nor dated: completeness, then id
    assert choose_main([profiles[3], profiles[2]], SOURCE)[0] is profiles[2]


@pytest.mark.parametrize("kwargs", [
    {"name": "newest"}, {"name": "most_recent"}, {"name": "source_priority", "source_attribute": "Attributes.s"},
    {"name": "source_priority", "source_priority": ("crm",)},
])
def test_policy_needs_its_settings(kwargs):
    with pytest.raises(ValueError):
        Policy(**kwargs)


def test_is_empty_and_completeness():
    assert is_empty(None) and is_empty("") and is_empty("  ") and is_empty([]) and is_empty({}) and is_empty({"a": " "})
    assert not is_empty("x") and not is_empty({"a": "x"}) and not is_empty([1]) and not is_empty(0)
    profile = {"ProfileId": pid(1), "FirstName": "A", "LastName": "", "Address": {"City": "C", "PostalCode": "P",
               "Country": ""}, "Attributes": {"a": "1", "b": "2"}, "FoundByItems": [{"x": 1}]}
    assert completeness(profile) == 5


# --------------------------------------------------------------- choose_fields


def plan(profiles, main, policy=COMPLETE):
    choices = choose_fields(profiles, main, policy)
    [request] = plan_requests("d", main["ProfileId"], [p["ProfileId"] for p in profiles], choices)
    return choices, request.get("FieldSourceProfileIds", {})


@pytest.mark.parametrize("field", [f for f in ALL_FIELDS if f not in ("Attributes", "EngagementPreferences")])
def test_each_field_taken_from_the_member_that_has_it(field):
    main = {"ProfileId": pid(1), "FirstName": "Jo"} if field != "FirstName" else {"ProfileId": pid(1), "LastName": "X"}
    other = {"ProfileId": pid(2), field: good_value(field)}
    choices, sources = plan([main, other], main)
    assert choices[field]["source"] == pid(2)
    assert choices[field]["reason"].startswith(f"main profile has no {field}")
    assert sources[field] == pid(2)


@pytest.mark.parametrize("field", [f for f in ALL_FIELDS if f not in ("Attributes", "EngagementPreferences")])
def test_each_field_kept_from_the_main_when_it_has_a_good_value(field):
    main = {"ProfileId": pid(1), field: good_value(field, 1)}
    other = {"ProfileId": pid(2), field: good_value(field, 2), "Attributes": {"last_updated": "2099-01-01"}}
    choices, sources = plan([main, other], main, RECENT)
    assert choices[field]["source"] == pid(1)
    assert choices[field]["reason"].startswith("main profile's value kept")
    assert field not in sources


def test_every_merge_field_has_a_choice():
    main = {"ProfileId": pid(1)}
    choices = choose_fields([main, {"ProfileId": pid(2)}], main, COMPLETE)
    assert set(choices) == set(ALL_FIELDS)
    assert choices["FirstName"] == {"source": None, "reason": "blank or missing in every profile"}
    assert choices["Attributes"] == {}
    assert choices["EngagementPreferences"]["source"] is None
    assert plan_requests("d", pid(1), [pid(1), pid(2)], choices) == [
        {"DomainName": "d", "MainProfileId": pid(1), "ProfileIdsToBeMerged": [pid(2)]}]


def test_profile_type_by_name():
    main = {"ProfileId": pid(1), "FirstName": "A", "LastName": "B"}
    other = {"ProfileId": pid(2), "ProfileType": "PROFILE"}
    choices, sources = plan([main, other], main)
    assert choices["ProfileType"]["source"] == pid(2)
    assert sources["ProfileType"] == pid(2)
    main_typed = dict(main, ProfileType="PROFILE")
    choices, sources = plan([main_typed, other], main_typed)
    assert choices["ProfileType"]["source"] == pid(1) and "ProfileType" not in sources


@pytest.mark.parametrize("field,bad,good", [
    ("PhoneNumber", "call me maybe", "+1 415 555 2671"),
    ("MobilePhoneNumber", "12345", "(415) 555-2671"),
    ("HomePhoneNumber", "0000", "415.555.2671"),
    ("BusinessPhoneNumber", "ext 5", "+44 20 7946 0958"),
    ("EmailAddress", "john at example", "john@example.com"),
    ("PersonalEmailAddress", "@", "j@example.org"),
    ("BusinessEmailAddress", "n/a", "jb@corp.example"),
    ("BirthDate", "31/02/1980", "1980-02-28"),
    ("FirstName", "Unknown", "John"),
    ("LastName", "N/A", "Smith"),
    ("MiddleName", "xxx", "Quincy"),
    ("Address", {"Country": "US"}, {"Address1": "1 Main St", "City": "X"}),
    ("BillingAddress", {"County": "Kent"}, {"PostalCode": "CT1 1AA"}),
])
def test_valid_value_beats_the_mains_invalid_one(field, bad, good):
    main = {"ProfileId": pid(1), field: bad}
    other = {"ProfileId": pid(2), field: good}
    choices, sources = plan([main, other], main)
    assert choices[field]["source"] == pid(2)
    assert choices[field]["reason"].startswith("main profile's value is invalid")
    assert sources[field] == pid(2)
    # the other way round: the main's valid value stays, the invalid one is not named
    choices, sources = plan([dict(main, **{field: good}), dict(other, **{field: bad})], dict(main, **{field: good}))
    assert choices[field]["source"] == pid(1) and field not in sources


def test_non_empty_beats_empty_and_among_members_the_policy_ranks():
    main = {"ProfileId": pid(1), "FirstName": "   ", "Attributes": {"last_updated": "2024-06-01"}}
    older = {"ProfileId": pid(2), "FirstName": "Johnny", "Attributes": {"last_updated": "2020-01-01"}}
    newer = {"ProfileId": pid(3), "FirstName": "John", "Attributes": {"last_updated": "2023-01-01"}}
    invalid = {"ProfileId": pid(4), "FirstName": "Unknown", "Attributes": {"last_updated": "2024-05-01"}}
    choices, sources = plan([main, older, newer, invalid], main, RECENT)
    assert choices["FirstName"]["source"] == pid(3)   # valid, then the most recent
    assert sources["FirstName"] == pid(3)


def test_attributes_per_key():
    main = {"ProfileId": pid(1), "Attributes": {"tier": "gold", "blank": " "}}
    a = {"ProfileId": pid(2), "Attributes": {"tier": "silver", "crm_id": "C-1", "blank": ""}}
    b = {"ProfileId": pid(3), "Attributes": {"newsletter": "yes", "blank": "x"}}
    choices, sources = plan([main, a, b], main)
    attrs = choices["Attributes"]
    assert attrs["tier"]["source"] == pid(1)
    assert attrs["crm_id"]["source"] == pid(2)
    assert attrs["newsletter"]["source"] == pid(3)
    assert attrs["blank"]["source"] == pid(3)
    assert all(attrs[k]["reason"] for k in attrs)
    assert sources["Attributes"] == {"blank": pid(3), "crm_id": pid(2), "newsletter": pid(3)}


@pytest.mark.parametrize("key", ["IPAddress", "WorkEmailAddress", "HomeAddress", "PhoneNumber"])
def test_attribute_keys_named_like_contact_fields_are_plain_strings(key):
    # an attribute key that ends as a merge field does ("...Address") once took the address rule
    # and stopped the job: attribute values are strings, judged present or empty
    main = {"ProfileId": pid(1), "Attributes": {key: "10.0.0.1"}}
    other = {"ProfileId": pid(2), "Attributes": {key: "10.0.0.2", "other": "x"}}
    empty = {"ProfileId": pid(3), "Attributes": {key: ""}}
    choices, sources = plan([main, other, empty], main)
    assert choices["Attributes"][key]["source"] == pid(1)
    assert choices["Attributes"]["other"]["source"] == pid(2)
    assert sources["Attributes"] == {"other": pid(2)}
    choices, sources = plan([empty, other], empty)
    assert choices["Attributes"][key]["source"] == pid(2)   # the main's empty value loses to a present one


def phone_pref(value, contact_type="PhoneNumber"):
    return {"KeyName": "_phone", "KeyValue": value, "ContactType": contact_type}


def email_pref(value, contact_type="EmailAddress"):
    return {"KeyName": "_email", "KeyValue": value, "ContactType": contact_type}


def test_engagement_preferences_pointing_at_surviving_contacts_win():
    # the main's preferences point at an old number that does not survive the merge;
    # the member's point at the main's own phone (written differently) and the email that wins
    main = {"ProfileId": pid(1), "FirstName": "John", "LastName": "Smith", "PhoneNumber": "+1 415 555 2671",
            "EngagementPreferences": {"Phone": [phone_pref("+1 212 555 0299")]}}
    member = {"ProfileId": pid(2), "EmailAddress": "John@Example.com",
              "EngagementPreferences": {"Phone": [phone_pref("(415) 555-2671")],
                                        "Email": [email_pref("john@example.com")]}}
    choices, sources = plan([main, member], main)
    prefs = choices["EngagementPreferences"]
    assert prefs["source"] == pid(2)
    assert prefs["reason"].startswith("2 of 2 preference entries point at contact values the merged profile keeps")
    assert "1 other profile(s) with preferences point at fewer" in prefs["reason"]
    assert sources["EngagementPreferences"] == pid(2)


def test_engagement_preferences_of_the_main_stay_when_they_point_at_surviving_values():
    main = {"ProfileId": pid(1), "PhoneNumber": "+1 415 555 2671",
            "EngagementPreferences": {"Phone": [phone_pref("+14155552671")]}}
    member = {"ProfileId": pid(2), "MobilePhoneNumber": "+1 212 555 0299",
              "EngagementPreferences": {"Phone": [phone_pref("+1 212 555 0299", "PhoneNumber")]}}
    choices, sources = plan([main, member], main)
    assert choices["EngagementPreferences"]["source"] == pid(1)
    assert "EngagementPreferences" not in sources


def test_engagement_preferences_say_when_entries_will_not_reach_the_customer():
    main = {"ProfileId": pid(1), "PhoneNumber": "+1 415 555 2671"}
    member = {"ProfileId": pid(2), "EngagementPreferences": {"Phone": [phone_pref("+1 415 555 2671"),
                                                                       phone_pref("+1 212 555 0299")]}}
    prefs = choose_fields([main, member], main, COMPLETE)["EngagementPreferences"]
    assert prefs["source"] == pid(2)
    assert prefs["reason"].startswith("1 of 2 preference entries")
    assert "will not reach the customer" in prefs["reason"]


def test_engagement_preferences_follow_the_winning_email_of_a_third_profile():
    main = {"ProfileId": pid(1), "FirstName": "John", "EngagementPreferences": {"Email": [email_pref("old@example.com")]}}
    has_email = {"ProfileId": pid(2), "EmailAddress": "new@example.com"}
    prefs_new = {"ProfileId": pid(3), "EngagementPreferences": {"Email": [email_pref("NEW@example.com")]}}
    choices, _ = plan([main, has_email, prefs_new], main)
    assert choices["EmailAddress"]["source"] == pid(2)
    assert choices["EngagementPreferences"]["source"] == pid(3)


# -------------------------------------------------------------- plan_requests


def ids(n, start=1):
    return [pid(i) for i in range(start, start + n)]


def synthetic_choices(main, winners, attribute_winners):
    fields = [f for f in ALL_FIELDS if f != "Attributes"]
    choices = {f: {"source": main, "reason": "main"} for f in fields}
    for field, winner in zip(fields, winners):
        choices[field] = {"source": winner, "reason": "better"}
    choices["Attributes"] = {f"k{i}": {"source": w, "reason": "better"} for i, w in enumerate(attribute_winners)}
    choices["Attributes"]["main_key"] = {"source": main, "reason": "main"}
    choices["Attributes"]["empty_key"] = {"source": None, "reason": "blank or missing in every profile"}
    choices["MiddleName"] = {"source": None, "reason": "blank or missing in every profile"}
    return choices


def check_requests(requests, main, members, choices):
    others = [i for i in members if i != main]
    merged = [i for r in requests for i in r["ProfileIdsToBeMerged"]]
    assert sorted(merged) == sorted(others)            # every id exactly once, the main never
    for request in requests:
        assert request["MainProfileId"] == main
        assert 1 <= len(request["ProfileIdsToBeMerged"]) <= MAX_IDS_PER_REQUEST
        assert validate_merge_request(request, "d") == []
        in_request = set(request["ProfileIdsToBeMerged"])
        sources = request.get("FieldSourceProfileIds", {})
        for field, source in sources.items():
            if field == "Attributes":
                assert all(s in in_request for s in source.values())
            else:
                assert source in in_request and source != main
    # each winner named exactly once, in the request that carries it; the main and empties never
    for field, choice in choices.items():
        entries = [choice] if field != "Attributes" else list(choice.values())
        keys = [None] if field != "Attributes" else list(choice)
        for key, entry in zip(keys, entries):
            named = [r for r in requests
                     if (r.get("FieldSourceProfileIds", {}).get(field) if key is None
                         else r.get("FieldSourceProfileIds", {}).get("Attributes", {}).get(key)) is not None]
            if entry["source"] in (None, main):
                assert named == []
            else:
                assert len(named) == 1 and entry["source"] in named[0]["ProfileIdsToBeMerged"]


def test_cluster_of_two():
    main, other = pid(1), pid(2)
    choices = synthetic_choices(main, [other], [other])
    [request] = plan_requests("d", main, [main, other], choices)
    assert request == {"DomainName": "d", "MainProfileId": main, "ProfileIdsToBeMerged": [other],
                       "FieldSourceProfileIds": {"AccountNumber": other, "Attributes": {"k0": other}}}


def test_cluster_of_21_is_one_request_of_20():
    members = ids(21)
    main = members[7]
    choices = synthetic_choices(main, members[10:15], members[:3])
    requests = plan_requests("d", main, members, choices)
    assert len(requests) == 1 and len(requests[0]["ProfileIdsToBeMerged"]) == 20
    check_requests(requests, main, members, choices)


def test_cluster_of_22_is_two_requests_with_the_same_main():
    members = ids(22)
    main = members[0]
    winners = [members[21], members[20], members[5]]
    choices = synthetic_choices(main, winners, [members[19]])
    requests = plan_requests("d", main, members, choices)
    assert [len(r["ProfileIdsToBeMerged"]) for r in requests] == [20, 1]
    check_requests(requests, main, members, choices)
    # the winners travel in the first request
    assert set(winners + [members[19]]) <= set(requests[0]["ProfileIdsToBeMerged"])
    assert "FieldSourceProfileIds" not in requests[1]


def test_cluster_of_45_many_winners_spread_over_requests():
    members = ids(45, start=100)
    main = members[30]
    winners = [m for m in members if m != main][:22]      # 22 fields, 22 different winners
    attribute_winners = [m for m in members if m != main][18:26]
    choices = synthetic_choices(main, winners, attribute_winners)
    requests = plan_requests("d", main, members, choices)
    assert [len(r["ProfileIdsToBeMerged"]) for r in requests] == [20, 20, 4]
    check_requests(requests, main, members, choices)
    # winners beyond 20 spill into the second request, and each names only its own
    assert "FieldSourceProfileIds" in requests[1]
    assert "FieldSourceProfileIds" not in requests[2]


def test_choose_and_plan_a_real_cluster_of_45():
    main = {"ProfileId": pid(1), "FirstName": "John", "LastName": "Smith", "PhoneNumber": "bad phone",
            "Attributes": {"tier": "gold"}}
    profiles = [main] + [{"ProfileId": pid(i), "FirstName": "John", "LastName": "Smith",
                          "Attributes": {"last_updated": f"2020-01-{i % 28 + 1:02d}", f"key{i}": "v"}}
                         for i in range(2, 46)]
    profiles[44]["PhoneNumber"] = "+1 415 555 2671"     # the only valid phone, in the last profile
    profiles[44]["EngagementPreferences"] = {"Phone": [phone_pref("+1 415 555 2671")]}
    choices = choose_fields(profiles, main, COMPLETE)
    requests = plan_requests("d", pid(1), [p["ProfileId"] for p in profiles], choices)
    assert len(requests) == 3
    check_requests(requests, pid(1), [p["ProfileId"] for p in profiles], choices)
    [carrier] = [r for r in requests if pid(45) in r["ProfileIdsToBeMerged"]]
    assert carrier["FieldSourceProfileIds"]["PhoneNumber"] == pid(45)
    assert carrier["FieldSourceProfileIds"]["EngagementPreferences"] == pid(45)
    assert carrier["FieldSourceProfileIds"]["Attributes"]["key45"] == pid(45)
    assert all("PhoneNumber" not in r.get("FieldSourceProfileIds", {}) for r in requests if r is not carrier)


def test_choices_from_the_features_validity_equal_choices_from_parsing_again():
    from transforms.normalize import profile_features
    profiles = [
        {"ProfileId": pid(1), "PhoneNumber": "not a phone", "EmailAddress": "a@b.example", "BirthDate": "31/02/1990",
         "Address": {"Country": "GB"}},
        {"ProfileId": pid(2), "PhoneNumber": "020 7946 0958", "EmailAddress": "no at sign", "BirthDate": "1990-02-03",
         "Address": {"Country": "GB"}, "MobilePhoneNumber": "  "},
        {"ProfileId": pid(3), "HomePhoneNumber": "+44 20 7946 0000", "BusinessEmailAddress": "x@y.example",
         "BirthDate": "not a date"},
    ]
    invalid = {p["ProfileId"]: frozenset(profile_features(p, "US")["invalid"]) for p in profiles}
    assert invalid[pid(1)] >= {"PhoneNumber", "BirthDate"} and "EmailAddress" in invalid[pid(2)]
    for main in profiles:
        for policy in (COMPLETE, RECENT):
            assert choose_fields(profiles, main, policy, invalid) == choose_fields(profiles, main, policy)


def test_main_reason_says_what_decided_when_the_policy_s_own_criterion_ties_or_is_missing():
    plain = {"ProfileId": pid(1), "Attributes": {"last_updated": "2024-01-01"}}
    fuller = {"ProfileId": pid(2), "FirstName": "A", "Attributes": {"last_updated": "2024-01-01"}}
    assert choose_main([plain, fuller], RECENT)[1] == "Attributes.last_updated ties; most complete (2 fields filled)"
    bare = [{"ProfileId": pid(3)}, {"ProfileId": pid(4), "FirstName": "A"}]
    assert choose_main(bare, RECENT)[1] == "no readable Attributes.last_updated; most complete (1 fields filled)"
    twins = [{"ProfileId": pid(6), "FirstName": "A"}, {"ProfileId": pid(5), "FirstName": "A"}]
    main, reason = choose_main(twins, RECENT)
    assert main["ProfileId"] == pid(5) and reason.endswith("the first ProfileId of profiles alike in every other way")
    by_source = Policy("source_priority", source_attribute="Attributes.source", source_priority=("crm", "web"))
    legacy = [{"ProfileId": pid(7), "Attributes": {"source": "legacy"}},
              {"ProfileId": pid(8), "FirstName": "A", "Attributes": {"source": "legacy"}}]
    assert choose_main(legacy, by_source)[1] == "no Attributes.source in --source_priority; most complete (2 fields filled)"
    crm = {"ProfileId": pid(9), "Attributes": {"source": "crm"}}
    assert choose_main(legacy + [crm], by_source) == (crm, "source crm ranks first in --source_priority")
