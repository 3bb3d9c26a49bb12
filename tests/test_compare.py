"""Tests for transforms/compare.py: comparison levels, batching, scoring, term frequencies, guards."""
from __future__ import annotations

import math
import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to
from rapidfuzz import distance, fuzz

from tests.helpers import features, fitted_model, pid
from transforms.compare import (
    _shared_frequency,
    joint_specs,
    ComparePairs,
    MatchEdges,
    Scorer,
    ScorePairs,
    comparison_vectors,
    compare_batch,
    edge_rows,
    is_edge,
    score_batch,
    scored_pair,
    term_frequencies,
)
from transforms.model import default_model, level_weight, prior_weight, validate_model
from transforms.packing import pack_compressed

NULL = {"label": "null", "kind": "null", "fields": ["x"]}
ELSE = {"label": "else", "kind": "else"}


def level_of(condition: dict, a: dict, b: dict, null_fields=("x",)) -> int:
    """Level index of one pair in a model with levels [null, condition, else]."""
    model = {"comparisons": [{"name": "c", "levels": [
        {"label": "null", "kind": "null", "fields": list(null_fields)}, dict(condition, label="tested"), ELSE]}]}
    return int(comparison_vectors(model, [a], [b])[0, 0])


def hit(condition, a, b, null_fields=("x",)) -> bool:
    level = level_of(condition, a, b, null_fields)
    assert level != 0, "pair fell on the null level"
    return level == 1


def by_label(model: dict, name: str, left: dict, right: dict) -> str:
    column = [c["name"] for c in model["comparisons"]].index(name)
    level = int(comparison_vectors(model, [left], [right])[0, column])
    return model["comparisons"][column]["levels"][level]["label"]


# ------------------------------------------------------------------- level kinds


def test_null_level_when_either_side_is_empty():
    assert level_of({"kind": "exact", "field": "x"}, {"x": ""}, {"x": "a"}) == 0
    assert level_of({"kind": "exact", "field": "x"}, {"x": "a"}, {"x": ""}) == 0
    assert level_of({"kind": "exact", "field": "x"}, {"x": ()}, {"x": ("a",)}) == 0
    assert level_of({"kind": "exact", "field": "x"}, {"x": "a"}, {"x": "b"}) == 2


def test_null_level_with_several_fields_needs_all_of_them_empty_on_one_side():
    cond = {"kind": "exact", "field": "x"}
    assert level_of(cond, {"x": "", "y": "1"}, {"x": "", "y": "1"}, ("x", "y")) == 2  # y present on both
    assert level_of(cond, {"x": "", "y": ""}, {"x": "a", "y": "1"}, ("x", "y")) == 0


def test_exact():
    cond = {"kind": "exact", "field": "x"}
    assert hit(cond, {"x": "smith"}, {"x": "smith"})
    assert not hit(cond, {"x": "smith"}, {"x": "smyth"})
    assert not hit(cond, {"x": "smith"}, {"x": "Smith"})


def test_overlap():
    cond = {"kind": "overlap", "field": "x"}
    assert hit(cond, {"x": ("+1", "+2")}, {"x": ("+3", "+2")})
    assert not hit(cond, {"x": ("+1", "+2")}, {"x": ("+3",)})


def test_overlap_of_a_batch_agrees_with_sets_pair_by_pair():
    # one-value tuples are compared as whole columns, the rest value by value: both must say
    # what set intersection says, including for empty tuples and repeated values
    rng = random.Random(5)
    values = ["+1", "+2", "+3", "+4"]
    def draw():
        return tuple(rng.choice(values) for _ in range(rng.choice([0, 1, 1, 1, 2, 3])))
    left = [{"x": draw()} for _ in range(3000)]
    right = [{"x": draw()} for _ in range(3000)]
    model = {"comparisons": [{"name": "c", "levels": [
        dict(NULL), {"label": "tested", "kind": "overlap", "field": "x"}, ELSE]}]}
    levels = comparison_vectors(model, left, right)[:, 0].tolist()
    expected = [0 if not a["x"] or not b["x"] else 1 if set(a["x"]) & set(b["x"]) else 2
                for a, b in zip(left, right)]
    assert levels == expected
    assert {0, 1, 2} <= set(levels)
    # on rows an earlier level left over (not all rows of the batch)
    model["comparisons"][0]["levels"].insert(1, {"label": "first", "kind": "exact", "field": "x"})
    levels = comparison_vectors(model, left, right)[:, 0].tolist()
    assert levels == [0 if e == 0 else 1 if a["x"] == b["x"] else e + 1
                      for a, b, e in zip(left, right, expected)]


def test_member():
    cond = {"kind": "member", "fields": ["x", "v"]}
    bob = {"x": "bob", "v": ("bob", "robert")}
    robert = {"x": "robert", "v": ("bob", "robert", "bill")}
    bill = {"x": "bill", "v": ("bill", "robert", "william")}
    assert hit(cond, bob, robert) and hit(cond, robert, bob)
    assert hit(cond, {"x": "robert smith", "v": ()}, bob)  # first word of the name
    assert not hit(cond, bob, bill)


@pytest.mark.parametrize("scorer,threshold,a,b,expected", [
    ("jaro_winkler", 0.92, "martha", "marhta", True),
    ("jaro_winkler", 0.92, "martha", "mary", False),
    ("levenshtein", 0.8, "jonathan", "jonathon", True),
    ("levenshtein", 0.8, "jonathan", "nathan", False),
    ("token_set_ratio", 0.85, "12 high street", "high street 12", True),
    ("token_set_ratio", 0.85, "12 high street", "4 low road", False),
    ("damerau_levenshtein_distance", 1, "1980-04-23", "1980-04-32", True),   # transposition: one edit
    ("damerau_levenshtein_distance", 1, "1980-04-23", "1980-04-24", True),
    ("damerau_levenshtein_distance", 1, "1980-04-23", "1981-04-24", False),
])
def test_similarity_each_scorer(scorer, threshold, a, b, expected):
    cond = {"kind": "similarity", "field": "x", "scorer": scorer, "threshold": threshold}
    assert hit(cond, {"x": a}, {"x": b}) is expected


def test_similarity_uses_the_first_value_of_a_tuple():
    cond = {"kind": "similarity", "field": "x", "scorer": "levenshtein", "threshold": 0.9}
    assert hit(cond, {"x": ("jane.doe@example.com", "zzz@zzz.zz")}, {"x": ("jane.doe@example.con",)})


@pytest.mark.parametrize("scorer,threshold,a,b", [
    ("jaro_winkler", 0.92, "maria", "marie"),                    # 0.92 exactly
    ("jaro_winkler", 0.92, "jonas", "jonah"),
    ("token_set_ratio", 0.9, "acmewidget", "acmewidgex"),          # 90 exactly
    ("levenshtein", 0.88, "abcdefghijklmnopqrstuvwxy", "abcdefghijklmnopqrstuvXXX"),  # 1 - 3/25
])
def test_similarity_exactly_at_the_threshold_is_a_hit(scorer, threshold, a, b):
    exact_score = {"jaro_winkler": distance.JaroWinkler.normalized_similarity,
                   "levenshtein": distance.Levenshtein.normalized_similarity,
                   "token_set_ratio": lambda x, y: fuzz.token_set_ratio(x, y) / 100}[scorer](a, b)
    assert exact_score == threshold  # the pair sits exactly on the threshold (">=" must include it)
    assert hit({"kind": "similarity", "field": "x", "scorer": scorer, "threshold": threshold}, {"x": a}, {"x": b})


def test_default_model_first_name_at_jaro_winkler_092():
    # "maria" / "marie": Jaro-Winkler is 0.92, so the level is "jaro-winkler >= 0.92", not ">= 0.80"
    model = default_model()
    left, right = features({"ProfileId": pid(1), "FirstName": "Maria"}), features({"ProfileId": pid(2), "FirstName": "Marie"})
    assert by_label(model, "first_name", left, right) == "jaro-winkler >= 0.92"


