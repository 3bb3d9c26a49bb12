"""Tests for transforms/block.py: blocking keys, owned pairs, hard conflicts, BlockPairs."""
from __future__ import annotations

import itertools
import random
import json

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import collect_to, pid
from transforms.block import (
    KEY_SEPARATOR,
    BlockPairs,
    BlockSizes,
    block_keys,
    block_limit,
    hard_conflicts,
    is_windowed,
    keys_of,
    owned_pairs,
    pairing_keys,
    pairing_keys_of_many,
    rule_of,
    shared_key_filter,
    with_block_keys,
)
from transforms.buckets import key_hash

S = KEY_SEPARATOR
RULES = [
    {"name": "phone", "fields": ["phones"]},
    {"name": "email", "fields": ["emails"]},
    {"name": "dob+last", "fields": ["dob", "last_phonetic"]},
    {"name": "postcode+last", "fields": ["postcodes", "last_phonetic"]},
]


def feat(n, **values):
    base = {"id": pid(n), "phones": (), "emails": (), "dob": "", "last_phonetic": "", "postcodes": (),
            "type": "", "identifiers": ()}
    base.update(values)
    return base


def keyed(features, rules=RULES):
    keys = block_keys(features, rules)
    return dict(features, keys=keys)


# ------------------------------------------------------------------- block_keys


def test_single_valued_rule():
    rules = [{"name": "dob", "fields": ["dob"]}]
    assert block_keys({"dob": "1980-04-23"}, rules) == (f"0{S}1980-04-23",)


def test_multi_valued_rule_gives_one_key_per_value():
    f = feat(1, phones=("+14155552671", "+442079460958"))
    assert block_keys(f, RULES) == (f"0{S}+14155552671", f"0{S}+442079460958")


def test_multi_field_rule_and_product_of_values():
    f = feat(1, dob="1980-04-23", last_phonetic="SM0", postcodes=("SW1A1AA", "EC1A1BB"))
    assert block_keys(f, RULES) == (
        f"2{S}1980-04-23{S}SM0",
        f"3{S}EC1A1BB{S}SM0",
        f"3{S}SW1A1AA{S}SM0",
    )


def test_two_multi_valued_fields_give_every_combination_once():
    rules = [{"name": "phone+email", "fields": ["phones", "emails"]}]
    f = feat(1, phones=("+2", "+1", "+1"), emails=("b@x", "", "a@x"))
    assert block_keys(f, rules) == tuple(sorted(
        f"0{S}{phone}{S}{email}" for phone in ("+1", "+2") for email in ("a@x", "b@x")))


def test_empty_fields_produce_no_key():
    assert block_keys(feat(1), RULES) == ()
    # one field of a multi-field rule empty: no key for that rule
    assert block_keys(feat(1, dob="1980-04-23"), RULES) == ()
    assert block_keys(feat(1, last_phonetic="SM0"), RULES) == ()
    # empty strings inside a multi-valued feature are skipped
    assert block_keys(feat(1, phones=("", "+14155552671")), RULES) == (f"0{S}+14155552671",)
    assert block_keys(feat(1, phones=("",)), RULES) == ()
    assert block_keys({"id": pid(1)}, RULES) == ()  # missing features


def test_keys_are_sorted_and_unique_and_rule_of_reads_the_rule():
    f = feat(1, phones=("+2", "+1", "+2"), emails=("a@x.com",))
    keys = block_keys(f, RULES)
    assert keys == tuple(sorted(set(keys))) and len(keys) == 3
    assert [rule_of(k) for k in keys] == [0, 0, 1]


def test_same_value_in_different_rules_gives_different_keys():
    rules = [{"name": "a", "fields": ["x"]}, {"name": "b", "fields": ["x"]}]
    assert block_keys({"x": "v"}, rules) == (f"0{S}v", f"1{S}v")


# ------------------------------------------------------------------ owned_pairs


