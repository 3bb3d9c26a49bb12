"""Can the data tell whether a shared AccountNumber names one person or one household?

    python benchmarks/shared_identifier.py --profiles P.jsonl --truth T.csv [--field account]

Takes every pair of profiles that share a value of a feature (``account`` by default, the
folded AccountNumber) and both have a first name, puts it into the model's own first-name and
birth-date levels (``comparison_vectors`` with the default model, as the job does), and prints
how many pairs disagree on each (the "else" level the guards look at) and, with the truth, how
many of those are one person. Values held by more than ``--max_block_size`` profiles are
skipped, as blocking skips them.

It is the evidence for keeping the guards "different first names" and "birth dates a
generation apart" when an account number agrees: in a domain whose account numbers belong to
one person (FEBRL's ``soc_sec_id``) such pairs are duplicates with a replaced name; where a
household shares an account (the project's generator, and many real CRMs) they are its other
members. A label-free statistic can only tell the two apart if the shares differ, and they do
not (see README, Quality).
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.evaluate import read_truth  # noqa: E402
from transforms.compare import comparison_vectors  # noqa: E402
from transforms.model import default_model  # noqa: E402
from transforms.normalize import profile_features  # noqa: E402


def shared_value_pairs(features: list[dict], field: str, max_block_size: int) -> list[tuple[dict, dict]]:
    """Pairs of profiles (both with a first name) that share a non-empty value of ``field``."""
    holders = collections.defaultdict(list)
    for feature in features:
        if feature.get(field) and feature.get("first"):
            holders[feature[field]].append(feature)
    return [pair for group in holders.values() if len(group) <= max_block_size
            for pair in itertools.combinations(group, 2)]


def disagreement_table(pairs: list[tuple[dict, dict]], truth: dict[str, str] | None) -> list[tuple[str, int, int | None]]:
    """Rows ``(what, pairs, of which one person)``: all pairs, then those at the first-name and
    birth-date "else" levels, and at both."""
    model = default_model()
    names = [c["name"] for c in model["comparisons"]]
    first, dob = names.index("first_name"), names.index("birth_date")
    else_first = len(model["comparisons"][first]["levels"]) - 1
    else_dob = len(model["comparisons"][dob]["levels"]) - 1
    patterns = comparison_vectors(model, [a for a, _ in pairs], [b for _, b in pairs]) if pairs else []
    rows = collections.Counter()
    same = collections.Counter()
    for (a, b), pattern in zip(pairs, patterns):
        kinds = ["all pairs sharing the value"]
        if pattern[first] == else_first:
            kinds.append("first names unrelated")
        if pattern[dob] == else_dob:
            kinds.append("birth dates a generation apart")
        if pattern[first] == else_first and pattern[dob] == else_dob:
            kinds.append("both")
        one_person = truth is not None and truth.get(a["id"]) is not None and truth.get(a["id"]) == truth.get(b["id"])
        for kind in kinds:
            rows[kind] += 1
            same[kind] += one_person
    order = ["all pairs sharing the value", "first names unrelated", "birth dates a generation apart", "both"]
    return [(kind, rows[kind], same[kind] if truth is not None else None) for kind in order]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", required=True, help="Profile JSON Lines")
    parser.add_argument("--truth", help="CSV with profile_id and cluster_id")
    parser.add_argument("--field", default="account", help="the feature to group by (default: account)")
    parser.add_argument("--max_block_size", type=int, default=50)
    parser.add_argument("--default_region", default="US")
    args = parser.parse_args(argv)
    with open(args.profiles, encoding="utf-8") as lines:
        features = [profile_features(json.loads(line), args.default_region, ()) for line in lines if line.strip()]
    truth = read_truth(args.truth) if args.truth else None
    pairs = shared_value_pairs(features, args.field, args.max_block_size)
    print(f"{len(features):,} profiles, {len(pairs):,} pairs sharing a value of {args.field!r}")
    print(f"| {'pairs':<32} | {'count':>7} | {'share':>6} | {'one person':>10} |")
    print(f"| {'-' * 32} | {'-' * 7}:| {'-' * 6}:| {'-' * 10}:|")
    table = disagreement_table(pairs, truth)
    total = table[0][1] or 1
    for kind, count, one_person in table:
        person = "" if one_person is None else f"{one_person:,}"
        print(f"| {kind:<32} | {count:>7,} | {count / total:>6.1%} | {person:>10} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