def test_default_model_first_name_near_match_needs_at_most_two_edits():
    # "michael" / "michelle": Jaro-Winkler 0.92 for the shared beginning, but three edits apart
    model = default_model()
    left = features({"ProfileId": pid(1), "FirstName": "Michael"})
    right = features({"ProfileId": pid(2), "FirstName": "Michelle"})
    assert distance.JaroWinkler.similarity("michael", "michelle") >= 0.92
    assert by_label(model, "first_name", left, right) == "jaro-winkler >= 0.80"
    right = features({"ProfileId": pid(2), "FirstName": "Micheal"})
    assert by_label(model, "first_name", left, right) == "jaro-winkler >= 0.92"


def test_default_model_business_name_at_token_set_090():
    # token-set ratio 90 exactly: the level is "token-set >= 0.90", not "else"
    model = default_model()
    left = features({"ProfileId": pid(1), "BusinessName": "AcmeWidget"})
    right = features({"ProfileId": pid(2), "BusinessName": "AcmeWidgex"})
    assert by_label(model, "business_name", left, right) == "token-set >= 0.90"


def test_cross_exact():
    cond = {"kind": "cross_exact", "fields": ["x", "y"]}
    assert hit(cond, {"x": "smith", "y": "john"}, {"x": "john", "y": "smith"})
    assert not hit(cond, {"x": "smith", "y": "john"}, {"x": "john", "y": "smyth"})
    assert not hit(cond, {"x": "john", "y": ""}, {"x": "john", "y": "john"})


def test_cross_similarity():
    cond = {"kind": "cross_similarity", "fields": ["x", "y"], "scorer": "jaro_winkler", "threshold": 0.88}
    assert hit(cond, {"x": "smith", "y": "jon"}, {"x": "john", "y": "smyth"})
    # a has no second name: one side alike is enough
    assert hit(cond, {"x": "smith", "y": ""}, {"x": "john", "y": "smith"})
    # the other way round
    assert hit(cond, {"x": "john", "y": "smyth"}, {"x": "smith", "y": ""})
    assert not hit(cond, {"x": "smith", "y": "jon"}, {"x": "mary", "y": "jones"})
    assert not hit(cond, {"x": "smith", "y": "jon"}, {"x": "peter", "y": "smith"})  # second names unlike


def test_same_letters():
    cond = {"kind": "same_letters", "field": "x"}
    assert hit(cond, {"x": "mary"}, {"x": "myra"})
    assert not hit(cond, {"x": "mary"}, {"x": "marc"})
    assert not hit(cond, {"x": "al"}, {"x": "la"})  # too short to mean anything


def test_member_typo():
    cond = {"kind": "member_typo", "fields": ["x", "v"]}
    james = {"x": "james", "v": ("james", "jamie", "jim", "jimmy")}
    thomas = {"x": "thomas", "v": ("thomas", "tom", "tommy")}
    assert hit(cond, {"x": "jmi", "v": ("jmi",)}, james)  # "jim" with two letters swapped
    assert hit(cond, james, {"x": "jmi", "v": ("jmi",)})  # either side
    assert hit(cond, {"x": "jamse", "v": ("jamse",)}, james)
    # a name the table knows is a name, not a typo ("tim" / "tom")
    assert not hit(cond, {"x": "tim", "v": ("tim", "timmy", "timothy")}, thomas)
    # another first letter: "zoe" is not a typo of "joe"
    assert not hit(cond, {"x": "zoe", "v": ("zoe",)}, {"x": "joseph", "v": ("joe", "joseph")})
    assert not hit(cond, {"x": "jm", "v": ("jm",)}, james)  # too short to mean anything
    assert not hit(cond, {"x": "jmmi", "v": ("jmmi",)}, {"x": "jo", "v": ("jo",)})
    assert not hit(cond, {"x": "jxmxs", "v": ("jxmxs",)}, james)  # two typos


def test_default_model_nickname_with_a_typo_is_no_different_first_name():
    # "Jmi" (Jim mistyped) / "James": no similarity level takes it, so it used to be "else" and
    # trip the "different first names" guard
    model = fitted_model(default_guards=True)
    left = features({"ProfileId": pid(1), "FirstName": "Jmi", "LastName": "Langdale"})
    right = features({"ProfileId": pid(2), "FirstName": "James", "LastName": "Langdale"})
    assert by_label(model, "first_name", left, right) == "nickname with a typo"
    assert "different first names" not in Scorer(model).guards(comparison_vectors(model, [left], [right])[0])
    brothers = features({"ProfileId": pid(3), "FirstName": "Tim", "LastName": "Langdale"})
    assert by_label(model, "first_name", brothers, right) == "else"
    assert "different first names" in Scorer(model).guards(comparison_vectors(model, [brothers], [right])[0])


@pytest.mark.parametrize("one, other, expected", [
    ("Mary", "Mary Ann", "nickname"),              # a second given name on one side only: may be one woman
    ("Bill", "William Henry", "nickname"),
    ("Bill Henry", "William Henry", "nickname"),
    ("Jean-Pierre", "Jean-Luc", "else"),           # two given names, the first shared: two people
    ("Van Anh", "Văn Bình", "else"),
    ("María José", "María Fernanda", "else"),
    ("Min-jun", "Min-seo", "else"),
    ("Thi Lan", "Thi Hoa", "else"),
    ("Mary Ann", "Mary Anne", "nickname"),         # a typo in the second given name
    ("Jean-Christophe", "Jean-Christophr", "nickname"),
    ("Hye-jin", "Hye-min", "else"),                # another letter in a short one: another name
    ("Xiao Ming", "Xiao Ling", "else"),
    ("Anna Maria", "Ana Maria", "jaro-winkler >= 0.92"),
])
def test_default_model_nickname_levels_read_every_given_name(one, other, expected):
    model = fitted_model(default_guards=True)
    left = features({"ProfileId": pid(1), "FirstName": one, "LastName": "Nguyen"})
    right = features({"ProfileId": pid(2), "FirstName": other, "LastName": "Nguyen"})
    assert by_label(model, "first_name", left, right) == expected
    # "else" is what the guard "different first names" reads
    assert ("different first names" in Scorer(model).guards(comparison_vectors(model, [left], [right])[0])) \
        == (expected == "else")


def test_default_model_same_letters_reordered_needs_at_most_two_edits():
    # "Myra" / "Mary" (two letters swapped, not adjacent) is a scrambled name; "Lukas" / "Klaus",
    # "Leon" / "Noel" are the same letters but other names (three edits apart): unrelated names,
    # which the "different first names" guard must see
    model = fitted_model(default_guards=True)
    def level(a, b):
        return by_label(model, "first_name", features({"ProfileId": pid(1), "FirstName": a}),
                        features({"ProfileId": pid(2), "FirstName": b}))
    assert level("Myra", "Mary") == "same letters reordered"
    assert level("Lukas", "Klaus") == "else"
    assert level("Leon", "Noel") == "else"


def test_date_swap():
    cond = {"kind": "date_swap", "field": "x"}
    assert hit(cond, {"x": "1980-04-05"}, {"x": "1980-05-04"})
    assert not hit(cond, {"x": "1980-04-05"}, {"x": "1981-05-04"})
    assert not hit(cond, {"x": "1980-04-05"}, {"x": "1980-05-05"})


@pytest.mark.parametrize("a,b,days,expected", [
    ("1980-04-05", "1980-05-05", 31, True), ("1980-04-05", "1980-05-07", 31, False),
    ("1980-12-31", "1981-01-01", 1, True), ("1980-01-01", "1994-12-31", 5479, True), ("1960-01-01", "1990-01-01", 5479, False),
])
def test_date_within(a, b, days, expected):
    assert hit({"kind": "date_within", "field": "x", "days": days}, {"x": a}, {"x": b}) is expected


