"""Tests for transforms/estimate.py: u from random pairs, EM on a known mixture, per-rule left-out, prior."""
from __future__ import annotations

import json
import math
from collections import Counter

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that

from tests.helpers import collect_to, pid
from transforms.estimate import (
    ALL_PAIRS,
    EstimateModel,
    SmallestIds,
    pattern_counts,
    comparison_fields,
    estimate_u,
    estimate_u_or_default,
    expectation_maximisation,
    rule_involves,
)
from transforms.model import MODEL_VERSION, default_model, validate_model

# Three comparisons, each: null, exact, close, else. True parameters of the simulated mixture.
TRUE_M = np.array([[0.80, 0.15, 0.05], [0.70, 0.20, 0.10], [0.90, 0.05, 0.05]])
TRUE_U = np.array([[0.02, 0.08, 0.90], [0.05, 0.10, 0.85], [0.01, 0.04, 0.95]])
TRUE_PRIOR = 0.1
NULL_SHARE = 0.1


def mixture_model(seed_m=(0.5, 0.3, 0.2)) -> dict:
    comparisons = []
    for name in ("a", "b", "c"):
        comparisons.append({"name": name, "levels": [
            {"label": "null", "kind": "null", "fields": [name]},
            {"label": "exact", "kind": "exact", "field": name, "m": seed_m[0]},
            {"label": "close", "kind": "similarity", "field": name, "scorer": "jaro_winkler", "threshold": 0.8,
             "m": seed_m[1]},
            {"label": "else", "kind": "else", "m": seed_m[2]},
        ]})
    return {"version": MODEL_VERSION, "comparisons": comparisons, "guards": [], "prior": None,
            "blocking_rules": [{"name": "by_a", "fields": ["a"]}, {"name": "by_b", "fields": ["b"]}]}


def u_tables():
    return [[1.0] + list(row) for row in TRUE_U]


def simulate(n: int, seed: int, force: dict | None = None):
    """Patterns of n pairs from the mixture; ``force`` fixes a comparison's level for every pair."""
    rng = np.random.default_rng(seed)
    is_match = rng.random(n) < TRUE_PRIOR
    patterns = np.zeros((n, 3), dtype=int)
    for column in range(3):
        from_m = rng.choice(3, size=n, p=TRUE_M[column]) + 1
        from_u = rng.choice(3, size=n, p=TRUE_U[column]) + 1
        level = np.where(is_match, from_m, from_u)
        level[rng.random(n) < NULL_SHARE] = 0
        patterns[:, column] = level
    for column, level in (force or {}).items():
        patterns[:, column] = level
    return patterns, is_match


def histogram(rule: str, patterns) -> list:
    return [((rule, tuple(int(x) for x in row)), count) for row, count in Counter(map(tuple, patterns)).items()]


def m_of(model, column):
    return np.array([level["m"] for level in model["comparisons"][column]["levels"][1:]])


# --------------------------------------------------------------------------- EM


def test_em_recovers_known_m_from_a_mixture():
    patterns, is_match = simulate(20_000, seed=7)
    result = expectation_maximisation(mixture_model(), histogram(ALL_PAIRS, patterns), u_tables(), n_profiles=2)
    for column in range(3):
        assert m_of(result, column) == pytest.approx(TRUE_M[column], abs=0.03), result["comparisons"][column]["name"]
        assert [level["u"] for level in result["comparisons"][column]["levels"][1:]] == list(TRUE_U[column])
        assert "m" not in result["comparisons"][column]["levels"][0]
    # n(n-1)/2 below the candidates: the prior is the share of matches among the candidates
    assert result["prior"] == pytest.approx(is_match.mean(), abs=0.015)
    assert result["estimation"]["candidate_pairs"] == 20_000
    validate_model(result)


def test_em_does_not_depend_on_the_seed_m():
    patterns, _ = simulate(20_000, seed=8)
    hist = histogram(ALL_PAIRS, patterns)
    one = expectation_maximisation(mixture_model((0.6, 0.3, 0.1)), hist, u_tables(), n_profiles=2)
    two = expectation_maximisation(mixture_model((0.34, 0.33, 0.33)), hist, u_tables(), n_profiles=2)
    for column in range(3):
        assert m_of(one, column) == pytest.approx(m_of(two, column), abs=0.01)


