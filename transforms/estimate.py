"""Estimate the model's m and u probabilities from the data itself, with no labels.

* **u** (how often two *different* people land on a level) comes from random
  pairs: a deterministic sample of profiles (the smallest ProfileIds, which are
  random hex) and seeded random pairs among them. Duplicates are so rare among
  random pairs that they barely move u.
* **m** (how often *the same* person lands on a level) and the prior share of
  matches among candidate pairs come from expectation-maximisation over the
  histogram of comparison patterns of the candidate pairs, with u held fixed.

Both steps are whole-dataset but small: the sample is bounded, and the histogram
has at most one entry per distinct pattern (a few thousand), so the EM itself runs
on one worker in milliseconds.
"""
from __future__ import annotations

import copy
import heapq
import math
from collections import Counter

import apache_beam as beam
import numpy as np

from transforms.compare import comparison_vectors
from transforms.model import guard_hits
from transforms.normalize import FEATURE_SOURCES
from transforms.packing import count_records, records

# Probabilities are kept away from 0 and 1 so that every weight is finite.
_FLOOR = 1e-6
# Weight, in matching pairs, of the initial m values in each EM update.
PRIOR_PAIRS = 10.0
# Histogram key of the pattern of every candidate pair counted once (by its owner rule).
ALL_PAIRS = "*"


def estimate_u(model: dict, sample: list[dict], max_pairs: int = 100_000, seed: int = 42) -> list[list[float]]:
    """u per comparison level from random pairs of ``sample`` (null levels get 1.0).

    A level never seen among the random pairs gets half a count, so its u stays
    small but finite (its weight is then a cautious upper bound, not infinity).
    """
    ordered = sorted(sample, key=lambda f: f["id"])
    n = len(ordered)
    if n < 2:
        raise ValueError("need at least 2 profiles to estimate u")
    rng = np.random.default_rng(seed)
    total = n * (n - 1) // 2
    if total <= max_pairs:
        left_idx, right_idx = np.triu_indices(n, k=1)
    else:
        left_idx = rng.integers(0, n, size=max_pairs)
        right_idx = rng.integers(0, n - 1, size=max_pairs)
        right_idx = np.where(right_idx >= left_idx, right_idx + 1, right_idx)
    patterns = comparison_vectors(model, [ordered[i] for i in left_idx], [ordered[i] for i in right_idx])
    u_tables = []
    for column, comparison in enumerate(model["comparisons"]):
        levels = comparison["levels"]
        counts = np.bincount(patterns[:, column], minlength=len(levels)).astype(float)
        counts[0] = 0.0  # null level: no evidence
        seen = counts[1:].sum()
        table = [1.0]
        for index in range(1, len(levels)):
            count = counts[index] if counts[index] > 0 else 0.5
            table.append(min(max(count / max(seen, 1.0), _FLOOR), 1.0))
        u_tables.append(table)
    return u_tables


def _em(patterns: np.ndarray, counts: np.ndarray, m: np.ndarray, u: np.ndarray, active: np.ndarray,
        level_counts: list[int], max_iterations: int, tolerance: float, non_match: np.ndarray | None = None):
    """Two-class EM with u fixed. Returns (m, share of matches, iterations, converged).

    Only ``active`` comparisons take part; the others are treated as null (no
    evidence) and keep their m. Patterns flagged in ``non_match`` (those a guard
    never lets merge) are held in the non-match class.
    """
    columns = np.flatnonzero(active)
    if len(columns) == 0 or counts.sum() == 0:
        return m, 0.0, 0, False
    m_prior = m.copy()
    sub = patterns[:, columns]
    log_u = np.log(u[columns, sub]).sum(axis=1)
    total = counts.sum()
    prior, converged, iteration = 0.5, False, 0
    for iteration in range(1, max_iterations + 1):
        log_m = np.log(m[columns, sub]).sum(axis=1)
        a = math.log(prior) + log_m
        b = math.log(1.0 - prior) + log_u
        top = np.maximum(a, b)
        responsibility = np.exp(a - top) / (np.exp(a - top) + np.exp(b - top))
        if non_match is not None:
            responsibility[non_match] = 0.0
        weighted = responsibility * counts
        new_prior = min(max(float(weighted.sum() / total), _FLOOR), 1 - _FLOOR)
        new_m = m.copy()
        for i in columns:
            n_levels = level_counts[i]
            sums = np.bincount(patterns[:, i], weights=weighted, minlength=n_levels)[:n_levels]
            # MAP estimate with a Dirichlet prior worth PRIOR_PAIRS matches spread as
            # the initial m: a level EM barely sees keeps a sensible m instead of
            # collapsing to zero (which would make a near-match weigh like a clash).
            sums[1:] += PRIOR_PAIRS * m_prior[i, 1:n_levels]
            denominator = sums[1:].sum()
            if denominator > 0:
                new_m[i, 1:n_levels] = np.clip(sums[1:] / denominator, _FLOOR, 1.0)
        change = max(abs(new_prior - prior), float(np.abs(new_m - m).max()))
        m, prior = new_m, new_prior
        if change < tolerance:
            converged = True
            break
    return m, prior, iteration, converged