def test_all_needs_every_part():
    cond = {"kind": "all", "of": [{"kind": "overlap", "field": "p"},
                                  {"kind": "similarity", "field": "x", "scorer": "token_set_ratio", "threshold": 0.85}]}
    assert hit(cond, {"x": "12 high street", "p": ("SW1",)}, {"x": "12 high street", "p": ("SW1", "E1")})
    assert not hit(cond, {"x": "12 high street", "p": ("SW1",)}, {"x": "12 high street", "p": ("E1",)})
    assert not hit(cond, {"x": "12 high street", "p": ("SW1",)}, {"x": "9 low road", "p": ("SW1",)})


def test_else_is_everything_left():
    assert level_of({"kind": "exact", "field": "x"}, {"x": "a"}, {"x": "b"}) == 2


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown comparison level kind"):
        level_of({"kind": "soundex", "field": "x"}, {"x": "a"}, {"x": "b"})


def test_earlier_level_wins():
    model = {"comparisons": [{"name": "c", "levels": [
        {"label": "null", "kind": "null", "fields": ["x"]},
        {"label": "exact", "kind": "exact", "field": "x"},
        {"label": "close", "kind": "similarity", "field": "x", "scorer": "jaro_winkler", "threshold": 0.8},
        {"label": "loose", "kind": "similarity", "field": "x", "scorer": "jaro_winkler", "threshold": 0.5},
        ELSE]}]}
    left = [{"x": "martha"}, {"x": "martha"}, {"x": "martha"}, {"x": "martha"}]
    right = [{"x": "martha"}, {"x": "marhta"}, {"x": "mabel"}, {"x": "zzz"}]
    assert comparison_vectors(model, left, right)[:, 0].tolist() == [1, 2, 3, 4]
    # the same conditions in the reverse order: the loosest now catches everything it can
    model["comparisons"][0]["levels"][1:4] = model["comparisons"][0]["levels"][3:0:-1]
    assert comparison_vectors(model, left, right)[:, 0].tolist() == [1, 1, 1, 4]


def test_default_model_levels_on_realistic_pairs():
    model = default_model()
    a = features({"ProfileId": pid(1), "FirstName": "Bob", "LastName": "Smith", "BirthDate": "1980-04-05",
                  "Address": {"Address1": "12 High St", "City": "London", "PostalCode": "SW1A 1AA", "Country": "GB"}})
    b = features({"ProfileId": pid(2), "FirstName": "Robert", "LastName": "Smyth", "BirthDate": "1980-05-04",
                  "Address": {"Address1": "12 high street", "City": "London", "PostalCode": "sw1a1aa", "Country": "GB"}})
    assert by_label(model, "first_name", a, b) == "nickname"
    assert by_label(model, "last_name", a, b) == "jaro-winkler >= 0.80"
    assert by_label(model, "birth_date", a, b) == "day and month swapped"
    assert by_label(model, "location", a, b) == "postcode and street"
    assert by_label(model, "phone", a, b) == "null"
    c = features({"ProfileId": pid(3), "FirstName": "Smith", "LastName": "Bob"})
    assert by_label(model, "first_name", a, c) == "swapped with last name"
    # swapped, and one of the two names mistyped: Jaro-Winkler gives "sma" / "sam" only 0.56
    d = features({"ProfileId": pid(4), "FirstName": "Webb", "LastName": "Sam"})
    e = features({"ProfileId": pid(5), "FirstName": "Sma", "LastName": "Webb"})
    assert by_label(model, "first_name", d, e) == by_label(model, "last_name", d, e) == "swapped with one typo"
    # both names must be swapped: one typo of the other's last name alone is a different first name
    f = features({"ProfileId": pid(6), "FirstName": "Webb", "LastName": "Tom"})
    assert by_label(model, "first_name", f, e) == "else"


def test_empty_batch():
    assert comparison_vectors(default_model(), [], []).shape == (0, len(default_model()["comparisons"]))


# ---------------------------------------------------------------- batch == pair