def test_em_leaves_out_the_comparisons_a_rule_blocks_on():
    # Pairs found by blocking on "a" agree on "a" by construction (matches and non-matches alike).
    by_a, _ = simulate(40_000, seed=9, force={0: 1})
    everything, _ = simulate(20_000, seed=10)
    hist = histogram("by_a", by_a) + histogram(ALL_PAIRS, everything)
    result = expectation_maximisation(mixture_model(), hist, u_tables(), n_profiles=2)
    per_rule = result["estimation"]["per_blocking_rule"]
    assert per_rule["by_a"]["left_out"] == ["a"]
    assert per_rule["by_a"]["pairs"] == 40_000
    # "a" says nothing among by_a's pairs: its m comes from all pairs, not from a rule where it always agrees
    assert m_of(result, 0) == pytest.approx(TRUE_M[0], abs=0.03)
    # the others are estimated from by_a's pairs (two comparisons only: a looser tolerance)
    for column in (1, 2):
        assert m_of(result, column) == pytest.approx(TRUE_M[column], abs=0.04)


def test_em_without_leaving_out_would_be_fooled():
    # the same by_a pairs under a name that is not a blocking rule: nothing is left out, and m("a")
    # is pushed towards "always exact" -- which is what leaving the rule's own fields out prevents
    by_a, _ = simulate(20_000, seed=9, force={0: 1})
    result = expectation_maximisation(mixture_model(), histogram("not_a_rule", by_a), u_tables(), n_profiles=2)
    assert result["estimation"]["per_blocking_rule"]["not_a_rule"]["left_out"] == []
    assert m_of(result, 0)[0] > 0.99


def test_consistent_prior_is_a_fixed_point_on_the_scale_of_all_pairs():
    patterns, is_match = simulate(20_000, seed=11)
    n_profiles = 1000   # ~500k pairs in all, 20k candidates
    result = expectation_maximisation(mixture_model(), histogram(ALL_PAIRS, patterns), u_tables(), n_profiles)
    all_pairs = n_profiles * (n_profiles - 1) / 2
    expected = result["estimation"]["expected_matching_pairs"]
    prior = result["prior"]
    assert prior == pytest.approx(expected / all_pairs, rel=1e-3)
    # the fixed point: with this prior, the posteriors of the candidates add up to prior * all_pairs
    m = np.array([[1.0] + list(m_of(result, c)) for c in range(3)])
    u = np.array([[1.0] + list(row) for row in TRUE_U])
    log_ratio = sum(np.log(m[c, patterns[:, c]] / u[c, patterns[:, c]]) for c in range(3))
    posterior = 1 / (1 + np.exp(-(math.log(prior / (1 - prior)) + log_ratio)))
    assert posterior.sum() == pytest.approx(prior * all_pairs, rel=1e-3)
    # far below the share among candidates, and no more matches than the candidates hold
    assert prior < is_match.mean() / 10
    assert 0 < expected <= is_match.sum() * 1.05
    assert result["estimation"]["match_share_among_candidates"] == pytest.approx(expected / 20_000, abs=1e-6)


def test_em_holds_guarded_patterns_in_the_non_match_class():
    model = mixture_model()
    model["guards"] = [{"name": "a differs", "when": {"a": ["else"]}}]
    patterns, _ = simulate(20_000, seed=13)
    hist = histogram("by_b", patterns) + histogram(ALL_PAIRS, patterns)
    result = expectation_maximisation(model, hist, u_tables(), n_profiles=2)
    m_a = m_of(result, 0)
    # No match lands on a guarded level: only the prior pseudo-counts keep it above zero.
    assert m_a[2] < 0.01
    assert m_a[:2].sum() == pytest.approx(1.0, abs=0.01)
    unguarded = expectation_maximisation(mixture_model(), hist, u_tables(), n_profiles=2)
    assert m_of(unguarded, 0)[2] == pytest.approx(TRUE_M[0][2], abs=0.03)