def _guarded(model: dict, patterns: np.ndarray) -> np.ndarray:
    """Which patterns trip a guard: pairs the model never merges count as non-matches in EM.

    Without this, households (same phone, address and last name, different first
    names) look like matches to EM and teach it that duplicates often disagree on
    first names, which would weaken the very evidence that tells them apart. A guard
    about too little evidence rather than a disagreement (``"in_estimation": false``)
    says nothing about which its pairs are, and is left out.
    """
    labels = {c["name"]: [level["label"] for level in c["levels"]] for c in model["comparisons"]}
    names = [c["name"] for c in model["comparisons"]]
    compiled = [
        (g["name"],
         {names.index(c): {labels[c].index(x) for x in xs} for c, xs in g["when"].items()},
         {names.index(c): {labels[c].index(x) for x in xs} for c, xs in g.get("unless", {}).items()})
        for g in model.get("guards", []) if g.get("in_estimation", True)
    ]
    return np.array([bool(guard_hits(compiled, row)) for row in patterns], dtype=bool)


def _consistent_prior(patterns, counts, m, u, all_pairs, iterations: int = 100):
    """The prior p for which the model expects p * all_pairs matches among the candidates.

    Fixed point of: p -> (sum over candidate pairs of P(match | pattern, p)) / all_pairs.
    Returns (p, expected number of matching candidate pairs).
    """
    if len(counts) == 0:
        return 1e-9, 0.0
    columns = np.arange(m.shape[0])
    log_ratio = (np.log(m[columns, patterns]) - np.log(u[columns, patterns])).sum(axis=1)
    prior = min(counts.sum() / all_pairs, 0.5)
    expected = 0.0
    for _ in range(iterations):
        logit = np.clip(math.log(prior / (1 - prior)) + log_ratio, -700, 700)
        expected = float((counts / (1.0 + np.exp(-logit))).sum())
        new_prior = min(max(expected / all_pairs, 1e-9), 0.5)
        if abs(new_prior - prior) <= 1e-12 + 1e-6 * prior:
            prior = new_prior
            break
        prior = new_prior
    return prior, expected


def comparison_fields(comparison: dict, raw: bool = False) -> set[str]:
    """Base feature names a comparison reads (through all its levels); ``raw``: the
    feature names themselves, not the base features they derive from."""
    fields: set[str] = set()

    def visit(condition):
        fields.update(condition.get("fields", []))
        if "field" in condition:
            fields.add(condition["field"])
        for part in condition.get("of", []):
            visit(part)

    for level in comparison["levels"]:
        visit(level)
    if comparison.get("as_written"):
        fields.add("written")
    if raw:
        return fields
    return {base for f in fields for base in FEATURE_SOURCES.get(f, (f,))}


def rule_involves(model: dict, rule: dict) -> np.ndarray:
    """Which comparisons look at a feature that a blocking rule blocks on."""
    rule_fields = {base for f in rule["fields"] for base in FEATURE_SOURCES.get(f, (f,))}
    return np.array([bool(comparison_fields(c) & rule_fields) for c in model["comparisons"]])