def random_profiles(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    firsts = ["John", "Jon", "Bob", "Robert", "Mary", "Myra", "Maria", "Marie", "Smith", "", "Zoë"]
    lasts = ["Smith", "Smyth", "Jones", "John", "Müller", "Muller", ""]
    dobs = ["1980-04-05", "1980-05-04", "1980-04-06", "1981-04-05", "1960-01-01", "", "1980-04-50"]
    phones = ["+14155552671", "(415) 555-2671", "+442079460958", "", "bad"]
    emails = ["john.smith@gmail.com", "johnsmith+x@gmail.com", "jsmith@example.com", "jsmith@exampel.com", ""]
    out = []
    for n in range(count):
        profile = {"ProfileId": pid(n + 1), "FirstName": rng.choice(firsts), "LastName": rng.choice(lasts),
                   "BirthDate": rng.choice(dobs), "PhoneNumber": rng.choice(phones), "EmailAddress": rng.choice(emails),
                   "Gender": rng.choice(["MALE", "FEMALE", ""]), "BusinessName": rng.choice(["Acme Ltd", "ACME", ""]),
                   "AccountNumber": rng.choice(["A1", "A2", ""])}
        if rng.random() < 0.7:
            profile["Address"] = {"Address1": rng.choice(["12 High St", "12 high street", "9 Low Rd"]),
                                  "City": rng.choice(["London", "Leeds"]), "PostalCode": rng.choice(["SW1A 1AA", "LS1 1AA"])}
        out.append(features({k: v for k, v in profile.items() if v}))
    return out


def test_batch_gives_the_same_levels_as_one_pair_at_a_time():
    model = default_model()
    people = random_profiles(60, seed=3)
    rng = random.Random(5)
    pairs = [(rng.choice(people), rng.choice(people)) for _ in range(400)]
    left, right = [a for a, _ in pairs], [b for _, b in pairs]
    batch = comparison_vectors(model, left, right)
    one_by_one = np.vstack([comparison_vectors(model, [a], [b]) for a, b in pairs])
    assert np.array_equal(batch, one_by_one)
    # and in another order and batch split
    order = list(range(len(pairs)))
    rng.shuffle(order)
    shuffled = comparison_vectors(model, [left[i] for i in order], [right[i] for i in order])
    assert np.array_equal(shuffled, batch[order])
    halves = np.vstack([comparison_vectors(model, left[:137], right[:137]), comparison_vectors(model, left[137:], right[137:])])
    assert np.array_equal(halves, batch)
    # a batch builds each column once per distinct feature dict (60 people stand in 800 sides); copies,
    # which share nothing, give the same levels
    copies = comparison_vectors(model, [dict(a) for a in left], [dict(b) for b in right])
    assert np.array_equal(copies, batch)
    # the random pairs do reach many levels (the test is not vacuous)
    assert len({tuple(row) for row in batch}) > 30


# ------------------------------------------------------------------------ Scorer


def test_scorer_weights_are_level_weights_plus_prior():
    model = fitted_model(prior=0.01)
    scorer = Scorer(model)
    people = random_profiles(30, seed=11)
    left, right = people[:15] * 2, people[15:] + people[:15][::-1]
    patterns = comparison_vectors(model, left, right)
    expected = [
        prior_weight(model) + sum(level_weight(c["levels"][int(level)]) for c, level in zip(model["comparisons"], row))
        for row in patterns
    ]
    assert np.allclose(scorer.weights(patterns), expected)
    assert [scorer.weight(row) for row in patterns] == pytest.approx(expected)
    assert prior_weight(model) == pytest.approx(math.log2(0.01 / 0.99))
    assert scorer.weights(np.zeros((0, patterns.shape[1]), dtype=np.int8)).shape == (0,)
    assert scorer.probability(0.0) == 0.5
    assert scorer.probability(1.0) == pytest.approx(2 / 3)


def tf_model():
    model = fitted_model()
    return model, Scorer(model), [c["name"] for c in model["comparisons"]].index("last_name")


def test_term_frequency_lowers_weight_for_a_common_value_never_raises():
    model, scorer, col = tf_model()
    exact = [level["label"] for level in model["comparisons"][col]["levels"]].index("exact")
    pattern = np.zeros(len(model["comparisons"]), dtype=np.int8)
    pattern[col] = exact
    base = scorer.weight(pattern)
    m = model["comparisons"][col]["levels"][exact]["m"]
    common = np.zeros(len(pattern))
    common[col] = 0.2                         # "smith": a fifth of all profiles
    rare = np.zeros(len(pattern))
    rare[col] = 1e-7                          # rarer than the average exact match
    assert scorer.weight(pattern, common) == pytest.approx(base - level_weight(model["comparisons"][col]["levels"][exact])
                                                          + math.log2(m / 0.2))
    assert scorer.weight(pattern, common) < base
    assert scorer.weight(pattern, rare) == pytest.approx(base)
    # the batch form agrees with the single form
    patterns = np.vstack([pattern, pattern, pattern])
    freqs = np.vstack([common, rare, np.zeros(len(pattern))])
    assert scorer.weights(patterns, freqs) == pytest.approx([scorer.weight(p, f) for p, f in zip(patterns, freqs)])
    assert scorer.weights(patterns, freqs)[0] < scorer.weights(patterns, freqs)[2] == pytest.approx(base)
    # explain says why
    explained = scorer.explain(pattern, common)
    assert explained["last_name"]["weight"] == round(math.log2(m / 0.2), 3)
    assert "common value" in explained["last_name"]["note"]
    assert "note" not in scorer.explain(pattern, rare)["last_name"]


def test_shared_frequency_of_single_and_multi_valued_fields():
    a = {"tf": {"last": {"smith": 0.2}, "phones": {"+1": 0.001, "+2": 0.01}}}
    assert _shared_frequency(a, {"tf": {"last": {"smith": 0.2}}}, "last") == 0.2
    assert _shared_frequency(a, {"tf": {"last": {"smyth": 0.01}}}, "last") == 0.0
    assert _shared_frequency(a, {"tf": {}}, "last") == 0.0
    assert _shared_frequency({}, {"tf": {"last": {"smith": 0.2}}}, "last") == 0.0
    # several shared values: the rarest; one shared of several: that one
    assert _shared_frequency(a, {"tf": {"phones": {"+2": 0.01, "+1": 0.001}}}, "phones") == 0.001
    assert _shared_frequency(a, {"tf": {"phones": {"+3": 0.5, "+2": 0.01}}}, "phones") == 0.01
    assert _shared_frequency({"tf": {"phones": {"+2": 0.01}}}, a, "phones") == 0.01


def test_term_frequencies_from_features():
    model = fitted_model()
    a = dict(features({"ProfileId": pid(1), "FirstName": "John", "LastName": "Smith", "PhoneNumber": "+14155552671"}),
             tf={"last": {"smith": 0.2}, "first": {"john": 0.05}, "phones": {"+14155552671": 0.001}})
    b = dict(features({"ProfileId": pid(2), "FirstName": "John", "LastName": "Smith", "PhoneNumber": "+14155552671"}),
             tf={"last": {"smith": 0.2}, "first": {"john": 0.05}, "phones": {"+14155552671": 0.001}})
    c = dict(features({"ProfileId": pid(3), "FirstName": "Jon", "LastName": "Smyth"}),
             tf={"last": {"smyth": 0.01}, "first": {"jon": 0.01}})
    patterns = comparison_vectors(model, [a, a], [b, c])
    tf = term_frequencies(model, [a, a], [b, c], patterns)
    names = [cmp["name"] for cmp in model["comparisons"]]
    assert tf[0, names.index("last_name")] == 0.2
    assert tf[0, names.index("first_name")] == 0.05
    assert tf[0, names.index("phone")] == 0.001
    assert tf[0, names.index("birth_date")] == 0.0      # no birth dates to agree on
    assert not tf[1].any()                               # not on an exact level: no adjustment
    scorer = Scorer(model)
    assert scorer.weights(patterns, tf)[0] < scorer.weights(patterns)[0]


def test_explain_lists_every_comparison_with_level_and_weight():
    model = fitted_model()
    scorer = Scorer(model)
    a, b = random_profiles(2, seed=1)
    pattern = comparison_vectors(model, [a], [b])[0]
    explained = scorer.explain(pattern)
    assert list(explained) == [c["name"] for c in model["comparisons"]]
    for comparison, level in zip(model["comparisons"], pattern):
        entry = explained[comparison["name"]]
        assert entry["level"] == comparison["levels"][int(level)]["label"]
        assert entry["weight"] == round(level_weight(comparison["levels"][int(level)]), 3)
    assert sum(e["weight"] for e in explained.values()) + prior_weight(model) == pytest.approx(scorer.weight(pattern), abs=0.01)


def test_explain_reads_numpy_rows_as_it_reads_plain_sequences():
    # resolving hands explain numpy rows (int8 levels, float frequencies); a person's --model
    # tooling may hand it lists: both give the same account, notes and capped weights included
    model = fitted_model()
    scorer = Scorer(model)
    width, rng = len(model["comparisons"]), np.random.default_rng(3)
    sizes = [len(c["levels"]) for c in model["comparisons"]]
    extra = len(joint_specs(model))
    patterns = np.stack([rng.integers(0, k, 400) for k in sizes], axis=1).astype(np.int8)
    frequencies = np.where(rng.random((400, width + extra)) < 0.4, rng.random((400, width + extra)) / 50, 0.0)
    notes = 0
    for pattern, shares in zip(patterns, frequencies):
        explained = scorer.explain(pattern, shares)
        assert explained == scorer.explain(tuple(int(v) for v in pattern), [float(v) for v in shares])
        assert sum(e["weight"] for e in explained.values()) + prior_weight(model) == pytest.approx(
            scorer.weights(pattern[None, :], shares[None, :])[0], abs=0.01)
        notes += sum("note" in e for e in explained.values())
    assert notes > 0
    assert scorer.explain(patterns[0]) == scorer.explain(list(patterns[0]), None)


# ------------------------------------------------------------------------ guards


def pattern_with(model, **labels):
    names = [c["name"] for c in model["comparisons"]]
    pattern = [0] * len(names)
    for name, label in labels.items():
        levels = [level["label"] for level in model["comparisons"][names.index(name)]["levels"]]
        pattern[names.index(name)] = levels.index(label)
    return pattern


def test_guards_when_and_unless():
    model = fitted_model()
    scorer = Scorer(model)
    assert scorer.guards(pattern_with(model, first_name="else")) == ["different first names"]
    assert scorer.guards(pattern_with(model, first_name="else", account_number="exact", birth_date="exact")) == []
    # "unless" needs every listed comparison: the account number alone is not enough
    assert scorer.guards(pattern_with(model, first_name="else", account_number="exact")) == ["different first names"]
    assert scorer.guards(pattern_with(model, first_name="exact")) == []
    assert scorer.guards(pattern_with(model, first_name="null")) == []
    assert scorer.guards(pattern_with(model, birth_date="else")) == ["birth dates a generation apart"]
    assert scorer.guards(pattern_with(model, birth_date="else", first_name="exact", last_name="exact",
                                      account_number="exact")) == []
    assert scorer.guards(pattern_with(model, gender="else", first_name="else")) == ["different first names", "different genders"]
    assert scorer.guard_columns("different genders") == [[c["name"] for c in model["comparisons"]].index("gender")]


def test_guard_on_real_features():
    model = fitted_model()
    scorer = Scorer(model)
    mum = features({"ProfileId": pid(1), "FirstName": "Mary", "LastName": "Smith", "PhoneNumber": "+14155552671"})
    son = features({"ProfileId": pid(2), "FirstName": "Kevin", "LastName": "Smith", "PhoneNumber": "+14155552671"})
    assert scorer.guards(comparison_vectors(model, [mum], [son])[0]) == ["different first names"]


def test_similar_emails_with_other_digits_are_not_a_typo():
    model = fitted_model()
    names = [c["name"] for c in model["comparisons"]]
    email = names.index("email")
    labels = [level["label"] for level in model["comparisons"][email]["levels"]]

    def level(a, b):
        left = features({"ProfileId": pid(1), "EmailAddress": a})
        right = features({"ProfileId": pid(2), "EmailAddress": b})
        return labels[comparison_vectors(model, [left], [right])[0][email]]

    assert level("patricia.thornfield1950@example.com", "patricia.thornfeild1950@example.com") == "levenshtein >= 0.88"
    # two Patricia Thornfields: the same name with other digits is a namesake, not a typo
    assert level("patricia.thornfield50@example.com", "patricia.thornfield50815@example.com") == "else"
    assert level("john.smith1980@example.com", "john.smith1908@example.com") == "else"
    # the digits are read in order: a letter typed inside a number leaves them the same
    assert level("e.page13@dyer-williams.com", "e.page1i3@dyer-wiliams.com") == "levenshtein >= 0.88"
    assert level("e.page13@dyer-williams.com", "e.page1i4@dyer-williams.com") == "else"


def label_of(model: dict, name: str, left: dict, right: dict) -> str:
    """``by_label`` for two partial profiles (ProfileIds added)."""
    return by_label(model, name, features({"ProfileId": pid(1), **left}), features({"ProfileId": pid(2), **right}))


def test_first_name_one_typo_is_its_own_level_apart_from_a_loose_likeness():
    model = default_model()

    def level(a, b):
        return label_of(model, "first_name", {"FirstName": a}, {"FirstName": b})

    # one typo in a short name scores below Jaro-Winkler 0.92
    assert distance.JaroWinkler.normalized_similarity("ryan", "rgan") < 0.92
    expected = [("Ryan", "Rgan", "one typo"), ("Donna", "Domna", "one typo"), ("Marco", "Mwrco", "one typo"),
                # longer names with one typo keep the near-match level, which comes first
                ("Bartholomew", "Bartholomow", "jaro-winkler >= 0.92"),
                # two different names of one household: names of their own, alike
                ("Mary", "Mandy", "another name alike"), ("Mary", "Marla", "jaro-winkler >= 0.80"),
                ("Kevin", "Mary", "else")]
    assert [(a, b, level(a, b)) for a, b, _ in expected] == expected


def test_city_with_a_typo():
    model = default_model()

    def level(a, b):
        return label_of(model, "location", {"Address": {"City": a}}, {"Address": {"City": b}})

    expected = [("London", "london ", "city"), ("London", "Londdon", "city with a typo"),
                ("Newcastle-upon-Tyne", "Newcastle-pon-Tyne", "city with a typo"),
                ("Peterborough", "Peterborouhg", "city with a typo"),
                ("London", "Lincoln", "else"), ("Leeds", "Leicester", "else")]
    assert [(a, b, level(a, b)) for a, b, _ in expected] == expected


def test_generation_guard_lifted_by_the_account_and_swapped_names():
    model = fitted_model(default_guards=True)
    scorer = Scorer(model)
    generation = "birth dates a generation apart"
    swapped = dict(first_name="swapped with last name", last_name="swapped with first name", birth_date="else")
    assert generation in scorer.guards(pattern_with(model, **swapped))
    assert generation not in scorer.guards(pattern_with(model, account_number="exact", **swapped))
    assert generation not in scorer.guards(pattern_with(
        model, first_name="like the other's last name", last_name="like the other's first name",
        birth_date="else", account_number="exact"))
    # the account alone is not enough: a parent and a child on one family account
    assert generation in scorer.guards(pattern_with(model, first_name="else", last_name="exact",
                                                    birth_date="else", account_number="exact"))
    # and on real features: "Berry Emily" is "Emily Berry" with the names in each other's fields
    a = features({"ProfileId": pid(1), "FirstName": "Emily", "LastName": "Berry", "BirthDate": "1978-05-27",
                  "AccountNumber": "6459366"})
    b = features({"ProfileId": pid(2), "FirstName": "Berry", "LastName": "Emily", "BirthDate": "1938-01-01",
                  "AccountNumber": "6459366"})
    assert generation not in scorer.guards(comparison_vectors(model, [a], [b])[0])
    # the same with a typo in a short swapped name (Jaro-Winkler: "amy" / "aym" is far below 0.88)
    amy = features({"ProfileId": pid(3), "FirstName": "Amy", "LastName": "Berry", "BirthDate": "1978-05-27",
                    "AccountNumber": "6459366"})
    c = features({"ProfileId": pid(4), "FirstName": "Berry", "LastName": "Aym", "BirthDate": "1938-01-01",
                  "AccountNumber": "6459366"})
    assert by_label(model, "first_name", amy, c) == "swapped with one typo"
    assert generation not in scorer.guards(comparison_vectors(model, [amy], [c])[0])


def test_settling_columns_default_to_the_guards_when():
    model = fitted_model(default_guards=True)
    scorer = Scorer(model)
    names = [c["name"] for c in model["comparisons"]]
    assert scorer.settling_columns("birth dates a generation apart") == [names.index("birth_date")]
    assert scorer.settling_columns("namesakes: different phones") == sorted(
        [names.index("phone"), names.index("first_name")])
    assert scorer.settling_columns("nothing but names") == []


HALE_HOME = {"Address1": "12 High Street", "City": "Leeds", "PostalCode": "LS1 4AB", "Country": "GB"}


def mary_hale(email: str) -> dict:
    """Mary Hale at the Hales' home, born 1970-02-03, with the given email."""
    return features({"ProfileId": pid(1), "FirstName": "Mary", "LastName": "Hale", "Address": HALE_HOME,
                     "EmailAddress": email, "BirthDate": "1970-02-03"})


def test_household_guard_needs_a_missing_first_name_and_nothing_personal():
    model = fitted_model(default_guards=True)
    scorer = Scorer(model)
    mary = mary_hale("mary.hale@example.com")

    def guards_with(**fields):
        other = features({"ProfileId": pid(2), "LastName": "Hale", "Address": HALE_HOME, **fields})
        return scorer.guards(comparison_vectors(model, [mary], [other])[0])

    household = "a family name and a household"
    assert household in guards_with(EmailAddress="hale.family@example.com")
    assert household in guards_with(BirthDate="1998-07-07")
    assert household not in guards_with(EmailAddress="mary.hale@example.com")   # her own email
    assert household not in guards_with(BirthDate="1970-02-03")                 # her birth date
    assert household not in guards_with(FirstName="Mary")                       # a first name to compare
    # without the street address it is not what a household shares
    elsewhere = features({"ProfileId": pid(3), "LastName": "Hale",
                          "Address": {"City": "York", "PostalCode": "YO1 7HH", "Country": "GB"}})
    assert household not in scorer.guards(comparison_vectors(model, [mary], [elsewhere])[0])


def test_household_guard_also_when_first_names_are_only_loosely_alike():
    # Mary and Mandy Hale at one address, nothing personal in common: two members of a household,
    # though their first names score Jaro-Winkler >= 0.80. One typo of her own name is not that.
    model = fitted_model(default_guards=True)
    scorer = Scorer(model)
    mary = mary_hale("mary.hale@example.com")

    def guards_with(first_name):
        other = features({"ProfileId": pid(2), "FirstName": first_name, "LastName": "Hale", "Address": HALE_HOME,
                          "EmailAddress": "hale.family@example.com"})
        return scorer.guards(comparison_vectors(model, [mary], [other])[0])

    household = "a family name and a household"
    assert household in guards_with("Mandy")
    assert household not in guards_with("Mray")     # one typo of Mary
    assert household not in guards_with("Mary")
    assert household not in guards_with("Kevin")    # unrelated: the different-first-names guard says so
    assert "different first names" in guards_with("Kevin")


def test_household_guard_sees_through_a_shared_household_email():
    # the main's own profile and another member of the household both use "thehales@": sharing
    # it is not sharing a personal address, so the household guard still applies
    model = fitted_model(default_guards=True)
    scorer = Scorer(model)
    mary = mary_hale("thehales1970@example.com")
    other = features({"ProfileId": pid(2), "LastName": "Hale", "Address": HALE_HOME,
                      "EmailAddress": "TheHales1970@example.com"})
    assert by_label(model, "email", mary, other) == "same household address"
    assert "a family name and a household" in scorer.guards(comparison_vectors(model, [mary], [other])[0])
    # a personal address shared is still "same address" and no household's
    mary = mary_hale("mary.hale1970@example.com")
    other = features({"ProfileId": pid(2), "LastName": "Hale", "Address": HALE_HOME,
                      "EmailAddress": "mary.hale1970@example.com"})
    assert by_label(model, "email", mary, other) == "same address"
    assert "a family name and a household" not in scorer.guards(comparison_vectors(model, [mary], [other])[0])


def test_validate_model_rejects_unknown_settling_comparisons():
    model = fitted_model(default_guards=True)
    model["guards"][0]["main_settles"] = ["shoe_size"]
    with pytest.raises(ValueError, match="shoe_size"):
        validate_model(model)


# -------------------------------------------------------------------------- Beam


def test_compare_and_score_transforms():
    model = fitted_model()
    scorer = Scorer(model)
    a = features({"ProfileId": pid(1), "FirstName": "John", "LastName": "Smith", "PhoneNumber": "+14155552671"})
    b = features({"ProfileId": pid(2), "FirstName": "John", "LastName": "Smith", "PhoneNumber": "+14155552671",
                  "ProfileType": "ACCOUNT_PROFILE"})
    c = features({"ProfileId": pid(3), "FirstName": "Kevin", "LastName": "Smith", "PhoneNumber": "+14155552671"})
    pairs = [(a, b, ("phone",)), (a, c, ("phone", "email"))]
    expected = []
    for left, right, rules in pairs:
        pattern = tuple(int(x) for x in comparison_vectors(model, [left], [right])[0])
        weight = scorer.weight(pattern)
        expected.append((left["id"], right["id"], rules[0], list(rules), pattern, round(weight, 9),
                         scorer.guards(pattern)))
    with beam.Pipeline(runner="FnApiRunner") as p:
        model_view = beam.pvalue.AsSingleton(p | "Model" >> beam.Create([model]))
        # two batches: one pair each
        compared = p | beam.Create([pairs[:1], pairs[1:]]) | ComparePairs(model)
        # as the pipeline does: batches wait for the model packed and compressed
        scored = compared | beam.Map(pack_compressed) | ScorePairs(model_view)
        assert_that(compared | beam.FlatMap(lambda b: zip(b["a"], b["b"], b["conflicts"])), equal_to([
            (pid(1), pid(2), ("different ProfileType (PROFILE / ACCOUNT_PROFILE)",)),
            (pid(1), pid(3), ()),
        ]), label="Conflicts")
        pairs_out = scored | beam.FlatMap(lambda b: [scored_pair(b, r) for r in range(len(b["a"]))])
        assert_that(pairs_out | beam.Map(lambda s: (s["a"], s["b"], s["rule"], s["rules"], tuple(s["pattern"]),
                                                    round(s["weight"], 9), s["guards"])),
                    equal_to(expected), label="Scored")
        # only the Kevin pair is free of conflicts, and its guard keeps it from being an edge
        assert_that(scored | MatchEdges(0.0), equal_to([]), label="Edges")


def test_scored_batch_agrees_with_scoring_one_pair_at_a_time():
    model = fitted_model()
    scorer = Scorer(model)
    people = random_profiles(60, seed=8)
    rng = random.Random(9)
    pairs = [(a, b, ("phone",)) for a, b in ((rng.choice(people), rng.choice(people)) for _ in range(300)) if a is not b]
    scored = score_batch(scorer, compare_batch(model, pairs))
    guarded = edges = 0
    for row, (a, b, _) in enumerate(pairs):
        pattern = comparison_vectors(model, [a], [b])[0]
        frequencies = term_frequencies(model, [a], [b], pattern[None, :])[0]
        weight = scorer.weight(pattern, frequencies)
        assert scored["weights"][row] == pytest.approx(weight, abs=1e-9)
        assert scored["probabilities"][row] == pytest.approx(scorer.probability(weight), abs=1e-12)
        assert list(scored["guards"][row]) == scorer.guards(pattern)
        guarded += bool(scored["guards"][row])
        pair = scored_pair(scored, row)
        assert (row in set(edge_rows(scored, 0.9))) == is_edge(pair, 0.9)
        edges += is_edge(pair, 0.9)
    # the random batch trips guards and makes edges, so the comparison above means something
    assert guarded > 5 and edges > 0


def _name_pattern(model):
    names = [c["name"] for c in model["comparisons"]]
    pattern = np.array(pattern_with(model, first_name="exact", last_name="exact"), dtype=np.int8)
    return names, names.index("first_name"), names.index("last_name"), pattern


def test_joint_name_frequency_column_only_when_both_names_agree():
    model = fitted_model()
    shared = {"first": {"jean": 0.02}, "last": {"martin": 0.02}, "name_pair": {"jean|martin": 0.004}}
    a = dict(features({"ProfileId": pid(1), "FirstName": "Jean", "LastName": "Martin"}), tf=shared)
    b = dict(features({"ProfileId": pid(2), "FirstName": "Jean", "LastName": "Martin"}), tf=shared)
    c = dict(features({"ProfileId": pid(3), "FirstName": "Jean", "LastName": "Marten"}),
             tf={"first": {"jean": 0.02}})
    patterns = comparison_vectors(model, [a, a], [b, c])
    tf = term_frequencies(model, [a, a], [b, c], patterns)
    width = len(model["comparisons"])
    assert [spec[:2] for spec in joint_specs(model)] == [(_name_pattern(model)[1], _name_pattern(model)[2])]
    assert tf.shape == (2, width + 1)
    assert tf[0, width] == 0.004                 # both names exact: the full name's share
    assert tf[1, width] == 0.0                   # last names only similar: no joint share
    assert tf[1, [c["name"] for c in model["comparisons"]].index("first_name")] == 0.02


def test_joint_frequency_caps_the_two_names_never_raises():
    model = fitted_model()
    scorer = Scorer(model)
    names, first, last, pattern = _name_pattern(model)
    m_first = model["comparisons"][first]["levels"][pattern[first]]["m"]
    m_last = model["comparisons"][last]["levels"][pattern[last]]["m"]
    width = len(names)
    marginal = np.zeros(width + 1)
    marginal[first], marginal[last] = 0.02, 0.02
    independent = scorer.weight(pattern, marginal)          # each name lowered on its own
    correlated = marginal.copy()
    correlated[width] = 0.004                                # 10x the product of the shares
    cap = math.log2(m_first * m_last / 0.004)
    others = independent - scorer.explain(pattern, marginal)["first_name"]["weight"] \
        - scorer.explain(pattern, marginal)["last_name"]["weight"]
    assert scorer.weight(pattern, correlated) == pytest.approx(others + cap, abs=2e-3)
    assert scorer.weight(pattern, correlated) < independent
    rare = marginal.copy()
    rare[width] = 1e-9                                       # a rare pairing of common names
    assert scorer.weight(pattern, rare) == pytest.approx(independent)
    rows = np.vstack([pattern] * 3)
    freqs = np.vstack([marginal, correlated, rare])
    assert scorer.weights(rows, freqs) == pytest.approx([scorer.weight(p, f) for p, f in zip(rows, freqs)])
    # a frequency matrix without the joint columns (e.g. from an older plan) still scores
    assert scorer.weights(rows, freqs[:, :width]) == pytest.approx([independent] * 3)
    explained = scorer.explain(pattern, correlated)
    assert "together with the same last name" in explained["first_name"]["note"]
    assert explained["first_name"]["weight"] + explained["last_name"]["weight"] == pytest.approx(cap, abs=2e-3)
    assert "together" not in scorer.explain(pattern, rare)["first_name"].get("note", "")


def test_validate_model_checks_a_joint_term_frequency():
    model = default_model()
    names = [c["name"] for c in model["comparisons"]]
    model["comparisons"][names.index("first_name")]["term_frequency"]["given"]["comparison"] = "gender"
    with pytest.raises(ValueError, match="term_frequency.given"):
        validate_model(model, fitted=False)
    model = default_model()
    model["comparisons"][names.index("first_name")]["term_frequency"]["levels"] = ["no such level"]
    with pytest.raises(ValueError, match="term_frequency needs"):
        validate_model(model, fitted=False)


@pytest.mark.parametrize("setting, value", [("window", 0), ("all_pairs_up_to", "8"), ("max_block_size", True),
                                            ("window", 1.5)])
def test_validate_model_checks_blocking_rule_sizes(setting, value):
    model = default_model()
    validate_model(model, fitted=False)
    model["blocking_rules"][0][setting] = value
    with pytest.raises(ValueError, match=setting):
        validate_model(model, fitted=False)


@pytest.mark.parametrize("rule, message", [
    ({"name": "x"}, "blocking rule x: fields must be a list of feature names"),
    ({"name": "x", "fields": "phones"}, "blocking rule x: fields must be a list"),
    ({"name": "x", "fields": []}, "blocking rule x: fields must be a list"),
    ({"fields": ["phones"]}, "every blocking rule must be an object with a name"),
    ("phones", "every blocking rule must be an object with a name"),
])
def test_validate_model_checks_blocking_rule_fields(rule, message):
    model = default_model()
    model["blocking_rules"].append(rule)
    with pytest.raises(ValueError, match=message):
        validate_model(model, fitted=False)


def test_the_job_refuses_a_blocking_rule_on_a_feature_normalising_does_not_make():
    from transforms.model import check_rule_features

    model = default_model()
    check_rule_features(model)
    model["blocking_rules"].append({"name": "x", "fields": ["phones", "shoe_size"]})
    validate_model(model, fitted=False)   # the model's own shape is fine: any feature dicts will do there
    with pytest.raises(ValueError, match=r"blocking rule x: unknown features \['shoe_size'\] \(features: account, "):
        check_rule_features(model)


def test_a_shared_fixed_line_is_its_own_phone_level_and_guarded_without_a_first_name():
    model = fitted_model(default_guards=True)
    scorer = Scorer(model)
    guard = "a family name and a fixed line"
    landline, mobile = "+44 113 496 0123", "+44 7911 123456"
    named = features({"ProfileId": pid(1), "FirstName": "Ann", "LastName": "Hale", "HomePhoneNumber": landline,
                      "MobilePhoneNumber": mobile})
    nameless = features({"ProfileId": pid(2), "LastName": "Hale", "PhoneNumber": landline})
    assert by_label(model, "phone", named, nameless) == "same fixed line"
    assert guard in scorer.guards(comparison_vectors(model, [named], [nameless])[0])
    # the mobile too: one person's number, no guard
    with_mobile = features({"ProfileId": pid(3), "LastName": "Hale", "PhoneNumber": landline, "MobilePhoneNumber": mobile})
    assert by_label(model, "phone", named, with_mobile) == "same number"
    assert guard not in scorer.guards(comparison_vectors(model, [named], [with_mobile])[0])
    # a first name on both sides, or a birth date in common: not what the guard is about
    ann = features({"ProfileId": pid(4), "FirstName": "Ann", "LastName": "Hale", "PhoneNumber": landline})
    assert guard not in scorer.guards(comparison_vectors(model, [named], [ann])[0])
    dated = [features({"ProfileId": pid(5 + n), "LastName": "Hale", "PhoneNumber": landline, "BirthDate": "1970-02-03",
                       **({"FirstName": "Ann"} if n else {})}) for n in range(2)]
    assert guard not in scorer.guards(comparison_vectors(model, [dated[1]], [dated[0]])[0])
    # a US number may be a mobile: not a fixed line
    us = [features({"ProfileId": pid(7 + n), "LastName": "Hale", "PhoneNumber": "+1 415 555 2671",
                    **({"FirstName": "Ann"} if n else {})}) for n in range(2)]
    assert by_label(model, "phone", us[1], us[0]) == "same number"


def _named(n: int, first: str, last: str, middle: str = "") -> dict:
    return features({"ProfileId": pid(n), "FirstName": first, "LastName": last, "MiddleName": middle})


@pytest.mark.parametrize("one, other", [
    ("伟", "薇"),          # Wei and Wei: one reading, two names (a brother and a sister)
    ("حسن", "حسين"),       # Hasan and Husayn: "hsn" and "hsyn" once transliterated
    ("서연", "서윤"),       # Seo-yeon and Seo-yun: one syllable apart
])
def test_default_model_names_written_differently_are_different_names(one, other):
    model = default_model()
    a, b = _named(1, one, "张"), _named(2, other, "张")
    assert by_label(model, "first_name", a, b) == "else"
    assert by_label(model, "last_name", a, b) == "exact"
    # family names likewise: 王 and 汪 both read "wang"
    assert by_label(model, "last_name", _named(3, "芳", "王"), _named(4, "芳", "汪")) == "else"
    # a middle name too
    assert by_label(model, "middle_name", _named(5, "A", "B", one), _named(6, "A", "B", other)) == "else"


def test_default_model_names_written_alike_keep_their_levels():
    model = default_model()
    # the same name, with and without optional vowel marks, or in either Japanese syllabary
    assert by_label(model, "first_name", _named(1, "حَسَن", "x"), _named(2, "حسن", "x")) == "exact"
    assert by_label(model, "first_name", _named(1, "サトウ", "x"), _named(2, "さとう", "x")) == "exact"
    # a name written in Chinese characters on one side and in pinyin on the other: the
    # transliteration relates them, as before
    assert by_label(model, "first_name", _named(3, "伟", "张"), _named(4, "Wei", "Zhang")) == "exact"
    # family name first on one side, given name first on the other: still a swap, not two names
    assert by_label(model, "first_name", _named(5, "张", "伟"), _named(6, "伟", "张")) == "swapped with last name"
    # Cyrillic spells letter for letter: a typo stays a typo
    assert by_label(model, "last_name", _named(7, "Ivan", "Петров"), _named(8, "Ivan", "Петтров")) != "else"


def test_written_names_on_a_batch_agree_with_one_pair_at_a_time():
    model = default_model()
    names = [("伟", "张"), ("薇", "张"), ("Wei", "Zhang"), ("Mary", "Smith"), ("Marie", "Smith"), ("张", "伟")]
    people = [_named(i, first, last) for i, (first, last) in enumerate(names)]
    left = [a for a in people for _ in people]
    right = [b for _ in people for b in people]
    batch = comparison_vectors(model, left, right)
    one_by_one = np.vstack([comparison_vectors(model, [a], [b]) for a, b in zip(left, right)])
    assert (batch == one_by_one).all()


def test_validate_model_checks_as_written():
    model = default_model()
    model["comparisons"][0]["as_written"] = "nickname"
    with pytest.raises(ValueError, match="as_written"):
        validate_model(model, fitted=False)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["comparisons"][0]["levels"].pop(3), "has no levels"),                      # a level guards name
    (lambda m: m["guards"][0]["when"].update(first_name=["totally else"]), "has no levels"),
    (lambda m: next(g for g in m["guards"] if g.get("member_settles"))["member_settles"]["by"].update(dob=["exact"]),
     "unknown comparisons"),
    (lambda m: m["comparisons"].append(dict(m["comparisons"][0])), "named twice"),
    (lambda m: m.update(version=99), "model version 99"),
    (lambda m: m.update(version=1), "model version 1"),                                       # an earlier job's
])
def test_validate_model_refuses_what_would_fail_or_mislead_mid_run(edit, message):
    """A model file is checked before the job starts: these used to pass and then fail after every pair
    was compared (a level a guard names), or run silently wrong (a comparison counted twice; a model of an
    earlier version, without this one's guards)."""
    model = default_model()
    assert model["comparisons"][0]["levels"][3]["label"] == "nickname"
    edit(model)
    with pytest.raises(ValueError, match=message):
        validate_model(model, fitted=False)