def test_a_guard_about_too_little_evidence_stays_out_of_estimation():
    model = mixture_model()
    model["guards"] = [{"name": "a differs", "when": {"a": ["else"]}, "in_estimation": False}]
    patterns, _ = simulate(20_000, seed=13)
    hist = histogram("by_b", patterns) + histogram(ALL_PAIRS, patterns)
    result = expectation_maximisation(model, hist, u_tables(), n_profiles=2)
    unguarded = expectation_maximisation(mixture_model(), hist, u_tables(), n_profiles=2)
    assert m_of(result, 0) == pytest.approx(m_of(unguarded, 0))
    assert m_of(result, 0)[2] == pytest.approx(TRUE_M[0][2], abs=0.03)


def test_em_with_no_candidate_pairs_keeps_the_seed_m():
    model = mixture_model()
    result = expectation_maximisation(model, [], u_tables(), n_profiles=100)
    assert m_of(result, 0) == pytest.approx([0.5, 0.3, 0.2])
    assert 0 < result["prior"] < 1e-6
    assert result["estimation"]["note"]


# ------------------------------------------------------------------ rule_involves


def test_rule_involves_on_the_default_model():
    model = default_model()
    names = [c["name"] for c in model["comparisons"]]

    def involved(rule_name):
        rule = next(r for r in model["blocking_rules"] if r["name"] == rule_name)
        return {n for n, hit in zip(names, rule_involves(model, rule)) if hit}

    assert involved("phone") == {"phone"}
    assert involved("email") == {"email"}
    assert involved("email_user") == {"email"}          # email_users is read from the emails
    assert involved("account_number") == {"account_number"}
    assert "birth_date" in involved("birth_year+first_name")  # dob_year is part of the birth date
    assert "location" in involved("postcode+last_name_phonetic")
    assert {"first_name", "last_name"} <= involved("first_and_last_name_in_any_order")
    assert "phone" not in involved("birth_date+city") and "email" not in involved("birth_date+city")


def test_comparison_fields_follow_derived_features():
    model = default_model()
    by_name = {c["name"]: comparison_fields(c) for c in model["comparisons"]}
    assert by_name["location"] == {"location"}
    assert by_name["phone"] == {"phones"}
    assert {"first", "last"} <= by_name["first_name"]


# ------------------------------------------------------------------------ u


def sample(n, **extra):
    return [{"id": pid(i), "x": f"value-{i}", **{k: v(i) for k, v in extra.items()}} for i in range(n)]


def exact_model(field="x"):
    return {"comparisons": [{"name": "x", "levels": [
        {"label": "null", "kind": "null", "fields": [field]},
        {"label": "exact", "kind": "exact", "field": field},
        {"label": "else", "kind": "else"}]}]}


def test_estimate_u_level_never_seen_gets_a_small_nonzero_u():
    u = estimate_u(exact_model(), sample(50))
    pairs = 50 * 49 // 2
    assert u == [[1.0, pytest.approx(0.5 / pairs), 1.0]]
    assert 0 < u[0][1] < 1e-3


def test_estimate_u_counts_levels_among_random_pairs():
    # x takes 5 values, 10 profiles each: 5 * C(10, 2) = 225 agreeing pairs of C(50, 2) = 1225
    profiles = [{"id": pid(i), "x": f"v{i % 5}"} for i in range(50)]
    [[null, exact, other]] = estimate_u(exact_model(), profiles)
    assert null == 1.0
    assert exact == pytest.approx(225 / 1225)
    assert other == pytest.approx(1000 / 1225)


def test_estimate_u_ignores_null_pairs():
    profiles = [{"id": pid(i), "x": "" if i < 10 else f"v{i % 2}"} for i in range(30)]
    [[_, exact, other]] = estimate_u(exact_model(), profiles)
    assert exact + other == pytest.approx(1.0)   # shares of the non-null pairs only
    assert exact == pytest.approx(2 * 45 / 190)


