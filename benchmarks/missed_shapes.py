"""What the true pairs a plan misses look like, and what finding them could be worth.

    python benchmarks/missed_shapes.py --profiles P.jsonl --plan OUT/merge_plan.jsonl --truth T.csv

For each true pair (same cluster in the truth) that the plan leaves apart, it takes the reason
``python -m pipeline.evaluate --why_missed`` gives (from the ``review.jsonl`` beside the plan, or
``--review``) and the pair's shape from the two profiles as the job reads them: their birth dates
(the same, apart by up to 15 years, further apart, or one missing) and their account numbers (the
same, different, or one missing). It prints a row per reason and shape, then the most the
plan's pairwise F1 could be (at its precision) if every missed pair were found except those
held by a guard, and except those held by a guard whose account numbers differ.

It is the evidence for what a bar on a labelled set asks of the guards. On FEBRL 3 most pairs the
guards hold look like two members of one household: one surname and address, first names that
share nothing, and one birth date (twins' shape) or birth dates a generation apart; the set's
duplicates were made by replacing those fields (see README, Quality).
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.evaluate import f1, missed_pairs, pairwise_scores, read_plan, read_review, read_truth  # noqa: E402
from transforms.normalize import profile_features  # noqa: E402

GUARD = "guard: "
GENERATION_YEARS = 15


def birth_shape(a: str | None, b: str | None) -> str:
    """Two ISO birth dates (or None): ``same``, ``apart <= 15 years``, ``apart > 15 years`` or ``one missing``."""
    if not a or not b:
        return "one missing"
    if a == b:
        return "same"
    return f"apart > {GENERATION_YEARS} years" if abs(int(a[:4]) - int(b[:4])) > GENERATION_YEARS \
        else f"apart <= {GENERATION_YEARS} years"


def account_shape(a: str | None, b: str | None) -> str:
    """Two account numbers as the job folds them: ``same``, ``different`` or ``one missing``."""
    if not a or not b:
        return "one missing"
    return "same" if a == b else "different"


def shapes(missed: list[tuple[str, str, str]], features: dict[str, dict]) -> collections.Counter:
    """``(reason, birth dates, account numbers) -> pairs`` over missed ``(a, b, reason)`` pairs."""
    counted: collections.Counter = collections.Counter()
    for a, b, reason in missed:
        fa, fb = features.get(a, {}), features.get(b, {})
        counted[(reason, birth_shape(fa.get("dob"), fb.get("dob")),
                 account_shape(fa.get("account"), fb.get("account")))] += 1
    return counted


def f1_if_found(scores: dict, found: int) -> float:
    """Pairwise F1 if ``found`` more true pairs were predicted, and no false ones."""
    tp = scores["true_positive_pairs"] + found
    precision = tp / (scores["predicted_pairs"] + found) if scores["predicted_pairs"] + found else 0.0
    return f1(precision, tp / scores["true_pairs"] if scores["true_pairs"] else 0.0)


def read_features(path: str, wanted: set[str]) -> dict[str, dict]:
    """The job's features of the profiles in ``wanted``, by ProfileId (other lines are skipped)."""
    out = {}
    with open(path, "rb") as handle:
        for line in handle:
            try:
                profile = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(profile, dict) and profile.get("ProfileId") in wanted:
                out[profile["ProfileId"]] = profile_features(profile)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", required=True, help="the profiles the job read (JSONL)")
    parser.add_argument("--plan", required=True, help="the job's merge_plan.jsonl")
    parser.add_argument("--truth", required=True, help="truth CSV: profile_id,cluster_id")
    parser.add_argument("--review", help="the job's review.jsonl (default: beside --plan)")
    args = parser.parse_args(argv)
    truth = read_truth(args.truth)
    pred, _ = read_plan(args.plan)
    review = args.review or os.path.join(os.path.dirname(os.path.abspath(args.plan)), "review.jsonl")
    missed = [(a, b, reason) for a, b, reason, _ in missed_pairs(pred, truth, *read_review(review)) if a is not None]
    counted = shapes(missed, read_features(args.profiles, {pid for a, b, _ in missed for pid in (a, b)}))
    print(f"{'pairs':>6}  {'birth dates':<18} {'account numbers':<16} reason")
    for (reason, birth, account), n in sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{n:>6}  {birth:<18} {account:<16} {reason}")
    scores = pairwise_scores(pred, truth)
    guarded = sum(n for (reason, _, _), n in counted.items() if reason.startswith(GUARD))
    guarded_apart = sum(n for (reason, _, account), n in counted.items()
                        if reason.startswith(GUARD) and account != "same")
    print(f"missed {len(missed)} of {scores['true_pairs']} true pairs; F1 now {scores['f1']:.4f}")
    print(f"F1 if every missed pair but the {guarded} a guard holds were found: "
          f"{f1_if_found(scores, len(missed) - guarded):.4f}")
    print(f"F1 if also the guards' pairs sharing an account number were found (all but {guarded_apart}): "
          f"{f1_if_found(scores, len(missed) - guarded_apart):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