@pytest.mark.parametrize("edit", [
    lambda m: m["comparisons"][-1]["levels"][1].update(field="sex"),          # a level on a feature never made
    lambda m: m["comparisons"][2]["term_frequency"].update(field="surname"),  # frequencies of one: never lower
])
def test_check_rule_features_also_checks_what_comparisons_read(edit):
    from transforms.model import check_rule_features
    model = default_model()
    check_rule_features(model)
    edit(model)
    with pytest.raises(ValueError, match="unknown features"):
        check_rule_features(model)


def test_a_birth_date_or_a_postcode_many_profiles_share_weighs_less():
    from transforms.model import term_frequency_fields

    # a birth date counts as common only when 25 profiles give it: one person's own duplicates do not
    assert term_frequency_fields(default_model())["dob"] == 25
    assert term_frequency_fields(default_model())["postcodes"] == 2
    model = fitted_model()
    scorer = Scorer(model)
    names = [c["name"] for c in model["comparisons"]]
    town = {"Address": {"PostalCode": "62701", "City": "Springfield"}}
    a = features({"ProfileId": pid(1), "FirstName": "Ann", "LastName": "Lee", "BirthDate": "1901-02-03", **town})
    b = features({"ProfileId": pid(2), "FirstName": "Ann", "LastName": "Lee", "BirthDate": "1901-02-03",
                  "Address": {"PostalCode": "62701", "City": "Chatham"}})
    patterns = comparison_vectors(model, [a], [b])
    labels = {name: model["comparisons"][i]["levels"][patterns[0][i]]["label"] for i, name in enumerate(names)}
    assert (labels["birth_date"], labels["location"]) == ("exact", "postcode")
    rare = dict(a, tf={}), dict(b, tf={})
    common = (dict(a, tf={"dob": {"1901-02-03": 0.05}, "postcodes": {"62701": 0.2}}),
              dict(b, tf={"dob": {"1901-02-03": 0.05}, "postcodes": {"62701": 0.2}}))
    tf_rare = term_frequencies(model, [rare[0]], [rare[1]], patterns)
    tf_common = term_frequencies(model, [common[0]], [common[1]], patterns)
    assert tf_common[0, names.index("birth_date")] == 0.05 and tf_common[0, names.index("location")] == 0.2
    explained = scorer.explain(patterns[0], tf_common[0])
    plain = scorer.explain(patterns[0], tf_rare[0])
    assert explained["birth_date"]["weight"] < plain["birth_date"]["weight"]
    assert explained["location"]["weight"] < plain["location"]["weight"]
    assert "common value" in explained["location"]["note"]


