"""What each blocking rule costs in candidate pairs and what it finds, on labelled profiles.

    python benchmarks/blocking_yield.py --profiles P.jsonl --truth T.csv
    python benchmarks/blocking_yield.py --generate 100000          # the project's generator, seed 6

Blocks are made as the job makes them (``block_keys``, the rule's ``max_block_size`` or
``--max_block_size``, windows in ``window_order``, ``all_pairs_up_to``), without Beam, and
the pairs are counted once however many rules make them. (The job also leaves out a pair
whose owning windowed block does not reach it even if another rule's window does; that is
rare and not modelled here.) For each setting the table gives:

* ``pairs``: candidate pairs;
* ``direct``: the share of true pairs (same cluster in the truth) that are candidates;
* ``reach``: the share of true pairs connected through candidate true pairs, the most that
  clustering could find (resolution compares every member of a component with every other).

Rows: the model as shipped; each windowed rule at the plain window of 4 (the setting
before broad rules were narrowed); and the shipped model without each rule in turn, which
says what that rule alone adds. Features are computed in ``--processes`` processes.
"""
from __future__ import annotations

import argparse
import collections
import csv
import itertools
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transforms.block import block_keys, block_limit, is_windowed, rule_of, window_order  # noqa: E402
from transforms.cluster import UnionFind  # noqa: E402
from transforms.model import WINDOW, default_model  # noqa: E402
from transforms.normalize import profile_features  # noqa: E402


def _features(lines: list[str]) -> list[dict]:
    return [profile_features(json.loads(line), "US", ()) for line in lines]


def load_features(path: str, processes: int) -> list[dict]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    chunks = [lines[i:i + 20_000] for i in range(0, len(lines), 20_000)]
    with multiprocessing.Pool(processes) as pool:
        return [f for part in pool.imap(_features, chunks) for f in part]


def rule_blocks(features: list[dict], rules: list[dict]) -> list[dict[str, list[int]]]:
    """Per rule, ``{key: [profile index, ...]}`` for keys held by two or more profiles."""
    blocks: list[dict] = [collections.defaultdict(list) for _ in rules]
    for index, feature in enumerate(features):
        for key in block_keys(feature, rules):
            blocks[rule_of(key)][key].append(index)
    return [{k: v for k, v in b.items() if len(v) > 1} for b in blocks]


def rule_pairs(features, rules, rule_index, blocks, max_block_size) -> np.ndarray:
    """The distinct candidate pairs one rule makes, as ``left * n + right`` codes."""
    n = len(features)
    codes = []
    window = rules[rule_index].get("window", 0)
    for key, members in blocks.items():
        if len(members) > block_limit(rules, key, max_block_size):
            continue
        if is_windowed(rules, key, len(members)):
            ordered = sorted(members, key=lambda i: window_order(features[i]))
            pairs = ((ordered[i], ordered[j]) for i in range(len(ordered))
                     for j in range(i + 1, min(i + 1 + window, len(ordered))))
        else:
            pairs = itertools.combinations(members, 2)
        codes.extend(min(a, b) * n + max(a, b) for a, b in pairs)
    return np.unique(np.array(codes, dtype=np.int64))


def score(codes: np.ndarray, n: int, cluster: np.ndarray, true_pairs: int) -> tuple[int, float, float]:
    left, right = codes // n, codes % n
    true = (cluster[left] == cluster[right]) & (cluster[left] >= 0)
    forest = UnionFind()
    for a, b in zip(left[true].tolist(), right[true].tolist()):
        forest.union(a, b)
    reached = sum(len(c) * (len(c) - 1) // 2 for c in forest.components())
    return len(codes), float(true.sum()) / true_pairs, reached / true_pairs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", help="Profile JSON Lines")
    parser.add_argument("--truth", help="CSV with profile_id and cluster_id")
    parser.add_argument("--generate", type=int, default=0, help="generate this many profiles instead (seed 6)")
    parser.add_argument("--max_block_size", type=int, default=50)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    if args.generate:
        from benchmarks.generate import main as generate_main
        directory = Path(tempfile.mkdtemp(prefix="blocking-yield-"))
        args.profiles, args.truth = str(directory / "profiles.jsonl"), str(directory / "truth.csv")
        generate_main(["--n", str(args.generate), "--seed", "6", "--output", args.profiles, "--truth", args.truth])
    elif not (args.profiles and args.truth):
        parser.error("give --profiles and --truth, or --generate N")

    started = time.perf_counter()
    features = load_features(args.profiles, args.processes)
    n = len(features)
    index = {f["id"]: i for i, f in enumerate(features)}
    cluster = np.full(n, -1, dtype=np.int64)
    labels: dict[str, int] = {}
    with open(args.truth, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["profile_id"] in index:
                cluster[index[row["profile_id"]]] = labels.setdefault(row["cluster_id"], len(labels))
    sizes = collections.Counter(cluster[cluster >= 0].tolist())
    true_pairs = sum(s * (s - 1) // 2 for s in sizes.values())
    print(f"{n:,} profiles, {true_pairs:,} true pairs; features in {time.perf_counter() - started:.0f} s",
          flush=True)

    shipped = default_model()["blocking_rules"]
    plain = [dict({k: v for k, v in r.items() if k != "all_pairs_up_to"}, window=WINDOW) if r.get("window") else r
             for r in shipped]
    blocks = rule_blocks(features, shipped)
    cache: dict = {}

    def pairs_of(rules, i):
        setting = json.dumps(rules[i], sort_keys=True)
        if setting not in cache:
            cache[setting] = rule_pairs(features, rules, i, blocks[i], args.max_block_size)
        return cache[setting]

    def union(rules, leave_out=None):
        parts = [pairs_of(rules, i) for i in range(len(rules)) if i != leave_out]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    print(f"{'setting':52} {'pairs':>12} {'direct':>8} {'reach':>8}")
    base = score(union(shipped), n, cluster, true_pairs)
    for name, (pairs, direct, reach) in [("model as shipped", base), (f"every windowed rule at window {WINDOW}",
                                                                       score(union(plain), n, cluster, true_pairs))]:
        print(f"{name:52} {pairs:>12,} {direct:>8.4f} {reach:>8.4f}", flush=True)
    for i, rule in enumerate(shipped):
        pairs, direct, reach = score(union(shipped, leave_out=i), n, cluster, true_pairs)
        print(f"{'  without ' + rule['name']:52} {pairs - base[0]:>+12,} {direct - base[1]:>+8.4f} "
              f"{reach - base[2]:>+8.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
