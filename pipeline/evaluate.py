"""Score a merge plan against labelled truth.

    python -m pipeline.evaluate --plan out/merge_plan.jsonl --truth truth.csv

The plan is JSONL, one MergeProfiles request per line::

    {"DomainName": "...", "MainProfileId": "<id>", "ProfileIdsToBeMerged": ["<id>", ...],
     "FieldSourceProfileIds": {...}}

Predicted clusters are the connected components of "MainProfileId is merged
with each id in ProfileIdsToBeMerged" (several lines may share one main, so a
large cluster split into batches of 20 is still one cluster).  Every id of the
truth that the plan does not mention is a singleton; plan ids missing from the
truth are reported and ignored.  If ``--plan`` is not a file, the files
matching ``<plan>*`` are read (Beam writes sharded ``-00000-of-00004`` files).

Printed: plan sanity counts, pair counts, pairwise precision / recall / F1,
B-cubed precision / recall / F1 (with ``--why_missed``, also the true pairs the
plan does not join, counted by why, from the ``review.jsonl`` written beside the
plan), and as the LAST line exactly::

    F1=0.9512 precision=0.9900 recall=0.9153

(pairwise scores, 4 decimals) so scripts can ``tail -n 1`` it.

Pair counts are computed from the contingency table of (predicted cluster,
true cluster) intersections -- a pair is a true positive iff both ids share
both clusters, so TP = sum over cells of C(n, 2) -- and never enumerate pairs.

Conventions: with no predicted pairs precision is 1.0 (nothing wrong was
claimed); with no true pairs recall is 1.0; F1 is 0.0 when both are 0.
"""
from __future__ import annotations

import argparse
import csv
import glob
import os
import re
import sys
from collections import Counter
from typing import Hashable, Iterable, Mapping, Union

import orjson

Clusters = Union[Mapping[str, Hashable], Iterable[Iterable[str]]]

_ID = re.compile(r"^[a-f0-9]{32}$")
MAX_MERGE_IDS = 20          # MergeProfiles accepts 1-20 ProfileIdsToBeMerged


# --------------------------------------------------------------------------
# Pure scoring functions
# --------------------------------------------------------------------------

def _labels(clusters: Clusters) -> dict:
    """Accept {id: label} or an iterable of id groups; return {id: label}."""
    if isinstance(clusters, Mapping):
        return dict(clusters)
    out = {}
    for i, group in enumerate(clusters):
        for pid in group:
            if pid in out:
                raise ValueError(f"id {pid!r} is in more than one cluster")
            out[pid] = i
    return out


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _contingency(pred_clusters: Clusters, truth_clusters: Clusters):
    """Cell sizes |P ∩ T|, predicted cluster sizes and true cluster sizes.

    The universe is the set of ids in the truth.  Predicted ids outside the
    truth are dropped; truth ids without a predicted label are singletons.
    """
    truth = _labels(truth_clusters)
    pred = _labels(pred_clusters)
    cells: Counter = Counter()
    pred_sizes: Counter = Counter()
    truth_sizes: Counter = Counter()
    for pid, t in truth.items():
        p = pred.get(pid, _Singleton(pid))
        cells[(p, t)] += 1
        pred_sizes[p] += 1
        truth_sizes[t] += 1
    return cells, pred_sizes, truth_sizes


class _Singleton:
    """Label of an id the prediction left alone (equal only to itself's id)."""

    __slots__ = ("pid",)

    def __init__(self, pid):
        self.pid = pid

    def __hash__(self):
        return hash(("_singleton", self.pid))

    def __eq__(self, other):
        return isinstance(other, _Singleton) and other.pid == self.pid


def f1(p: float, r: float) -> float:
    """The harmonic mean of a precision and a recall (0 when both are 0)."""
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def pairwise_scores(pred_clusters: Clusters, truth_clusters: Clusters) -> dict:
    """Pairwise precision / recall / F1 over all pairs of truth ids.

    Returns {"precision", "recall", "f1", "true_pairs", "predicted_pairs",
    "true_positive_pairs"}.
    """
    cells, pred_sizes, truth_sizes = _contingency(pred_clusters, truth_clusters)
    tp = sum(_pairs(n) for n in cells.values())
    predicted = sum(_pairs(n) for n in pred_sizes.values())
    true = sum(_pairs(n) for n in truth_sizes.values())
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    return {"precision": precision, "recall": recall, "f1": f1(precision, recall),
            "true_pairs": true, "predicted_pairs": predicted, "true_positive_pairs": tp}