def all_blocks(members):
    blocks = {}
    for m in members:
        for k in m["keys"]:
            blocks.setdefault(k, []).append(m)
    return blocks


def pairs_from_all_blocks(members, capped=frozenset()):
    made = []
    for key, block in all_blocks(members).items():
        if key in capped:
            continue
        made.extend((key, left["id"], right["id"], rules) for left, right, rules in owned_pairs(key, block, capped))
    return made


def test_pair_sharing_several_keys_is_made_once_in_its_smallest_key():
    a = keyed(feat(2, phones=("+1",), emails=("e@x.com",), dob="1980-01-01", last_phonetic="SM0"))
    b = keyed(feat(1, phones=("+1",), emails=("e@x.com",), dob="1980-01-01", last_phonetic="SM0"))
    made = pairs_from_all_blocks([a, b])
    assert made == [(f"0{S}+1", pid(1), pid(2), (0, 1, 2))]  # ordered by id, every rule listed


def test_pair_sharing_two_keys_of_one_rule_is_made_once():
    a = keyed(feat(1, phones=("+1", "+2")))
    b = keyed(feat(2, phones=("+2", "+1")))
    assert pairs_from_all_blocks([a, b]) == [(f"0{S}+1", pid(1), pid(2), (0,))]


def test_block_of_four_makes_six_pairs_each_once():
    members = [keyed(feat(n, phones=("+1",), emails=("e@x.com",))) for n in (4, 3, 2, 1)]
    made = pairs_from_all_blocks(members)
    assert sorted((a, b) for _, a, b, _ in made) == sorted(itertools.combinations([pid(n) for n in (1, 2, 3, 4)], 2))
    assert {key for key, *_ in made} == {f"0{S}+1"}


def test_capped_key_only_makes_no_pair():
    a, b = keyed(feat(1, phones=("+1",))), keyed(feat(2, phones=("+1",)))
    capped = {f"0{S}+1"}
    assert list(owned_pairs(f"0{S}+1", [a, b], capped)) == []
    assert pairs_from_all_blocks([a, b], capped) == []


def test_capped_and_uncapped_key_pair_is_made_in_the_uncapped_block():
    a = keyed(feat(1, phones=("+1",), emails=("e@x.com",)))
    b = keyed(feat(2, phones=("+1",), emails=("e@x.com",)))
    capped = {f"0{S}+1"}  # the phone is a call centre's
    # the phone block (the smallest key) does not own it when capped...
    assert list(owned_pairs(f"0{S}+1", [a, b], capped)) == []
    # ...the email block does, and the capped rule is not listed
    [(left, right, rules)] = owned_pairs(f"1{S}e@x.com", [a, b], capped)
    assert (left["id"], right["id"], rules) == (pid(1), pid(2), (1,))
    assert pairs_from_all_blocks([a, b], capped) == [(f"1{S}e@x.com", pid(1), pid(2), (1,))]
    # without the cap the phone block owns it
    assert pairs_from_all_blocks([a, b]) == [(f"0{S}+1", pid(1), pid(2), (0, 1))]


def test_owned_pairs_accepts_any_container_of_capped_keys():
    a = keyed(feat(1, phones=("+1",), emails=("e@x.com",)))
    b = keyed(feat(2, phones=("+1",), emails=("e@x.com",)))
    for capped in ({f"0{S}+1": 10}, [f"0{S}+1"], frozenset([f"0{S}+1"])):
        assert [r for *_, r in owned_pairs(f"1{S}e@x.com", [a, b], capped)] == [(1,)]


def test_owned_pairs_skips_the_same_profile_twice():
    a = keyed(feat(1, phones=("+1",)))
    assert list(owned_pairs(f"0{S}+1", [a, dict(a)], ())) == []


# --------------------------------------------------------------- hard_conflicts