def test_validate_model_checks_a_term_frequency_minimum():
    model = fitted_model()
    validate_model(model)
    spec = next(c for c in model["comparisons"] if c["name"] == "birth_date")["term_frequency"]
    for bad in (1, 2.5, True, "25"):
        spec["min_profiles"] = bad
        with pytest.raises(ValueError, match="min_profiles must be a whole number >= 2"):
            validate_model(model)


def test_names_and_a_birth_date_with_day_and_month_swapped_are_nothing_but_names():
    # two David Millers in two Springfields: 04/05/1980 and 05/04/1980 are two dates as often as one
    model = fitted_model(default_guards=True)
    scorer = Scorer(model)
    a = features({"ProfileId": pid(1), "FirstName": "David", "LastName": "Miller", "BirthDate": "04/05/1980",
                  "EmailAddress": "dmiller.home@outlook.com", "Address": {"City": "Springfield", "PostalCode": "62701"}})
    b = features({"ProfileId": pid(2), "FirstName": "David", "LastName": "Miller", "BirthDate": "05/04/1980",
                  "EmailAddress": "david.miller.80@gmail.com", "Address": {"City": "Springfield", "PostalCode": "65801"}})
    assert by_label(model, "birth_date", a, b) == "day and month swapped"
    assert "nothing but names" in scorer.guards(comparison_vectors(model, [a], [b])[0])
    # the same date, or a phone in common besides the swapped date, is something to go on
    same = features({"ProfileId": pid(3), "FirstName": "David", "LastName": "Miller", "BirthDate": "04/05/1980"})
    assert "nothing but names" not in scorer.guards(comparison_vectors(model, [a], [same])[0])
    phone_a, phone_b = (dict(x, phones=("+14155552671",), phones_personal=("+14155552671",)) for x in (a, b))
    assert "nothing but names" not in scorer.guards(comparison_vectors(model, [phone_a], [phone_b])[0])