def test_estimate_u_sampled_pairs_never_pair_a_profile_with_itself():
    # more pairs than max_pairs: random pairs are drawn; an "exact id" level would catch a self-pair
    u = estimate_u(exact_model("id"), sample(100), max_pairs=2000, seed=1)
    assert u[0][1] == pytest.approx(0.5 / 2000)
    assert estimate_u(exact_model("id"), sample(100), max_pairs=2000, seed=1) == u   # deterministic


def test_estimate_u_needs_two_profiles_and_the_default_is_neutral():
    with pytest.raises(ValueError):
        estimate_u(exact_model(), sample(1))
    assert estimate_u_or_default(sample(1), exact_model(), 100, 1) == [[1.0, 1.0, 1.0]]


# ------------------------------------------------------------------------- Beam


def test_estimate_model_transform():
    model = mixture_model()
    features = [{"id": pid(i), "a": f"a{i % 7}", "b": f"b{i % 3}", "c": f"c{i}"} for i in range(40)]
    patterns, _ = simulate(2000, seed=12)
    # partial counts, as batches send them (here one per pair): the transform sums them per key
    rule_patterns = [((ALL_PAIRS, tuple(int(x) for x in row)), 1) for row in patterns]

    def check(models):
        [fitted] = models
        validate_model(fitted)
        assert fitted["estimation"]["profiles"] == 40
        assert fitted["estimation"]["candidate_pairs"] == 2000
        # u from the 40 profiles: "c" is unique per profile, so its exact level was never seen
        assert fitted["comparisons"][2]["levels"][1]["u"] == pytest.approx(0.5 / (40 * 39 / 2))

    with beam.Pipeline(runner="FnApiRunner") as p:
        out = (p | "F" >> beam.Create(features), p | "P" >> beam.Create(rule_patterns)) | EstimateModel(model, sample_size=100)
        assert_that(out, check)


def test_pattern_counts_of_a_batch_count_each_pair_under_all_and_each_of_its_rules():
    batch = {"rules": [("phone",), ("phone", "email"), ("email",)],
             "patterns": np.array([[1, 0], [1, 0], [2, 1]], dtype=np.int8)}
    assert pattern_counts(batch) == {
        (ALL_PAIRS, (1, 0)): 2, (ALL_PAIRS, (2, 1)): 1,
        ("phone", (1, 0)): 2, ("email", (1, 0)): 1, ("email", (2, 1)): 1,
    }


def test_smallest_ids_is_the_same_sample_from_records_or_batches_in_any_grouping():
    features = [{"id": f"{(n * 7919) % 1000:03d}", "n": n} for n in range(1000)]
    expected = sorted(features, key=lambda f: f["id"])[:50]
    combine = SmallestIds(50)
    one = combine.create_accumulator()
    for f in features:
        one = combine.add_input(one, f)
    assert combine.extract_output(one) == expected
    parts = []
    for start in range(0, 1000, 130):
        part = combine.add_input(combine.create_accumulator(), features[start:start + 130])
        parts.append(part)
    assert combine.extract_output(combine.merge_accumulators(parts)) == expected
    assert combine.extract_output(combine.create_accumulator()) == []


def test_estimate_model_takes_batches_of_features(tmp_path):
    model = mixture_model()
    features = [{"id": pid(i), "a": f"a{i % 7}", "b": f"b{i % 3}", "c": f"c{i}"} for i in range(40)]
    patterns, _ = simulate(500, seed=3)
    rule_patterns = [((ALL_PAIRS, tuple(int(x) for x in row)), 1) for row in patterns]

    def fitted(feature_input, path):
        with beam.Pipeline(runner="FnApiRunner") as p:
            out = (p | "F" >> beam.Create(feature_input), p | "P" >> beam.Create(rule_patterns)) | EstimateModel(
                model, sample_size=30)
            assert_that(out, collect_to(path))
        [fitted_model] = json.loads(path.read_text())
        return fitted_model

    single = fitted(features, tmp_path / "single.json")
    batched = fitted([features[:15], features[15:]], tmp_path / "batched.json")
    assert batched["estimation"]["profiles"] == 40
    assert batched == single