def test_profile_type_conflicts():
    acct, person, untyped = feat(1, type="ACCOUNT_PROFILE"), feat(2, type="PROFILE"), feat(3, type="")
    assert hard_conflicts(acct, person) == ["different ProfileType (ACCOUNT_PROFILE / PROFILE)"]
    assert hard_conflicts(person, acct) == ["different ProfileType (PROFILE / ACCOUNT_PROFILE)"]
    assert hard_conflicts(acct, untyped) == ["different ProfileType (ACCOUNT_PROFILE / PROFILE)"]
    assert hard_conflicts(person, untyped) == []
    assert hard_conflicts(untyped, feat(4)) == []
    assert hard_conflicts(acct, feat(5, type="ACCOUNT_PROFILE")) == []


def test_a_profile_without_profile_type_is_a_business_by_its_party_type():
    from transforms.normalize import profile_features

    def kind(**fields):
        return profile_features({"ProfileId": "%032x" % 7, "FirstName": "Ada", **fields})

    owner = kind(PartyType="INDIVIDUAL")
    shop = kind(PartyType="BUSINESS", BusinessName="Okafor Catering")
    assert shop["type"] == "ACCOUNT_PROFILE" and owner["type"] == "" and kind()["type"] == ""
    assert hard_conflicts(shop, owner) == ["different ProfileType (ACCOUNT_PROFILE / PROFILE)"]
    assert hard_conflicts(shop, kind(ProfileType="ACCOUNT_PROFILE")) == []
    # a ProfileType given says what the profile is, whatever its PartyType
    assert kind(ProfileType="PROFILE", PartyType="BUSINESS")["type"] == "PROFILE"
    # PartyTypeString, PartyType's free-text twin, says so too, in any case
    assert kind(PartyTypeString=" business ")["type"] == "ACCOUNT_PROFILE"
    assert kind(PartyTypeString="Individual")["type"] == "" and kind(PartyType="INDIVIDUAL", PartyTypeString="x")["type"] == ""
    assert hard_conflicts(kind(PartyTypeString="Business"), owner) == ["different ProfileType (ACCOUNT_PROFILE / PROFILE)"]


def test_identifier_conflicts():
    a = feat(1, identifiers=(("AccountNumber", "a-1"), ("Attributes.crm", "x")))
    assert hard_conflicts(a, feat(2, identifiers=(("AccountNumber", "a-2"),))) == ["different AccountNumber"]
    assert hard_conflicts(a, feat(2, identifiers=(("AccountNumber", "a-1"),))) == []
    assert hard_conflicts(a, feat(2)) == []  # one side without a value: no conflict
    assert hard_conflicts(a, feat(2, identifiers=(("Attributes.crm", "y"), ("AccountNumber", "a-2")))) == [
        "different AccountNumber", "different Attributes.crm"]
    both = hard_conflicts(feat(1, type="ACCOUNT_PROFILE", identifiers=(("AccountNumber", "1"),)),
                          feat(2, type="PROFILE", identifiers=(("AccountNumber", "2"),)))
    assert len(both) == 2


# ------------------------------------------------------------------- BlockPairs