def expectation_maximisation(model: dict, histogram: list[tuple[tuple[str, tuple[int, ...]], int]],
                             u_tables: list[list[float]], n_profiles: int,
                             max_iterations: int = 200, tolerance: float = 1e-7) -> dict:
    """Estimate m per level and the prior probability of a match, with no labels.

    ``histogram`` is ``[((blocking rule name, pattern), count)]``: for each rule,
    the patterns of every candidate pair that rule produces (a pair found by two
    rules counts for both), and under the name ``"*"`` every pair once. u is held
    fixed (from random pairs).

    Pairs found by a blocking rule agree on the rule's fields by construction, so
    those fields say nothing about m among them. As Splink does, EM runs once per
    blocking rule with the comparisons of that rule's own fields left out, and a
    comparison's m is the average over the rules that did not block on it,
    weighted by each rule's expected number of matches. A comparison that every
    rule blocks on is estimated from all candidate pairs together.

    Because u describes *random* pairs, the prior used for scoring is on the same
    scale: the expected number of matching pairs divided by all ``n(n-1)/2`` pairs
    of the input, found as the fixed point where the model's own posterior
    expects that many matches among the candidates. (Matches that blocking
    missed are not counted, which only makes the prior a little more cautious.)

    Returns a new model with ``m``, ``u`` on every non-null level, ``prior`` and an
    ``estimation`` record.
    """
    result = copy.deepcopy(model)
    comparisons = result["comparisons"]
    n_comp = len(comparisons)
    level_counts = [len(c["levels"]) for c in comparisons]
    width = max(level_counts)
    m0 = np.ones((n_comp, width))
    u = np.ones((n_comp, width))
    for i, (comparison, u_table) in enumerate(zip(comparisons, u_tables)):
        init = np.array([1.0] + [float(level.get("m", 1.0)) for level in comparison["levels"][1:]])
        init[1:] = init[1:] / init[1:].sum()
        m0[i, : level_counts[i]] = init
        u[i, : level_counts[i]] = u_table

    by_rule: dict[str, list] = {}
    for (rule, pattern), count in histogram:
        by_rule.setdefault(rule, []).append((pattern, count))
    owned = by_rule.pop(ALL_PAIRS, [])
    rules = {rule["name"]: rule for rule in result["blocking_rules"]}

    sums = np.zeros((n_comp, width))
    weights = np.zeros(n_comp)
    per_rule = {}
    for name, rows in sorted(by_rule.items()):
        patterns = np.array([p for p, _ in rows], dtype=np.intp)
        counts = np.array([c for _, c in rows], dtype=float)
        involved = rule_involves(result, rules[name]) if name in rules else np.zeros(n_comp, dtype=bool)
        m, share, iterations, converged = _em(patterns, counts, m0.copy(), u, ~involved, level_counts,
                                              max_iterations, tolerance, _guarded(result, patterns))
        matches = share * counts.sum()
        per_rule[name] = {"pairs": int(counts.sum()), "match_share": round(share, 6), "iterations": iterations,
                          "converged": converged, "left_out": [comparisons[i]["name"] for i in np.flatnonzero(involved)]}
        for i in np.flatnonzero(~involved):
            sums[i] += matches * m[i]
            weights[i] += matches

    total = sum(c for _, c in owned)
    if total:
        all_patterns = np.array([p for p, _ in owned], dtype=np.intp)
        all_counts = np.array([c for _, c in owned], dtype=float)
        m_all, _, _, _ = _em(all_patterns, all_counts, m0.copy(), u, np.ones(n_comp, dtype=bool),
                             level_counts, max_iterations, tolerance, _guarded(result, all_patterns))
    else:
        all_patterns, all_counts, m_all = np.zeros((0, n_comp), dtype=np.intp), np.zeros(0), m0
    m_final = m0.copy()
    for i in range(n_comp):
        m_final[i] = sums[i] / weights[i] if weights[i] > 0 else m_all[i]
        m_final[i, 0] = 1.0

    for i, comparison in enumerate(comparisons):
        for index, level in enumerate(comparison["levels"]):
            if index == 0:
                level.pop("m", None)
                level.pop("u", None)
                continue
            level["m"] = float(max(m_final[i, index], _FLOOR))
            level["u"] = float(u[i, index])
    all_pairs = max(n_profiles * (n_profiles - 1) / 2, total, 1)
    prior, expected_matches = _consistent_prior(all_patterns, all_counts, m_final, u, all_pairs)
    result["prior"] = prior
    result["estimation"] = {
        "candidate_pairs": int(total), "profiles": int(n_profiles),
        "expected_matching_pairs": round(expected_matches, 2),
        "match_share_among_candidates": round(expected_matches / total, 6) if total else 0.0,
        "per_blocking_rule": per_rule,
        "note": "no candidate pairs: m keeps its initial values" if not total else "",
    }
    return result


