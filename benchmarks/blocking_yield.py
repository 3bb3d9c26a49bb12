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

A second table says why the true pairs the shipped blocks do not make are not made: the two
profiles share no blocking key at all (no block size or window would find them); they share
keys only of blocks too large to pair (capped); or they share a key of a block that pairs,
but a window (or the pair's owning block's window) leaves them out. For each it gives the
share of true pairs, how many of them are reached anyway through other true pairs, and how
many agree on nothing but their names (no birth date, postcode, street, email, phone or
account number in common), which the guard "nothing but names" would hold if they were made.
Windows cost more reach as blocks grow, so compare this table at two sizes to see what the
job's linear cost takes from a larger domain.
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


NO_SHARED_KEY, ONLY_CAPPED, OUTSIDE_WINDOWS = "no shared key", "only capped blocks", "outside the windows"
MISSED_KINDS = (NO_SHARED_KEY, ONLY_CAPPED, OUTSIDE_WINDOWS)
# Features whose agreement says more than a name does (names are shared by strangers at scale).
BEYOND_NAMES = ("dob", "postcodes", "address", "emails", "phones", "account")


def missed_kind(keys_a: frozenset, keys_b: frozenset, sizes: dict, rules: list[dict], max_block_size: int) -> str:
    """Why blocking does not make a pair that is not a candidate: the two profiles share no key,
    share keys of capped blocks only, or share a key of a block that pairs but is windowed."""
    shared = keys_a & keys_b
    if not shared:
        return NO_SHARED_KEY
    if all(sizes.get(key, 0) > block_limit(rules, key, max_block_size) for key in shared):
        return ONLY_CAPPED
    return OUTSIDE_WINDOWS


def agree_beyond_names(a: dict, b: dict) -> bool:
    """Whether two profiles' features share a value beyond their names (``BEYOND_NAMES``)."""
    for field in BEYOND_NAMES:
        x, y = a.get(field), b.get(field)
        if x and y and (not set(x).isdisjoint(y) if isinstance(x, tuple) else x == y):
            return True
    return False


def missed_rows(features: list[dict], cluster: np.ndarray, codes: np.ndarray, blocks: list[dict],
                rules: list[dict], max_block_size: int) -> list[tuple[str, int, int, int]]:
    """``(kind, true pairs, reached anyway, only names agree)`` for each of ``MISSED_KINDS``: the true
    pairs (same ``cluster``, at least 0) that are not among the candidate ``codes`` (``left * n + right``),
    by ``missed_kind``; reached anyway means connected through candidate true pairs."""
    n = len(features)
    members = collections.defaultdict(list)
    for index, label in enumerate(cluster.tolist()):
        if label >= 0:
            members[label].append(index)
    pairs = np.array([(a, b) for group in members.values() for a, b in itertools.combinations(group, 2)],
                     dtype=np.int64).reshape(-1, 2)
    made = np.isin(pairs[:, 0] * n + pairs[:, 1], codes)
    forest = UnionFind()
    for a, b in pairs[made].tolist():
        forest.union(a, b)
    component = {member: i for i, group in enumerate(forest.components()) for member in group}
    sizes = {key: len(block) for rule in blocks for key, block in rule.items()}
    keys: dict[int, frozenset] = {}

    def keys_of(index: int) -> frozenset:
        if index not in keys:
            keys[index] = frozenset(block_keys(features[index], rules))
        return keys[index]

    counts = {kind: [0, 0, 0] for kind in MISSED_KINDS}
    for a, b in pairs[~made].tolist():
        row = counts[missed_kind(keys_of(a), keys_of(b), sizes, rules, max_block_size)]
        row[0] += 1
        row[1] += a in component and component.get(b) == component[a]
        row[2] += not agree_beyond_names(features[a], features[b])
    return [(kind, *counts[kind]) for kind in MISSED_KINDS]


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
    shipped_codes = union(shipped)
    base = score(shipped_codes, n, cluster, true_pairs)
    for name, (pairs, direct, reach) in [("model as shipped", base), (f"every windowed rule at window {WINDOW}",
                                                                       score(union(plain), n, cluster, true_pairs))]:
        print(f"{name:52} {pairs:>12,} {direct:>8.4f} {reach:>8.4f}", flush=True)
    for i, rule in enumerate(shipped):
        pairs, direct, reach = score(union(shipped, leave_out=i), n, cluster, true_pairs)
        print(f"{'  without ' + rule['name']:52} {pairs - base[0]:>+12,} {direct - base[1]:>+8.4f} "
              f"{reach - base[2]:>+8.4f}", flush=True)
    print(f"\n{'true pairs the shipped blocks do not make':52} {'pairs':>12} {'share':>8} {'reached':>8} "
          f"{'only names agree':>17}")
    for kind, count, reached, names_only in missed_rows(features, cluster, shipped_codes, blocks, shipped,
                                                        args.max_block_size):
        print(f"{'  ' + kind:52} {count:>12,} {count / true_pairs:>8.4f} {reached:>8,} {names_only:>17,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