def test_block_pairs_transform_caps_oversized_blocks(tmp_path):
    call_centre = "+18005550100"
    # 30 profiles share a call-centre phone: 435 pairs if expanded; none may be made from it.
    crowd = [feat(n, phones=(call_centre,)) for n in range(100, 130)]
    # two of the crowd also share an email: they are paired, by the email rule
    crowd[0]["emails"] = crowd[1]["emails"] = ("same@x.com",)
    # three profiles share another phone, two of them also dob + last name
    small = [feat(1, phones=("+1",), dob="1980-01-01", last_phonetic="SM0"),
             feat(2, phones=("+1",), dob="1980-01-01", last_phonetic="SM0"),
             feat(3, phones=("+1",))]
    with beam.Pipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(crowd + small) | BlockPairs(RULES, max_block_size=5)
        assert_that(out["pairs"] | beam.FlatMap(lambda batch: [(t[0]["id"], t[1]["id"], t[2]) for t in batch]),
                    collect_to(tmp_path / "pairs.json"), label="Pairs")
        assert_that(out["capped"], collect_to(tmp_path / "capped.json"), label="Capped")
    pairs = sorted(tuple(x if not isinstance(x, list) else tuple(x) for x in t)
                   for t in json.loads((tmp_path / "pairs.json").read_text()))
    capped = json.loads((tmp_path / "capped.json").read_text())
    assert pairs == [
        (pid(1), pid(2), ("phone", "dob+last")),
        (pid(1), pid(3), ("phone",)),
        (pid(2), pid(3), ("phone",)),
        (pid(100), pid(101), ("email",)),
    ]
    assert capped == [{"rule": "phone", "key": call_centre, "size": 30, "pairs_not_made": 435}]


def test_pairing_keys_keeps_the_keys_whose_hash_is_shared():
    shared = shared_key_filter([np.array([key_hash("a")], dtype=np.uint32), np.zeros(0, dtype=np.uint32),
                                np.array([key_hash("c"), key_hash("a")], dtype=np.uint32)])
    assert list(shared) == sorted({key_hash("a"), key_hash("c")})
    assert pairing_keys(("a", "b", "c"), shared) == ["a", "c"]
    assert pairing_keys(("b",), shared) == []
    assert pairing_keys(("a",), shared_key_filter([])) == []
    assert pairing_keys((), shared) == []
    # several profiles at once: the same answers, in order, empty key lists included
    assert pairing_keys_of_many([("a", "b"), (), ("b",), ("c", "a", "d")], shared) == [["a"], [], [], ["c", "a"]]
    assert pairing_keys_of_many([("a",), ()], shared_key_filter([])) == [[], []]


def test_only_keys_of_blocks_that_pair_carry_their_members(tmp_path):
    # "+1" is shared by two profiles; "+2" and every email by one; "+9" by six (capped at 5)
    members = ([feat(1, phones=("+1",), emails=("a@x",)), feat(2, phones=("+1", "+2"), emails=("b@x",))]
               + [feat(n, phones=("+9",)) for n in range(10, 16)])
    p = beam.Pipeline(runner="FnApiRunner")
    features = p | beam.Create(members)
    sizes = features | "Sizes" >> BlockSizes(RULES, max_block_size=5)
    out = features | BlockPairs(RULES, max_block_size=5, sizes=sizes)
    assert_that(out["pairs"] | beam.FlatMap(lambda batch: [(t[0]["id"], t[1]["id"], t[2]) for t in batch]),
                equal_to([(pid(1), pid(2), ("phone",))]), label="Pairs")
    assert_that(out["capped"] | beam.Map(lambda c: (c["key"], c["size"])), equal_to([("+9", 6)]), label="Capped")
    # the entries that go into the blocking shuffle are counted on both sides of it
    assert_that(out["entries_sent"], equal_to([2]), label="Sent")
    assert_that(out["entries_grouped"], equal_to([2]), label="Grouped")
    result = p.run()
    result.wait_until_finish()
    skipped = result.metrics().query(MetricsFilter().with_name("keys_without_pairs"))["counters"]
    # 11 keys in all; only the two "+1" keys travel with their members
    assert sum(c.committed for c in skipped) == 9


def test_block_pairs_block_at_the_limit_is_not_capped():
    members = [feat(n, phones=("+1",), dob="1980-01-01", last_phonetic="SM0") for n in (1, 2, 3)]
    with beam.Pipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(members) | BlockPairs(RULES, max_block_size=3)
        assert_that(out["pairs"] | beam.FlatMap(lambda batch: [(t[0]["id"], t[1]["id"], t[2]) for t in batch]), equal_to([
            (pid(1), pid(2), ("phone", "dob+last")),
            (pid(1), pid(3), ("phone", "dob+last")),
            (pid(2), pid(3), ("phone", "dob+last")),
        ]), label="Pairs")
        assert_that(out["capped"], equal_to([]), label="Capped")


