#!/usr/bin/env python3
"""Deduplicate the benchmark's Profile JSONL with Splink 5 on DuckDB, for comparison.

    python benchmarks/splink_run.py --profiles profiles.jsonl --truth truth.csv --out DIR

    from benchmarks.splink_run import run_splink    # or load the file by path
    result = run_splink("profiles.jsonl", "truth.csv", "out_dir")

Needs the ``bench`` extra (``pip install -e '.[bench]'``, which brings ``splink>=5``).

Each profile is flattened into one row with the project's own normalisers
(``transforms.normalize.profile_features``), so both tools see equally clean
values: folded first and last names, ISO birth date, the first email matching
key, the first phone in E.164, postcode, first address line key, city and
gender. Where ours keeps several phones or emails per profile, Splink gets the
first one only.

The Splink model mirrors ``transforms.model`` where Splink has a like-for-like
level (see ``comparisons()`` and ``BLOCKING_RULES``); our nickname, swapped-name,
date-swap and same-digits levels, the business name and account number
comparisons and the guards have no counterpart here. Training: the prior from
deterministic rules, u by random sampling, m by EM on two blocking rules;
predict and cluster at match probability 0.95.

Writes ``DIR/splink_clusters.csv`` (profile_id,cluster_id) and
``DIR/splink_result.json``; the CLI prints the result as JSON on its last line.
Scores are pairwise precision / recall / F1 over clusters exactly as
``pipeline.evaluate`` computes them (ids Splink did not cluster are singletons).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.evaluate import pairwise_scores, read_truth  # noqa: E402
from transforms.normalize import profile_features  # noqa: E402

THRESHOLD = 0.95
U_MAX_PAIRS = 1e7
SEED = 6
COLUMNS = ("unique_id", "first_name", "last_name", "dob", "email", "phone", "postcode", "address", "city", "gender")


def flatten(profiles_path: str | Path, default_region: str = "US") -> dict[str, list]:
    """Column lists (None for missing values) of the profiles, one row each, valid or not."""
    table: dict[str, list] = {c: [] for c in COLUMNS}
    with open(profiles_path, "rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                profile = orjson.loads(raw)
                features = profile_features(profile, default_region)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                continue                      # the job's validation drops these too
            row = {
                "unique_id": features["id"],
                "first_name": features["first"],
                "last_name": features["last"],
                "dob": features["dob"],
                "email": features["emails"][0] if features["emails"] else "",
                "phone": features["phones"][0] if features["phones"] else "",
                "postcode": next((p for p in features["postcodes"] if p), ""),
                "address": features["address"],
                "city": features["city"],
                "gender": features["gender"],
            }
            for column in COLUMNS:
                table[column].append(row[column] or None)
    return table


def comparisons():
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    location = cl.CustomComparison(
        output_column_name="location",
        comparison_description="Postcode, street line and city",
        comparison_levels=[
            cll.And(cll.NullLevel("postcode"), cll.NullLevel("address"), cll.NullLevel("city"))
            .configure(is_null_level=True),
            cll.And(cll.ExactMatchLevel("postcode"), cll.JaroWinklerLevel("address", 0.9))
            .configure(label_for_charts="postcode and street"),
            cll.ExactMatchLevel("postcode").configure(label_for_charts="postcode"),
            cll.And(cll.JaroWinklerLevel("address", 0.9), cll.ExactMatchLevel("city"))
            .configure(label_for_charts="street and city"),
            cll.ExactMatchLevel("city").configure(label_for_charts="city"),
            cll.ElseLevel(),
        ],
    )
    return [
        cl.NameComparison("first_name", jaro_winkler_thresholds=[0.92, 0.80]),     # TF on exact
        cl.NameComparison("last_name", jaro_winkler_thresholds=[0.92, 0.80]),      # TF on exact
        cl.DateOfBirthComparison("dob", input_is_string=True, datetime_thresholds=[1, 1, 15],
                                 datetime_metrics=["month", "year", "year"]),
        cl.EmailComparison("email"),                                                 # TF on exact
        cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
        location,
        cl.ExactMatch("gender"),
    ]


# Ours, minus what Splink cannot express the same way: the phonetic last-name key is
# the plain last name here, multi-valued phones/emails are the first value, and our
# max_block_size cap (birth date alone, 30) has no counterpart, so that rule is left out.
BLOCKING_RULES = (
    ("phone",), ("email",), ("dob", "last_name"), ("first_name", "last_name"), ("postcode", "last_name"),
    ("dob", "city"), ("last_name", "city"), ("first_name", "city"),
)
EM_RULES = (("first_name", "last_name"), ("dob",))
DETERMINISTIC_RULES = (("first_name", "last_name", "dob"), ("email",), ("phone", "first_name"))
DETERMINISTIC_RECALL = 0.7


def run_splink(profiles_path, truth_path, out_dir) -> dict:
    """Flatten, train, predict and cluster with Splink; score the clusters against the truth."""
    import splink
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    table = flatten(profiles_path)
    loaded = time.perf_counter()

    db_api = DuckDBAPI()
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=[block_on(*rule) for rule in BLOCKING_RULES],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(db_api.register(table), settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*rule) for rule in DETERMINISTIC_RULES], recall=DETERMINISTIC_RECALL)
    linker.training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=SEED)
    for rule in EM_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    trained = time.perf_counter()

    blocked = linker.inference.compute_blocked_pairs_for_predict()      # cached; predict reuses it
    pairs = blocked.as_duckdbpyrelation().aggregate("count(*)").fetchall()[0][0]
    predictions = linker.inference.predict(threshold_match_probability=THRESHOLD)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=THRESHOLD)
    labels = dict(clusters.as_duckdbpyrelation().select("unique_id, cluster_id").fetchall())
    finished = time.perf_counter()

    with open(out_dir / "splink_clusters.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["profile_id", "cluster_id"])
        writer.writerows(sorted(labels.items()))
    scores = pairwise_scores(labels, read_truth(str(truth_path)))
    result = {
        "splink_version": splink.__version__,
        "profiles": len(table["unique_id"]),
        "load_s": loaded - started,
        "train_s": trained - loaded,
        "predict_cluster_s": finished - trained,
        "load_to_clusters_s": finished - started,
        "blocked_pairs": pairs,
        "prior": linker._settings_obj._probability_two_random_records_match,
        "precision": scores["precision"], "recall": scores["recall"], "F1": scores["f1"],
        "true_pairs": scores["true_pairs"], "predicted_pairs": scores["predicted_pairs"],
    }
    (out_dir / "splink_result.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", required=True, help="Profile JSONL")
    parser.add_argument("--truth", required=True, help="truth CSV: profile_id,cluster_id")
    parser.add_argument("--out", required=True, help="directory for splink_clusters.csv and splink_result.json")
    args = parser.parse_args(argv)
    print(json.dumps(run_splink(args.profiles, args.truth, args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
