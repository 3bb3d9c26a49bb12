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
import math

import apache_beam as beam
import numpy as np

from transforms.compare import comparison_vectors

# Probabilities are kept away from 0 and 1 so that every weight is finite.
_FLOOR = 1e-6


def estimate_u(model: dict, sample: list[dict], max_pairs: int = 200_000, seed: int = 42) -> list[list[float]]:
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


def expectation_maximisation(model: dict, histogram: list[tuple[tuple[int, ...], int]], u_tables: list[list[float]],
                             n_profiles: int, max_iterations: int = 200, tolerance: float = 1e-7) -> dict:
    """Estimate m per level and the prior probability of a match from a pattern histogram.

    ``histogram`` is ``[(pattern, count)]`` over candidate pairs; u is held fixed.
    EM gives the share of matches among *candidate* pairs. Because u describes
    *random* pairs, the prior used for scoring is put on the same scale: the
    expected number of matching pairs divided by all ``n(n-1)/2`` pairs of the
    input. (Matches that blocking missed are not counted, which only makes the
    prior, and so every score, a little more cautious.)

    Returns a new model with ``m``, ``u`` on every non-null level, ``prior`` and an
    ``estimation`` record (iterations, converged, pairs, share among candidates).
    """
    result = copy.deepcopy(model)
    comparisons = result["comparisons"]
    if not histogram:
        for comparison, u_table in zip(comparisons, u_tables):
            for index, level in enumerate(comparison["levels"][1:], start=1):
                level["m"] = float(level.get("m", 0.1))
                level["u"] = float(u_table[index])
        result["prior"] = 1e-6
        result["estimation"] = {"candidate_pairs": 0, "iterations": 0, "converged": False, "note": "no candidate pairs"}
        return result

    patterns = np.array([p for p, _ in histogram], dtype=np.intp)
    counts = np.array([c for _, c in histogram], dtype=float)
    total = counts.sum()
    n_comp = len(comparisons)
    width = max(len(c["levels"]) for c in comparisons)
    m = np.ones((n_comp, width))
    u = np.ones((n_comp, width))
    for i, (comparison, u_table) in enumerate(zip(comparisons, u_tables)):
        levels = comparison["levels"]
        init = np.array([1.0] + [float(level.get("m", 1.0)) for level in levels[1:]])
        init[1:] = init[1:] / init[1:].sum()
        m[i, : len(levels)] = init
        u[i, : len(levels)] = u_table
    columns = np.arange(n_comp)
    log_u = np.log(u[columns, patterns]).sum(axis=1)
    prior = 0.5
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        log_m = np.log(m[columns, patterns]).sum(axis=1)
        a = math.log(prior) + log_m
        b = math.log(1.0 - prior) + log_u
        top = np.maximum(a, b)
        responsibility = np.exp(a - top) / (np.exp(a - top) + np.exp(b - top))
        weighted = responsibility * counts
        new_prior = float(weighted.sum() / total)
        new_m = np.ones_like(m)
        for i, comparison in enumerate(comparisons):
            n_levels = len(comparison["levels"])
            sums = np.bincount(patterns[:, i], weights=weighted, minlength=n_levels)[:n_levels]
            sums[0] = 0.0
            denominator = sums[1:].sum()
            if denominator <= 0:
                new_m[i, 1:n_levels] = m[i, 1:n_levels]
            else:
                new_m[i, 1:n_levels] = np.clip(sums[1:] / denominator, _FLOOR, 1.0)
        new_prior = min(max(new_prior, _FLOOR), 1 - _FLOOR)
        change = max(abs(new_prior - prior), float(np.abs(new_m - m).max()))
        m, prior = new_m, new_prior
        if change < tolerance:
            converged = True
            break
    all_pairs = max(n_profiles * (n_profiles - 1) / 2, total)
    expected_matches = prior * total
    for i, comparison in enumerate(comparisons):
        for index, level in enumerate(comparison["levels"]):
            if index == 0:
                level.pop("m", None)
                level.pop("u", None)
                continue
            level["m"] = float(m[i, index])
            level["u"] = float(u[i, index])
    result["prior"] = min(max(expected_matches / all_pairs, _FLOOR * _FLOOR), 0.5)
    result["estimation"] = {"candidate_pairs": int(total), "profiles": int(n_profiles), "iterations": iteration,
                            "converged": converged, "distinct_patterns": len(histogram),
                            "match_share_among_candidates": prior, "expected_matching_pairs": expected_matches}
    return result


class EstimateModel(beam.PTransform):
    """(features, candidate patterns) -> a one-element PCollection holding the estimated model.

    Input is a tuple ``(features, patterns)``: all feature dicts, and the pattern
    tuple of every candidate pair.
    """

    def __init__(self, model: dict, sample_size: int = 3000, max_u_pairs: int = 200_000, seed: int = 42):
        super().__init__()
        self._model = model
        self._sample_size = sample_size
        self._max_u_pairs = max_u_pairs
        self._seed = seed

    def expand(self, inputs):
        features, patterns = inputs
        model = self._model
        sample = features | "SampleForU" >> beam.combiners.Top.Of(
            self._sample_size, key=lambda f: f["id"], reverse=True)
        u_tables = sample | "EstimateU" >> beam.Map(
            estimate_u_or_default, model, self._max_u_pairs, self._seed)
        histogram = patterns | "PatternHistogram" >> beam.combiners.Count.PerElement()
        n_profiles = features | "CountProfiles" >> beam.combiners.Count.Globally()
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