def test_block_pairs_come_in_batches_of_about_the_batch_size():
    # 40 phones, each shared by 3 profiles: 3 pairs per block, 120 pairs in all
    members = [feat(100 * phone + k, phones=(f"+1{phone}",)) for phone in range(40) for k in range(3)]
    with beam.Pipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(members) | BlockPairs(RULES, max_block_size=5, batch_size=10)
        sizes = out["pairs"] | beam.Map(len)

        def check(batch_sizes):
            assert sum(batch_sizes) == 120
            # a block's pairs are never split, so a batch holds at most batch_size + 2 pairs
            assert max(batch_sizes) <= 12
            assert len(batch_sizes) >= 10

        assert_that(sizes, check)


def test_default_rules_pair_a_mistyped_last_name_at_the_same_street():
    # "Watanabe" / "Wtanabe" have different phonetic keys and the duplicate has no phone, email
    # or birth date: only the street address (with its postcode) and the first initial are left
    from tests.helpers import features
    from transforms.model import DEFAULT_BLOCKING_RULES
    address = {"Address1": "2-7-39 Chuo", "City": "Nagoya", "PostalCode": "450-9306", "Country": "JP"}
    a = features({"ProfileId": pid(1), "FirstName": "Yuto", "LastName": "Watanabe", "BirthDate": "1979-05-10",
                  "EmailAddress": "yuto.watanabe32512@yahoo.co.jp", "Address": address})
    b = features({"ProfileId": pid(2), "FirstName": "Yuot", "LastName": "Wtanabe",
                  "Address": {**address, "Address1": "2-7-39 CHUO", "City": ""}})
    shared = set(block_keys(a, DEFAULT_BLOCKING_RULES)) & set(block_keys(b, DEFAULT_BLOCKING_RULES))
    assert [DEFAULT_BLOCKING_RULES[rule_of(k)]["name"] for k in shared] == ["postcode+street+first_initial"]
    # a neighbour at another street number of the same postcode is not paired by it
    c = features({"ProfileId": pid(3), "FirstName": "Yui", "LastName": "Wtanabe",
                  "Address": {**address, "Address1": "2-7-40 Chuo"}})
    assert not set(block_keys(a, DEFAULT_BLOCKING_RULES)) & set(block_keys(c, DEFAULT_BLOCKING_RULES))


def test_block_pairs_with_kept_fields_carry_those_features_and_their_keys():
    members = [feat(n, phones=("+1",), dob="1980-01-01", last_phonetic="SM0", extra=f"x{n}") for n in (1, 2)]
    keep = frozenset({"id", "phones", "dob", "last_phonetic"})
    with beam.Pipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(members) | BlockPairs(RULES, max_block_size=3, keep_fields=keep)

        def check(batches):
            [[(left, right, rules)]] = batches
            assert set(left) == keep | {"keys"} and "extra" not in left
            assert (left["id"], right["id"], rules) == (pid(1), pid(2), ("phone", "dob+last"))
            assert left["phones"] == ("+1",) and left["keys"] == block_keys(members[0], RULES)

        assert_that(out["pairs"], check)


# ------------------------------------------------------------------ windowed blocks

WINDOWED_RULES = [
    {"name": "phone", "fields": ["phones"]},
    {"name": "city", "fields": ["city"], "window": 2, "max_block_size": 100},
]


def city_member(n, last, phones=()):
    return feat(n, city="leeds", last=last, first="", phones=phones)


