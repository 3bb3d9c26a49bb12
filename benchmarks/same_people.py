"""How the same people fare in plans of domains of different sizes.

    python benchmarks/same_people.py --truth truth_1000000.csv --people truth_100000.csv \\
        out_100k/merge_plan.jsonl out_1m/merge_plan.jsonl

The project's generator makes profiles in independently seeded chunks of 10,000 and writes them
in order, so the first N profiles of a run (and their truth) are the whole of a run of N when N is
a multiple of 10,000. A plan's F1 on all its profiles mixes two things when the domain grows: the
job's behaviour, and the people (more of them share a name, a birth date, a city). This script
holds the people fixed: for each plan it scores only the profile ids of ``--people`` (the truth
CSV of the smaller run; its cluster ids are not read, ``--truth`` gives every id's):

* ``recall``: of the true pairs among those people, the share the plan joins;
* ``precision inside``: of the pairs the plan makes among those people, the share that are true;
* ``false pairs touching`` and ``precision touching``: the pairs the plan makes with at least one
  of those people, whoever the other is. In a larger domain most of a person's look-alikes are
  outside any one subset, so this is the precision to compare between domains of different sizes.
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.evaluate import f1, read_plan, read_truth  # noqa: E402


def same_people_scores(pred: dict, truth: dict, people: set) -> dict:
    """Scores of the plan's clusters ``pred`` (``{id: cluster}``, ids in no merge left out) for the ids
    in ``people``, against ``truth`` (``{id: cluster}`` for every id of the domain)."""
    groups = collections.defaultdict(list)
    for profile, cluster in pred.items():
        groups[cluster].append(profile)
    true_inside = sum(n * (n - 1) // 2 for n in collections.Counter(
        truth[p] for p in people if p in truth).values())
    found = made_inside = touching = false_touching = 0
    for members in groups.values():
        inside = [m for m in members if m in people]
        if not inside:
            continue
        outside = [m for m in members if m not in people]
        labels = collections.Counter(truth.get(m) for m in inside)
        right_inside = sum(n * (n - 1) // 2 for label, n in labels.items() if label is not None)
        found += right_inside
        made_inside += len(inside) * (len(inside) - 1) // 2
        touching += len(inside) * (len(inside) - 1) // 2 + len(inside) * len(outside)
        right_across = sum(labels[truth.get(m)] for m in outside if truth.get(m) is not None)
        false_touching += len(inside) * (len(inside) - 1) // 2 - right_inside + len(inside) * len(outside) - right_across
    recall = found / true_inside if true_inside else 1.0
    precision = found / made_inside if made_inside else 1.0
    return {"true_pairs": true_inside, "found": found, "recall": recall, "precision_inside": precision,
            "f1_inside": f1(precision, recall), "pairs_touching": touching, "false_touching": false_touching,
            "precision_touching": (touching - false_touching) / touching if touching else 1.0}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--truth", required=True, help="truth CSV (profile_id,cluster_id) of the whole domain")
    parser.add_argument("--people", required=True,
                        help="truth CSV of the people to score, e.g. the smaller run's (only its profile ids are read)")
    parser.add_argument("plans", nargs="+", help="merge plans (merge_plan.jsonl or a directory of its shards)")
    args = parser.parse_args(argv)
    truth, people = read_truth(args.truth), set(read_truth(args.people))
    missing = len(people - truth.keys())
    if missing:
        parser.error(f"{missing} of the --people are not in --truth")
    print(f"{len(people):,} people, scored in each plan")
    print(f"{'plan':48} {'true pairs':>10} {'recall':>7} {'precision inside':>16} {'F1 inside':>9} "
          f"{'false pairs touching':>20} {'precision touching':>18}")
    for path in args.plans:
        pred, _ = read_plan(path)
        s = same_people_scores(pred, truth, people)
        print(f"{path[-48:]:48} {s['true_pairs']:>10,} {s['recall']:>7.4f} {s['precision_inside']:>16.4f} "
              f"{s['f1_inside']:>9.4f} {s['false_touching']:>20,} {s['precision_touching']:>18.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