def test_two_businesses_with_different_names_and_no_person_are_held():
    model = fitted_model(default_guards=True)
    scorer = Scorer(model)
    shared = {"PhoneNumber": "+1 415 555 2671", "Address": {"Address1": "100 Main St", "PostalCode": "94105"}}
    a = features({"ProfileId": pid(1), "ProfileType": "ACCOUNT_PROFILE", "BusinessName": "Lopez Realty", **shared})
    b = features({"ProfileId": pid(2), "ProfileType": "ACCOUNT_PROFILE", "BusinessName": "Harbor Catering", **shared})
    same = features({"ProfileId": pid(3), "ProfileType": "ACCOUNT_PROFILE", "BusinessName": "LOPEZ REALTY LLC", **shared})
    assert "two businesses" in scorer.guards(comparison_vectors(model, [a], [b])[0])
    assert "two businesses" not in scorer.guards(comparison_vectors(model, [a], [same])[0])


def test_one_business_name_at_one_street_address_lifts_the_no_names_guard_branches_do_not():
    model = fitted_model(default_guards=True)
    scorer = Scorer(model)
    here = {"Address1": "12 Harbour Rd", "PostalCode": "94105", "City": "San Francisco"}
    there = {"Address1": "900 Market St", "PostalCode": "94103", "City": "San Francisco"}

    def company(n, name, address):
        return features({"ProfileId": pid(n), "ProfileType": "ACCOUNT_PROFILE", "BusinessName": name,
                         "PhoneNumber": "+1 415 555 2671", "Address": address})

    same_place = comparison_vectors(model, [company(1, "Zenith Co", here)], [company(2, "ZENITH CO.", here)])[0]
    branch = comparison_vectors(model, [company(1, "Zenith Co", here)], [company(3, "Zenith Co", there)])[0]
    assert "no names and nothing personal" not in scorer.guards(same_place)
    assert "no names and nothing personal" in scorer.guards(branch)


def test_account_numbers_one_after_another_are_not_a_typo():
    model = default_model()

    def level(a, b):
        return label_of(model, "account_number", {"AccountNumber": a}, {"AccountNumber": b})

    # issued in sequence (a couple's accounts opened together, a chain's branches): the last place differs
    assert level("SB-1000", "SB-1001") == "else" and level("4137877", "4137878") == "else"
    # a typo elsewhere, or two digits swapped, is still one
    assert level("4137877", "4137787") == "one typo" and level("4137877", "4133877") == "one typo"
    assert level("4137877", "4137877") == "exact"