def test_windowed_rules_have_their_own_limit_and_window_only_large_blocks():
    assert block_limit(WINDOWED_RULES, f"1{S}leeds", 5) == 100  # not lowered to the default
    assert block_limit(WINDOWED_RULES, f"0{S}+1", 5) == 5
    assert not is_windowed(WINDOWED_RULES, f"1{S}leeds", 3)
    assert is_windowed(WINDOWED_RULES, f"1{S}leeds", 4)
    assert not is_windowed(WINDOWED_RULES, f"0{S}+1", 4000)


def test_all_pairs_up_to_keeps_small_blocks_whole_under_a_narrow_window():
    rules = [{"name": "city", "fields": ["city"], "window": 1, "all_pairs_up_to": 4, "max_block_size": 100}]
    key = f"0{S}leeds"
    assert not is_windowed(rules, key, 4)     # 4 members: everyone paired, not just neighbours
    assert is_windowed(rules, key, 5)
    without = [{"name": "city", "fields": ["city"], "window": 1, "max_block_size": 100}]
    assert is_windowed(without, key, 3)       # the window alone pairs everyone only up to window + 1

    def made(n, with_rules):
        members = [keyed(city_member(i, last), with_rules) for i, last in enumerate(["d", "a", "c", "b", "e"][:n], 1)]
        windowed = {key} if is_windowed(with_rules, key, n) else set()
        window = with_rules[0]["window"] if windowed else 0
        return {(l["id"], r["id"]) for l, r, _ in owned_pairs(key, members, (), windowed, window=window)}

    assert len(made(4, rules)) == 6           # all pairs of a block of 4
    assert len(made(5, rules)) == 4           # a block of 5: each with its next neighbour only
    assert len(made(4, without)) == 3


def test_windowed_block_pairs_neighbours_in_sort_order_only():
    lasts = ["smith", "adams", "smyth", "jones", "baker", "smith"]
    members = [keyed(city_member(n, last), WINDOWED_RULES) for n, last in enumerate(lasts, start=1)]
    key = f"1{S}leeds"
    made = {(left["id"], right["id"]) for left, right, _ in owned_pairs(key, members, (), {key}, window=2)}
    # sorted: adams(2) baker(5) jones(4) smith(1) smith(6) smyth(3); each with the next two
    order = [2, 5, 4, 1, 6, 3]
    expected = {tuple(sorted((pid(order[i]), pid(order[j])))) for i in range(6) for j in range(i + 1, min(i + 3, 6))}
    assert made == expected
    assert len(made) == 9 < 15  # linear, not all 15 pairs
    assert (pid(1), pid(6)) in made  # the two Smiths are neighbours


def test_windowed_and_full_keys_make_each_pair_once():
    # profiles 1 and 2 share a phone and the large city block: the phone block owns the pair
    members = [keyed(city_member(n, last, phones=("+1",) if n in (1, 2) else ()), WINDOWED_RULES)
               for n, last in enumerate(["smith", "smith", "adams", "baker", "jones"], start=1)]
    city, phone = f"1{S}leeds", f"0{S}+1"
    windowed = {city}
    in_city = {(l["id"], r["id"]) for l, r, _ in owned_pairs(city, members, (), windowed, window=2)}
    in_phone = {(l["id"], r["id"]): rules for l, r, rules in owned_pairs(phone, members[:2], (), windowed)}
    assert in_phone == {(pid(1), pid(2)): (0, 1)}
    assert (pid(1), pid(2)) not in in_city and in_city  # made once, by the phone block


def test_block_pairs_transform_windows_a_large_block_and_makes_no_pair_twice():
    rng = random.Random(4)
    members = [city_member(n, rng.choice(["smith", "adams", "jones"]), phones=(f"+{n % 7}",)) for n in range(1, 31)]
    with beam.Pipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(members) | BlockPairs(WINDOWED_RULES, max_block_size=5)

        def check(batches):
            pairs = [(left["id"], right["id"]) for batch in batches for left, right, _ in batch]
            assert len(pairs) == len(set(pairs))
            # phone blocks (4 or 5 members, all pairs) plus at most 2 neighbours per member in the city
            phone_pairs = sum(len(g) * (len(g) - 1) // 2 for g in
                              ([m for m in members if m["phones"] == (f"+{k}",)] for k in range(7)))
            assert phone_pairs < len(pairs) <= phone_pairs + 2 * 30
            assert all(left < right for left, right in pairs)

        assert_that(out["pairs"], check)