def pattern_counts(batch: dict) -> Counter:
    """``(rule, pattern) -> pairs`` of a compared batch (``compare.compare_batch``): every pair
    under ``ALL_PAIRS`` and under each blocking rule that made it a candidate."""
    # a batch holds thousands of pairs but few distinct (rules, pattern) combinations: count
    # those first (in C), then spread each over its rules
    combos = Counter(zip(batch["rules"], map(tuple, batch["patterns"].tolist())))
    counts: Counter = Counter()
    for (rules, pattern), n in combos.items():
        counts[(ALL_PAIRS, pattern)] += n
        for rule in rules:
            counts[(rule, pattern)] += n
    return counts


class SmallestIds(beam.CombineFn):
    """Feature dicts (or batches of them) -> the ``size`` with the smallest ids, in id order.

    ProfileIds are random hex, so this is a sample of profiles that is the same on every
    runner and every run (u is estimated from pairs of it)."""

    def __init__(self, size: int):
        super().__init__()
        self._size = size

    def _trim(self, accumulator: list, slack: int = 1) -> list:
        if len(accumulator) > slack * self._size:
            return heapq.nsmallest(self._size, accumulator, key=lambda f: f["id"])
        return accumulator

    def create_accumulator(self):
        return []

    def add_input(self, accumulator, element):
        accumulator.extend(records(element))
        return self._trim(accumulator, slack=2)

    def merge_accumulators(self, accumulators):
        return self._trim([f for accumulator in accumulators for f in accumulator])

    def extract_output(self, accumulator):
        return sorted(self._trim(accumulator), key=lambda f: f["id"])


class EstimateModel(beam.PTransform):
    """(features, candidate patterns) -> a one-element PCollection holding the estimated model.

    Input is a tuple ``(features, pattern counts)``: all feature dicts (or batches of them), and
    ``((blocking rule name, pattern tuple), pairs)`` counts of the candidate pairs,
    partial counts of the same key being summed here (see ``compare.pattern_counts``).
    """

    def __init__(self, model: dict, sample_size: int = 3000, max_u_pairs: int = 100_000, seed: int = 42):
        super().__init__()
        self._model = model
        self._sample_size = sample_size
        self._max_u_pairs = max_u_pairs
        self._seed = seed

    def expand(self, inputs):
        features, patterns = inputs
        model = self._model
        sample = features | "SampleForU" >> beam.CombineGlobally(SmallestIds(self._sample_size))
        u_tables = sample | "EstimateU" >> beam.Map(
            estimate_u_or_default, model, self._max_u_pairs, self._seed)
        histogram = patterns | "PatternHistogram" >> beam.CombinePerKey(sum)
        n_profiles = (features | "ProfilesIn" >> beam.Map(count_records)
                      | "CountProfiles" >> beam.CombineGlobally(sum))
        return (
            features.pipeline
            | "Once" >> beam.Create([None])
            | "ExpectationMaximisation" >> beam.Map(
                lambda _, hist, u, n: expectation_maximisation(model, sorted(hist), u, n),
                hist=beam.pvalue.AsList(histogram), u=beam.pvalue.AsSingleton(u_tables),
                n=beam.pvalue.AsSingleton(n_profiles))
        )


def estimate_u_or_default(sample: list[dict], model: dict, max_pairs: int, seed: int) -> list[list[float]]:
    """u from the sample, or (fewer than 2 profiles) a neutral table that makes no pair match."""
    if len(sample) < 2:
        return [[1.0] * len(c["levels"]) for c in model["comparisons"]]
    return estimate_u(model, sample, max_pairs, seed)