def bcubed(pred_clusters: Clusters, truth_clusters: Clusters) -> dict:
    """B-cubed precision / recall / F1 (Bagga & Baldwin), averaged over truth ids.

    For an id in predicted cluster P and true cluster T: precision |P∩T|/|P|,
    recall |P∩T|/|T|.  Summed per contingency cell: n * n / |P| (resp. |T|).
    """
    cells, pred_sizes, truth_sizes = _contingency(pred_clusters, truth_clusters)
    total = sum(truth_sizes.values())
    if total == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    precision = sum(n * n / pred_sizes[p] for (p, _), n in cells.items()) / total
    recall = sum(n * n / truth_sizes[t] for (_, t), n in cells.items()) / total
    return {"precision": precision, "recall": recall, "f1": f1(precision, recall)}


# --------------------------------------------------------------------------
# Reading plan and truth
# --------------------------------------------------------------------------

class _UnionFind:
    def __init__(self):
        self.parent: dict = {}

    def find(self, x):
        parent = self.parent
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:          # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _jsonl_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    files = sorted(f for f in glob.glob(glob.escape(path) + "*") if os.path.isfile(f))
    if not files:
        raise FileNotFoundError(f"no file at {path!r} (nor {path}*)")
    return files


def _jsonl_lines(path: str) -> Iterable[tuple[str, int, bytes]]:
    """``(file, line number, raw line)`` of every non-blank line of a JSONL file or its shards."""
    for fname in _jsonl_files(path):
        with open(fname, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if raw.strip():
                    yield fname, lineno, raw


def read_plan(path: str) -> tuple[dict, Counter]:
    """Predicted clusters {id: root id} from a merge plan, plus sanity counts."""
    uf = _UnionFind()
    stats: Counter = Counter()
    merged_away: Counter = Counter()
    mains: set = set()
    for fname, lineno, raw in _jsonl_lines(path):
        try:
            req = orjson.loads(raw)
            main = req["MainProfileId"]
            others = req["ProfileIdsToBeMerged"]
            if not isinstance(main, str) or not isinstance(others, list):
                raise TypeError("wrong field types")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{fname}:{lineno}: not a MergeProfiles request ({exc})") from exc
        stats["requests"] += 1
        if not 1 <= len(others) <= MAX_MERGE_IDS:
            stats["requests_with_bad_id_count"] += 1
        for pid in [main, *others]:
            if not isinstance(pid, str) or not _ID.match(pid):
                stats["malformed_ids"] += 1
        mains.add(main)
        uf.find(main)
        for pid in others:
            if pid == main:
                stats["self_merges"] += 1
            merged_away[pid] += 1
            uf.union(main, pid)
    stats["ids_merged_away"] = len(merged_away)
    stats["ids_merged_away_twice"] = sum(1 for v in merged_away.values() if v > 1)
    stats["mains_merged_away_elsewhere"] = sum(1 for m in mains if m in merged_away)
    labels = {pid: uf.find(pid) for pid in uf.parent}
    return labels, stats


def read_truth(path: str) -> dict:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"profile_id", "cluster_id"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected header profile_id,cluster_id")
        truth = {}
        for row in reader:
            pid = row["profile_id"]
            if pid in truth:
                raise ValueError(f"{path}: profile {pid} listed twice")
            truth[pid] = row["cluster_id"]
    return truth


# --------------------------------------------------------------------------
# Why true pairs were missed (from the job's review output)
# --------------------------------------------------------------------------

SPLIT_OFF = "split off from its group: does not match the main well enough, or conflicts with a member"
HELD = "in a group held for review: larger than --max_cluster_size"
NOT_LINKED = "not linked: scored below --review_threshold, or never a candidate pair"
BELOW_MATCH = "scored below --match_threshold (in review)"
# True clusters larger than this are left out of the per-pair breakdown (their pairs are
# still in the scores above): enumerating them would cost the square of their size.
MAX_EXPLAINED_CLUSTER = 1000


def read_review(path: str) -> tuple[dict, dict]:
    """From ``review.jsonl`` (or its shards): ``{(a, b): reason}`` for reviewed pairs (ids
    sorted; the first reason the job gave) and ``{profile id: reason}`` for profiles split
    off from a group or in a held group."""
    pairs: dict = {}
    profiles: dict = {}
    for _, _, raw in _jsonl_lines(path):
        record = orjson.loads(raw)
        kind = record.get("kind")
        if kind == "pair":
            reasons = record.get("reasons") or ["reviewed"]
            reason = reasons[0]
            if reason.startswith("probability "):   # "probability 0.9 is below --match_threshold 0.95"
                reason = BELOW_MATCH
            pairs[tuple(sorted((record["a"], record["b"])))] = reason
        elif kind == "split_off":
            profiles.setdefault(record["profile"], SPLIT_OFF)
        elif kind == "held_cluster":
            for pid in record.get("members", []):
                profiles[pid] = HELD
    return pairs, profiles


def missed_pairs(pred: dict, truth: dict, pair_reasons: dict, profile_reasons: dict):
    """``(a, b, reason, 1)`` for each true pair in different predicted clusters (a < b), the reason
    being the pair's own review record first, then either profile being split off or held, else not
    linked; a true cluster larger than ``MAX_EXPLAINED_CLUSTER`` gives one ``(None, None, reason,
    its number of pairs)``."""
    members: dict = {}
    for pid, label in truth.items():
        members.setdefault(label, []).append(pid)
    for group in members.values():
        if len(group) > MAX_EXPLAINED_CLUSTER:
            yield None, None, f"in a true cluster of more than {MAX_EXPLAINED_CLUSTER} profiles (not broken down)", \
                _pairs(len(group))
            continue
        group.sort()
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                if a in pred and b in pred and pred[a] == pred[b]:
                    continue
                yield a, b, pair_reasons.get((a, b)) or profile_reasons.get(a) or profile_reasons.get(b) or NOT_LINKED, 1


def missed_pair_reasons(pred: dict, truth: dict, pair_reasons: dict, profile_reasons: dict) -> Counter:
    """True pairs in different predicted clusters, counted by reason (see ``missed_pairs``)."""
    counts: Counter = Counter()
    for _, _, reason, n in missed_pairs(pred, truth, pair_reasons, profile_reasons):
        counts[reason] += n
    return counts


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def last_line(scores: dict) -> str:
    return "F1=%.4f precision=%.4f recall=%.4f" % (scores["f1"], scores["precision"],
                                                   scores["recall"])


def report(pred: dict, truth: dict, plan_stats: Counter | None = None, missed: Counter | None = None) -> list[str]:
    lines = []
    if plan_stats is not None:
        unknown = sum(1 for pid in pred if pid not in truth)
        lines.append(
            "plan: %d requests, %d profile ids (%d not in truth), %d merged away; "
            "%d requests outside 1-%d ids, %d malformed ids, %d ids merged away twice, "
            "%d mains merged away elsewhere, %d self merges"
            % (plan_stats["requests"], len(pred), unknown, plan_stats["ids_merged_away"],
               plan_stats["requests_with_bad_id_count"], MAX_MERGE_IDS,
               plan_stats["malformed_ids"], plan_stats["ids_merged_away_twice"],
               plan_stats["mains_merged_away_elsewhere"], plan_stats["self_merges"]))
    truth_sizes = Counter(truth.values())
    pred_in_truth = Counter(pred[pid] for pid in truth if pid in pred)
    lines.append("truth: %d profiles in %d clusters (%d with 2+ profiles)"
                 % (len(truth), len(truth_sizes), sum(1 for n in truth_sizes.values() if n > 1)))
    lines.append("predicted: %d merged clusters covering %d truth profiles"
                 % (sum(1 for n in pred_in_truth.values() if n > 1),
                    sum(n for n in pred_in_truth.values() if n > 1)))
    pw = pairwise_scores(pred, truth)
    b3 = bcubed(pred, truth)
    lines.append("pairs: true=%d predicted=%d true_positive=%d false_positive=%d false_negative=%d"
                 % (pw["true_pairs"], pw["predicted_pairs"], pw["true_positive_pairs"],
                    pw["predicted_pairs"] - pw["true_positive_pairs"],
                    pw["true_pairs"] - pw["true_positive_pairs"]))
    lines.append("pairwise: precision=%.4f recall=%.4f F1=%.4f"
                 % (pw["precision"], pw["recall"], pw["f1"]))
    lines.append("B-cubed:  precision=%.4f recall=%.4f F1=%.4f"
                 % (b3["precision"], b3["recall"], b3["f1"]))
    if missed is not None:
        lines.append("missed true pairs by reason: %d" % sum(missed.values()))
        lines.extend("  %7d  %s" % (n, reason) for reason, n in sorted(missed.items(), key=lambda kv: (-kv[1], kv[0])))
    lines.append(last_line(pw))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.evaluate",
                                 description="Pairwise and B-cubed scores of a merge plan.")
    ap.add_argument("--plan", required=True, help="merge plan JSONL (MergeProfiles requests)")
    ap.add_argument("--truth", required=True, help="truth CSV: profile_id,cluster_id")
    ap.add_argument("--why_missed", action="store_true",
                    help="also count the true pairs the plan does not join by why (reviewed pair and its "
                         "first reason, split off, held, or not linked), from the job's review output")
    ap.add_argument("--review", help="the job's review.jsonl (default: review.jsonl beside --plan)")
    args = ap.parse_args(argv)
    truth = read_truth(args.truth)
    pred, stats = read_plan(args.plan)
    missed = None
    if args.why_missed:
        review = args.review or os.path.join(os.path.dirname(os.path.abspath(args.plan)), "review.jsonl")
        missed = missed_pair_reasons(pred, truth, *read_review(review))
    for line in report(pred, truth, stats, missed):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