def test_block_pairs_from_batches_match_block_pairs_from_single_features():
    members = ([feat(n, phones=("+1",)) for n in range(1, 5)] + [feat(n, phones=("+2",), emails=("e@x",))
                                                                  for n in range(5, 8)]
               + [feat(n, phones=("+9",)) for n in range(10, 17)])

    def pairs_of(out, label):
        return out["pairs"] | label >> beam.FlatMap(lambda batch: [(t[0]["id"], t[1]["id"], t[2]) for t in batch])

    expected = sorted((pid(a), pid(b), ("phone",)) for a, b in itertools.combinations(range(1, 5), 2))
    expected += sorted((pid(a), pid(b), ("phone", "email")) for a, b in itertools.combinations(range(5, 8), 2))
    with beam.Pipeline(runner="FnApiRunner") as p:
        single = p | "Single" >> beam.Create(members) | "FromSingle" >> BlockPairs(RULES, max_block_size=5)
        batched = (p | "Batched" >> beam.Create([members[:6], members[6:11], members[11:]])
                   | "FromBatches" >> BlockPairs(RULES, max_block_size=5))
        assert_that(pairs_of(single, "IdsOfSingle"), equal_to(expected), label="SinglePairs")
        assert_that(pairs_of(batched, "IdsOfBatched"), equal_to(expected), label="BatchedPairs")
        assert_that(batched["capped"] | beam.Map(lambda c: (c["key"], c["size"])), equal_to([("+9", 7)]),
                    label="BatchedCapped")


def test_keys_made_once_are_copies_with_the_keys_block_keys_gives():
    f = feat(1, phones=("+1",), dob="2000-01-01", last_phonetic="SM0")
    made = with_block_keys(RULES, f)
    assert made["keys"] == block_keys(f, RULES) and "keys" not in f   # a copy: the input is not changed
    assert [g["keys"] for g in with_block_keys(RULES, [f, feat(2)])] == [block_keys(f, RULES), ()]
    assert keys_of(made, RULES) is made["keys"]
    assert keys_of(f, RULES) == block_keys(f, RULES)


def test_block_pairs_read_keys_made_once_for_sizes_and_blocks():
    members = [feat(n, phones=("+1",), emails=("e@x",)) for n in range(1, 4)] + [feat(n, phones=("+9",)) for n in range(4, 11)]
    both = sorted((pid(a), pid(b), ("phone", "email")) for a, b in itertools.combinations(range(1, 4), 2))
    # keys given without the email: sizes and blocks follow the keys given, not keys made again
    phone_only = [dict(f, keys=tuple(k for k in block_keys(f, RULES) if rule_of(k) == 0)) for f in members]

    def ids(out, label):
        return out["pairs"] | label >> beam.FlatMap(lambda batch: [(t[0]["id"], t[1]["id"], t[2]) for t in batch])

    with beam.Pipeline(runner="FnApiRunner") as p:
        once = (p | "Members" >> beam.Create([members]) | "KeysOnce" >> beam.Map(lambda b: with_block_keys(RULES, b))
                | "FromKeysOnce" >> BlockPairs(RULES, max_block_size=5))
        given = p | "PhoneOnly" >> beam.Create([phone_only]) | "FromGivenKeys" >> BlockPairs(RULES, max_block_size=5)
        assert_that(ids(once, "IdsOnce"), equal_to(both), label="KeysOncePairs")
        assert_that(once["capped"] | "OnceCapped" >> beam.Map(lambda c: c["size"]), equal_to([7]), label="OnceCapped")
        assert_that(ids(given, "IdsGiven"), equal_to([(a, b, ("phone",)) for a, b, _ in both]), label="GivenPairs")


def test_block_pairs_refuses_a_then_whose_outputs_lack_pairs_or_hide_its_own():
    members = [city_member(n, "smith", phones=("+1",)) for n in range(1, 5)]
    for then in (lambda: _Renamed({"batches": "pairs"}), lambda: _Renamed({"pairs": "pairs", "capped": "pairs"})):
        with pytest.raises(ValueError, match="BlockPairs"):
            with beam.Pipeline(runner="FnApiRunner") as p:
                _ = p | beam.Create(members) | BlockPairs(WINDOWED_RULES, max_block_size=8, then=then)


class _Renamed(beam.PTransform):
    """A ``then`` that hands the batches on under other names (``{new name: "pairs"}``)."""

    def __init__(self, names: dict):
        super().__init__()
        self._names = names

    def expand(self, batches):
        return {name: batches | f"As{name}" >> beam.Map(lambda batch: batch) for name in self._names}


class _PairsAndSizes(beam.PTransform):
    """A ``then`` that makes two collections: the batches, and how many pairs each holds."""

    def expand(self, batches):
        return {"pairs": batches, "sizes": batches | beam.Map(len)}


def test_block_pairs_are_the_same_whatever_the_number_of_shuffle_parts_and_then_runs_in_each_part(tmp_path):
    rng = random.Random(8)
    members = [city_member(n, rng.choice(["smith", "adams", "jones", "baker"]), phones=(f"+{n % 9}",))
               for n in range(1, 61)]

    def ids(batch):
        return [(left["id"], right["id"], list(rules)) for left, right, rules in batch]

    with beam.Pipeline(runner="FnApiRunner") as p:
        for parts in (1, 3, 4):
            out = (p | f"Create{parts}" >> beam.Create(members)
                   | f"Block{parts}" >> BlockPairs(WINDOWED_RULES, max_block_size=8, parts=parts))
            assert_that(out["pairs"] | f"Ids{parts}" >> beam.FlatMap(ids), collect_to(tmp_path / f"parts{parts}.json"),
                        label=f"Save{parts}")
        # ``then`` runs on each part's batches, before the parts are flattened
        tagged = (p | "CreateThen" >> beam.Create(members)
                  | "BlockThen" >> BlockPairs(WINDOWED_RULES, max_block_size=8, parts=3,
                                              then=lambda: beam.Map(lambda batch: ("seen", ids(batch)))))
        assert_that(tagged["pairs"], collect_to(tmp_path / "then.json"), label="SaveThen")
        # a ``then`` that makes several collections: each is flattened over the parts, under its name
        several = (p | "CreateSeveral" >> beam.Create(members)
                   | "BlockSeveral" >> BlockPairs(WINDOWED_RULES, max_block_size=8, parts=3,
                                                  then=lambda: _PairsAndSizes()))
        assert_that(several["pairs"] | "IdsSeveral" >> beam.FlatMap(ids), collect_to(tmp_path / "several.json"),
                    label="SaveSeveral")
        assert_that(several["sizes"] | "SumSizes" >> beam.CombineGlobally(sum),
                    collect_to(tmp_path / "sizes.json"), label="SaveSizes")

    def load(name):
        return sorted((a, b, tuple(rules)) for a, b, rules in json.loads((tmp_path / name).read_text()))

    one = load("parts1.json")
    assert len(one) > 60 and len(one) == len(set(one))
    assert load("parts3.json") == one and load("parts4.json") == one
    assert load("several.json") == one
    assert json.loads((tmp_path / "sizes.json").read_text()) == [len(one)]
    then = json.loads((tmp_path / "then.json").read_text())
    assert {tag for tag, _ in then} == {"seen"}
    assert sorted((a, b, tuple(r)) for _, batch in then for a, b, r in batch) == one
