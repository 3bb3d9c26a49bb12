"""Cluster matched pairs into merge groups, without chaining strangers together.

1. **Connected components** of the match edges, through a mergeable ``CombineFn``
   (union-find): runners combine partial results from many workers. It holds
   only matched profile ids (not every profile), a few dozen bytes each.
2. **Resolve** each component on one worker with the member profiles in hand:
   score every pair of members directly (<= ``max_cluster_size`` members), pick
   the main profile by policy, keep the members that match the *main* at the
   match threshold and conflict with no other kept member (hard rules, guards),
   and split the rest off to be resolved again among themselves. A component
   larger than ``max_cluster_size`` is never merged: it is held for review.

The logic is in pure functions (``union_find_components``, ``resolve_component``);
the PTransforms only wire them.
"""
from __future__ import annotations

import functools
import itertools
import time

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from transforms import progress
from transforms.block import hard_conflicts
from transforms.buckets import in_global_window
from transforms.choose import Policy, choose_fields, plan_requests, rank_key, rank_reason
from transforms.compare import Scorer, comparison_vectors, scorer_for, term_frequencies
from transforms.packing import unpack
from transforms.validate import validate_merge_request

PLAN, REVIEW = "plan", "review"
# Two members who disagree on two or more fields and whose own match probability is
# below this are strangers, whatever they share with the main.
STRANGERS = 0.01


# ------------------------------------------------------------------ union-find


class UnionFind:
    """Union-find over hashable ids with path halving and union by size."""

    def __init__(self):
        self.parent: dict = {}
        self.size: dict = {}

    def find(self, item):
        parent = self.parent
        if item not in parent:
            parent[item] = item
            self.size[item] = 1
            return item
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def components(self) -> list[list]:
        groups: dict = {}
        for item in self.parent:
            groups.setdefault(self.find(item), []).append(item)
        return [sorted(members) for members in groups.values()]


class ConnectedComponentsFn(beam.CombineFn):
    """Combine edges ``(a, b)`` into connected components: a list of sorted id lists.

    The accumulator is a union-find; ``merge_accumulators`` replays the smaller
    forests' links into the first, so partial results from any number of workers
    combine to the same components.
    """

    def create_accumulator(self):
        return UnionFind()

    def add_input(self, accumulator, edge):
        accumulator.union(edge[0], edge[1])
        return accumulator

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for other in accumulators:
            for item, parent in other.parent.items():
                merged.union(item, parent)
        return merged

    def extract_output(self, accumulator):
        return sorted(accumulator.components())


def union_find_components(edges) -> list[list]:
    """Connected components of an edge list (for tests and small inputs)."""
    forest = UnionFind()
    for a, b in edges:
        forest.union(a, b)
    return sorted(forest.components())


# ------------------------------------------------- connected components without one worker
#
# Large-star / small-star contraction (Kiveris, Lattanzi, Mirrokni, Rastogi and Vassilvitskii,
# "Connected Components in MapReduce and Beyond", SoCC 2014): each round is two shuffles by node,
# each keeps the components as they are, and together they turn every component into a star
# around its smallest id. No worker ever holds more than one node's neighbours.


def large_star(node, neighbours) -> list[tuple]:
    """Large-star step at ``node``: link each larger neighbour to the smallest id of the
    neighbourhood (``node`` included)."""
    smallest = min(min(neighbours), node)
    return [(v, smallest) for v in neighbours if v > node]


def small_star(node, neighbours) -> list[tuple]:
    """Small-star step at ``node``: link ``node`` and each smaller neighbour to the smallest of them."""
    smaller = [v for v in neighbours if v < node]
    if not smaller:
        return []
    smallest = min(smaller)
    return [(v, smallest) for v in smaller if v != smallest] + [(node, smallest)]


def star_label(node, neighbours) -> tuple:
    """``(node, label, settled)``: the label is the smallest id of the neighbourhood. When every node
    is settled (the smallest of its neighbourhood, or a leaf with exactly one neighbour, smaller than
    itself), every component is a star around its smallest id and the labels are the component ids."""
    label = min(min(neighbours), node)
    return node, label, label == node or len(neighbours) == 1


def _both_ways(edge) -> list[tuple]:
    a, b = edge
    return [(a, b), (b, a)] if a != b else []


def _neighbourhoods(edges, name: str):
    """``(node, its neighbours)`` for every node of the ``edges``, grouped in a shuffle named ``name``."""
    return edges | f"{name}Links" >> beam.FlatMap(_both_ways) | f"{name}Group" >> beam.GroupByKey()


def _at_node(step, element):
    """``step(node, neighbours)`` of one grouped node."""
    node, neighbours = element
    return step(node, set(neighbours))


class StarComponents(beam.PTransform):
    """Match edges ``(a, b)`` between two different profiles -> ``(profile id, component id)``, as
    ``ConnectedComponents`` gives them, in ``rounds`` rounds of large-star / small-star contraction
    (two shuffles each) unrolled in the graph, so that no worker holds more than one profile's links.

    A path of n profiles needs about 1.5 log2(n) rounds in the worst order (17 for 100,000; a random
    order needs fewer). If any node has not settled after ``rounds`` (counted as
    ``components.unsettled_nodes``), no label is used: the contracted edges, which have the same
    components, go through the union-find instead. The answer is always the same; only where the
    memory goes depends on the rounds.
    """

    def __init__(self, rounds: int = 16):
        super().__init__()
        if rounds < 1:
            raise ValueError("rounds must be at least 1")
        self._rounds = rounds

    def expand(self, edges):
        current = edges
        for r in range(1, self._rounds + 1):
            for name, step in (("LargeStar", large_star), ("SmallStar", small_star)):
                current = _neighbourhoods(current, f"{name}{r}") | f"{name}{r}" >> beam.FlatMap(
                    functools.partial(_at_node, step))
        labels = _neighbourhoods(current, "Label") | "Label" >> beam.Map(functools.partial(_at_node, star_label))
        unsettled = (
            labels
            | "Unsettled" >> beam.Map(_unsettled)
            | "CountUnsettled" >> beam.CombineGlobally(sum)
        )
        count = beam.pvalue.AsSingleton(unsettled)
        settled_labels = labels | "IfAllSettled" >> beam.FlatMap(
            lambda labelled, n: [(labelled[0], labelled[1])] if n == 0 else [], n=count)
        fallback = (
            current
            | "IfAnyUnsettled" >> beam.FlatMap(_report_unsettled, n=count)
            | "UnionFindRest" >> ConnectedComponents()
        )
        return (settled_labels, fallback) | "Assignment" >> beam.Flatten()


def _unsettled(labelled) -> int:
    if labelled[2]:
        return 0
    Metrics.counter("components", "unsettled_nodes").inc()
    return 1


def _report_unsettled(edge, n):
    """The contracted edges, for the union-find, when some node has not settled (``n`` of them)."""
    return [edge] if n else []


# ------------------------------------------------------------------ resolution


def _components(ids: list[int], linked: np.ndarray) -> list[list[int]]:
    forest = UnionFind()
    for i in ids:
        forest.find(i)
    for i, j in itertools.combinations(ids, 2):
        if linked[i, j]:
            forest.union(i, j)
    return sorted(forest.components())


@functools.lru_cache(maxsize=128)
def upper_pairs(n: int) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
    """Every pair (i < j) of ``n`` members in ``np.triu_indices`` order, as read-only arrays and as
    lists. Components are small and their sizes repeat, and ``np.triu_indices`` builds an n x n mask
    each call (a tenth of resolving went there)."""
    left, right = np.triu_indices(n, k=1)
    left.flags.writeable = right.flags.writeable = False
    return left, right, left.tolist(), right.tolist()


def member_pairs(members: list[tuple[dict, dict]]) -> tuple[list, list[dict], list[dict]]:
    """A component's members in ProfileId order, and the features of every pair of them
    (left and right lists, in ``np.triu_indices`` order), as ``resolve_component`` scores them."""
    members = sorted(members, key=lambda m: m[0]["ProfileId"])
    _, _, left_idx, right_idx = upper_pairs(len(members))
    return members, [members[i][1] for i in left_idx], [members[j][1] for j in right_idx]


def compared_pairs(scorer: Scorer, left: list[dict], right: list[dict]) -> tuple:
    """``(patterns, frequencies, weights, guards)`` of the pairs ``(left[i], right[i])``, as
    ``resolve_component`` reads them."""
    patterns = comparison_vectors(scorer.model, left, right)
    frequencies = term_frequencies(scorer.model, left, right, patterns)
    return patterns, frequencies, scorer.weights(patterns, frequencies), scorer.guard_lists(patterns)


def resolve_component(members: list[tuple[dict, dict]], scorer: Scorer, policy: Policy,
                      match_threshold: float, member_threshold: float, max_cluster_size: int,
                      domain_name: str, compared: tuple | None = None) -> list[dict]:
    """Turn one connected component into merge groups, held groups and split-off singletons.

    ``members`` is ``[(profile, features)]``. Members are linked by pairs at or
    above ``match_threshold``; a group keeps a member only if its own probability
    against the main is at least ``member_threshold`` and it conflicts with no
    other kept member (hard rules and guards). Returns records of kind
    ``"merge"`` (main, members, edges, choices, requests), ``"held"`` (too big) or
    ``"split"`` (a profile linked into the component that does not match the main
    of any group well enough: left alone, for review).

    ``compared`` may hold the ``compared_pairs`` of ``member_pairs``, computed by the caller
    for many components at once.
    """
    members = sorted(members, key=lambda m: m[0]["ProfileId"])
    ids = [m[0]["ProfileId"] for m in members]
    if len(members) > max_cluster_size:
        return [{
            "kind": "held", "members": ids, "size": len(ids),
            "reason": f"{len(ids)} linked profiles is more than --max_cluster_size {max_cluster_size}; "
                      "a group this large is more likely a shared phone or email than one customer",
        }]
    n = len(members)
    features = [m[1] for m in members]
    left_idx, right_idx, lefts, rights = upper_pairs(n)
    if compared is None:
        compared = compared_pairs(scorer, *member_pairs(members)[1:])
    patterns, frequencies, weights, guard_rows = compared
    weights = weights.tolist()
    probabilities = [scorer.probability(w) for w in weights]
    probability = np.zeros((n, n))
    probability[left_idx, right_idx] = probabilities
    probability[right_idx, left_idx] = probabilities
    pattern_of = np.zeros((n, n, patterns.shape[1]), dtype=np.int8)
    pattern_of[left_idx, right_idx] = patterns
    pattern_of[right_idx, left_idx] = patterns
    allowed = np.ones((n, n), dtype=bool)      # no hard conflict and no guard
    hard_ok = np.ones((n, n), dtype=bool)      # no hard conflict
    guards_of: dict = {}
    edges: dict = {}
    for k, (i, j) in enumerate(zip(lefts, rights)):
        p = probabilities[k]
        hard = hard_conflicts(features[i], features[j])
        guards = list(guard_rows[k])
        if hard:
            hard_ok[i, j] = hard_ok[j, i] = False
        if hard or guards:
            allowed[i, j] = allowed[j, i] = False
        if guards:
            guards_of[(i, j)] = guards_of[(j, i)] = guards
        edges[(i, j)] = {
            "a": ids[i], "b": ids[j], "weight": round(weights[k], 3), "probability": round(p, 6),
            "fields": scorer.explain(patterns[k], frequencies[k]), "blocked_by": hard + [f"guard: {g}" for g in guards],
        }
    pairs = _PairFacts(probability, allowed, hard_ok, guards_of, pattern_of, scorer, features)
    linked = (probability >= match_threshold) & allowed

    out = []
    remaining = list(range(n))
    while remaining:
        next_round = []
        for component in _components(remaining, linked):
            if len(component) == 1:
                i = component[0]
                best = max((j for j in range(n) if j != i), key=lambda j: probability[i, j], default=None)
                out.append({
                    "kind": "split", "profile": ids[i],
                    "reason": "does not match the main profile of its group well enough, or conflicts with a member",
                    "best_match": ids[best] if best is not None else None,
                    "best_probability": round(float(probability[i, best]), 6) if best is not None else None,
                })
                continue
            # The policy's best profile becomes the main unless another member keeps
            # a larger group together (the main itself never changes field choices:
            # every field's winner is named explicitly).
            key_of = {i: rank_key(members[i][0], policy) for i in component}
            ranked = sorted(component, key=key_of.__getitem__)
            best_kept, main = None, None
            for candidate in ranked:
                kept, vouched = _group_around(candidate, component, pairs, member_threshold, ids, match_threshold)
                if best_kept is None or len(kept) > len(best_kept):
                    best_kept, best_vouched, main = kept, vouched, candidate
            kept = sorted(best_kept)
            main_profile = members[main][0]
            main_reason = rank_reason(main_profile, policy, min((key_of[i] for i in kept if i != main), default=None))
            if main != ranked[0]:
                main_reason += (f"; chosen over {ids[ranked[0]]} (ranked first by --main_policy) because it "
                                f"keeps more members together ({len(kept)} profiles)")
            left_out = [i for i in component if i not in kept]
            group_profiles = [members[i][0] for i in kept]
            invalid = {ids[i]: frozenset(members[i][1]["invalid"]) for i in kept} \
                if all("invalid" in members[i][1] for i in kept) else None
            choices = choose_fields(group_profiles, main_profile, policy, invalid)
            requests = plan_requests(domain_name, ids[main], [ids[i] for i in kept], choices)
            group_edges = []
            for i, j in itertools.combinations(kept, 2):
                edge = edges[(min(i, j), max(i, j))]
                voucher = best_vouched.get(j) if i == main else best_vouched.get(i) if j == main else None
                group_edges.append(edge if voucher is None else dict(edge, settled_by=ids[voucher[0]]))
            record = {
                "kind": "merge", "main": ids[main], "main_reason": main_reason,
                "members": [ids[i] for i in kept], "profiles": group_profiles,
                "edges": group_edges, "choices": choices, "requests": requests,
                "split_off": [ids[i] for i in left_out],
            }
            if best_vouched:
                record["vouched"] = [_vouching(ids, edges, pairs, main, i, k, needs)
                                     for i, (k, needs) in sorted(best_vouched.items())]
            out.append(record)
            next_round.extend(left_out)
        remaining = sorted(next_round)
    return out


class _PairFacts:
    """What resolution needs to know about every pair of a component's members."""

    def __init__(self, probability, allowed, hard_ok, guards_of, pattern_of, scorer, features):
        self.probability = probability
        comparisons = scorer.model["comparisons"]
        self.else_levels = np.array([len(c["levels"]) - 1 for c in comparisons])
        self.disagreeing = pattern_of == self.else_levels
        # A comparison of one value per profile (a name, a birth date) can be vouched for by a
        # main that agrees with both members on it; one of sets (phones, emails, postcodes)
        # cannot: a main holding two people's numbers agrees with each of them.
        self.one_value = np.array([not any(level["kind"] == "overlap" for level in c["levels"])
                                   for c in comparisons])
        self.allowed = allowed
        self.hard_ok = hard_ok
        self.guards_of = guards_of
        self.pattern_of = pattern_of
        self.scorer = scorer
        self.features = features
        self._null_fields = [c["levels"][0].get("fields", ()) for c in comparisons]

    def lacks(self, i: int, column: int) -> bool:
        """Has member i no value for comparison ``column`` (every field of its null level empty)?"""
        return not any(self.features[i].get(field) for field in self._null_fields[column])

    def awaits_member(self, i: int, main: int) -> list | None:
        """When every guard between i and the main is one a kept member may settle, i lacks
        what its ``profile_lacks`` names and the main has it, and i and the main have nothing to
        compare on the personal fields that would settle it (the main has no birth date, no
        email, ...): the "by" levels of those guards, of each of which a member must fit one
        with i. Otherwise None."""
        specs = [self.scorer.member_settling(guard) for guard in self.guards_of.get((i, main), ())]
        if not specs or not all(specs):
            return None
        to_main = self.pattern_of[i, main]
        needs = []
        for lacking, by in specs:
            if any(not self.lacks(i, column) or self.lacks(main, column) for column in lacking) \
                    or any(to_main[column] != 0 for column in by):
                return None
            needs.append(by)
        return needs

    def settles(self, k: int, i: int, needs: list) -> bool:
        """Does member k vouch for i: no guard or hard conflict between them, and they agree on a
        personal field at one of each guard's "by" levels and disagree on none of those fields
        (twins share a birth date, not an email)?"""
        if not self.allowed[i, k]:
            return False
        pattern = self.pattern_of[i, k]
        return all(any(pattern[column] in levels for column, levels in by.items())
                   and not any(pattern[column] == self.else_levels[column] for column in by) for by in needs)

    def compatible(self, i: int, k: int, main: int, member_threshold: float) -> bool:
        """May members i and k (neither the main) be merged into the same main?

        Never with a hard conflict, nor when they match each other with a probability
        below ``STRANGERS`` and disagree on at least two fields the main does not
        settle (two people who each look like the main; two sparse or noisy profiles
        with little to compare stay allowed, and so do two typo-ridden copies of the
        main's names). A guard between them blocks only when the main
        cannot settle it: when the main has no value for a field the guard looks at
        (two birth dates a generation apart under a main without one; the guard's
        ``main_settles`` comparisons). When the main has the field, each of them was
        already checked against it.
        """
        if not self.hard_ok[i, k]:
            return False
        if self.probability[i, k] < STRANGERS and self.unsettled_disagreements(i, k, main) >= 2:
            return False  # clearly different people, each merely like the main
        for guard in self.guards_of.get((i, k), ()):
            for column in self.scorer.settling_columns(guard):
                if self.pattern_of[main, i][column] == 0 or self.pattern_of[main, k][column] == 0:
                    return False
        return True

    def unsettled_disagreements(self, i: int, k: int, main: int) -> int:
        """How many fields members i and k disagree on (their "else" level) that the main does
        not settle. The main settles a field of one value per profile when it agrees with each
        of them there (a level other than null and else): "Sofia Russell" as main vouches for
        "foSia Russell" and "Russell Sofia" being one person's names, though those two disagree."""
        to_i, to_k = self.pattern_of[main, i], self.pattern_of[main, k]
        vouched = (self.one_value & (to_i != 0) & (to_k != 0)
                   & (to_i != self.else_levels) & (to_k != self.else_levels))
        return int((self.disagreeing[i, k] & ~vouched).sum())


def _vouching(ids: list[str], edges: dict, pairs: _PairFacts, main: int, i: int, k: int, needs: list) -> dict:
    """Why member i is in its main's group although a guard stands between them (member k
    vouched for it on one of ``needs``' levels)."""
    fields = edges[(min(i, k), max(i, k))]["fields"]
    columns = sorted({column for by in needs for column in by})
    names = [pairs.scorer.model["comparisons"][column]["name"] for column in columns]
    return {
        "profile": ids[i], "by": ids[k], "guards": list(pairs.guards_of[(i, main)]),
        "evidence": {name: fields[name]["level"] for name in names if fields[name]["level"] != "null"},
        "reason": (f"the main has nothing personal to compare with {ids[i]}; member {ids[k]} matches it "
                   f"with no guard and on personal evidence, which settles the guard"),
    }


def _group_around(main: int, component: list[int], pairs: _PairFacts, member_threshold: float,
                  ids: list[str], match_threshold: float) -> tuple[list[int], dict[int, tuple[int, list]]]:
    """Members kept with ``main``: each matches the main directly (probability at least
    ``member_threshold``, no hard conflict, no guard) and is compatible with every
    member kept before it (most probable first).

    A member whose only obstacles with the main are guards about missing evidence
    (the model's ``member_settles`` guards: a household's last name and address, with
    no first name on the profile and no birth date or email to compare) is kept when a kept member
    matches it at ``match_threshold`` or above with no guard between them and agrees
    with it on such personal evidence (the same birth date or email, say): that member
    supplies what the main lacks. It must still match the main at ``member_threshold``
    and be compatible with every kept member. Returns the kept members and, for those
    kept this way, the member that vouched for each and the levels it had to fit."""
    kept = [main]
    waiting = []
    probability = pairs.probability
    for i in sorted((c for c in component if c != main), key=lambda c: (-probability[c, main], ids[c])):
        if probability[i, main] < member_threshold or not pairs.hard_ok[i, main]:
            continue
        if not pairs.allowed[i, main]:
            needs = pairs.awaits_member(i, main)
            if needs:
                waiting.append((i, needs))
            continue
        if all(pairs.compatible(i, k, main, member_threshold) for k in kept[1:]):
            kept.append(i)
    vouched: dict[int, tuple[int, list]] = {}
    progress = True
    while waiting and progress:
        progress = False
        for entry in list(waiting):
            i, needs = entry
            voucher = next((k for k in kept[1:] if probability[i, k] >= match_threshold and pairs.settles(k, i, needs)), None)
            if voucher is not None and all(pairs.compatible(i, k, main, member_threshold) for k in kept[1:]):
                kept.append(i)
                vouched[i] = (voucher, needs)
                waiting.remove(entry)
                progress = True
    return kept, vouched


# ------------------------------------------------------------------ Beam wiring


class ConnectedComponents(beam.PTransform):
    """Match edges ``(a, b)`` -> ``(profile id, component id)`` for every linked profile.

    The component id is the smallest ProfileId in the component, so it is the same
    on every runner.
    """

    def expand(self, edges):
        return (
            edges
            | "UnionFind" >> beam.CombineGlobally(ConnectedComponentsFn())
            | "EachComponent" >> beam.FlatMap(lambda components: components)
            | "AssignComponent" >> beam.FlatMap(lambda members: ((m, members[0]) for m in members))
        )


def refuse_unsendable(record: dict) -> dict:
    """A merge record as it is, or held for review when one of its requests would be refused
    (``transforms.validate``: botocore's model and the service's own limits), so that every line of
    the plan can be sent as it is written."""
    problems = [problem for request in record["requests"] for problem in validate_merge_request(request)]
    if not problems:
        return record
    held = {key: value for key, value in record.items() if key != "requests"}   # the evidence stays
    held.update(kind="held", size=len(record["members"]),
                reason="its merge request would be refused: " + "; ".join(problems[:3]))
    return held


class _ResolveFn(beam.DoFn):
    """Resolve components a few hundred at a time: the pairs of all their members are
    compared in one batch (one rapidfuzz call per level), then each is resolved alone."""

    def __init__(self, policy, match_threshold, member_threshold, max_cluster_size, domain_name, batch_pairs=2048):
        self._policy = policy
        self._threshold = match_threshold
        self._member_threshold = member_threshold
        self._max = max_cluster_size
        self._domain = domain_name
        self._batch_pairs = batch_pairs
        self._scorers: dict = {}
        self._scorer = None
        self._buffer: list = []
        self._buffered_pairs = 0
        self._merged = progress.counter("cluster", "clusters_planned")
        self._held = Metrics.counter("cluster", "clusters_held")
        self._split = Metrics.counter("cluster", "profiles_split_off")
        self._vouched = Metrics.counter("cluster", "profiles_vouched_for_by_a_member")
        self._requests = Metrics.counter("cluster", "merge_requests")
        self._usec = Metrics.counter("cluster", "busy_usec")

    def start_bundle(self):
        self._buffer, self._buffered_pairs = [], 0

    def process(self, element, model):
        component_id, members = element
        scorer = scorer_for(self._scorers, model)
        if self._scorer is not None and self._scorer is not scorer:
            yield from self._tagged(self._flush())  # another model: resolve the batch so far with its own
        self._scorer = scorer
        members = [(unpack(profile), unpack(features)) for profile, features in members]
        self._buffer.append((component_id, members))
        if len(members) <= self._max:
            self._buffered_pairs += len(members) * (len(members) - 1) // 2
        if self._buffered_pairs >= self._batch_pairs:
            yield from self._tagged(self._flush())

    def finish_bundle(self):
        # outputs of finish_bundle carry their window explicitly (the job runs in the global window)
        for tag, record in self._flush():
            value = in_global_window(record)
            yield beam.pvalue.TaggedOutput(tag, value) if tag else value

    @staticmethod
    def _tagged(outputs):
        for tag, record in outputs:
            yield beam.pvalue.TaggedOutput(tag, record) if tag else record

    def _flush(self):
        """Resolve the buffered components; yields ``(tag, record)``, tag None for the main output."""
        buffer, self._buffer, self._buffered_pairs = self._buffer, [], 0
        if not buffer:
            return
        scorer = self._scorer
        started = time.perf_counter()
        lefts, rights, spans = [], [], []
        for _, members in buffer:
            if len(members) > self._max:
                spans.append(None)
                continue
            _, left, right = member_pairs(members)
            spans.append((len(lefts), len(lefts) + len(left)))
            lefts.extend(left)
            rights.extend(right)
        # the whole batch at once: numpy's cost per call outweighs a component's rows
        columns = compared_pairs(scorer, lefts, rights)
        resolved = []
        for (component_id, members), span in zip(buffer, spans):
            compared = tuple(column[span[0]:span[1]] for column in columns) if span else None
            resolved.append((component_id, resolve_component(
                members, scorer, self._policy, self._threshold, self._member_threshold, self._max, self._domain,
                compared)))
        self._usec.inc(int((time.perf_counter() - started) * 1_000_000))
        for component_id, records in resolved:
            yield from self._outputs(component_id, records)

    def _outputs(self, component_id, records):
        for record in records:
            if record["kind"] == "merge":
                record = refuse_unsendable(record)
            record["cluster_id"] = component_id if record["kind"] != "merge" else record["main"]
            if record["kind"] == "merge":
                self._merged.inc()
                self._requests.inc(len(record["requests"]))
                self._vouched.inc(len(record.get("vouched") or ()))
                for request in record["requests"]:
                    yield PLAN, request
            elif record["kind"] == "held":
                self._held.inc()
                yield REVIEW, {"kind": "held_cluster", "reason": record["reason"],
                               "size": record["size"], "members": record["members"][:200]}
            else:
                self._split.inc()
                yield REVIEW, {"kind": "split_off", **{k: v for k, v in record.items() if k != "kind"}}
            yield None, record


class ResolveClusters(beam.PTransform):
    """``(component id, [(profile, features)])`` -> cluster records, with ``plan`` and ``review`` outputs.

    Profiles and features may come packed (``transforms.packing.pack``), as they do
    through the job's shuffles."""

    def __init__(self, model_view, policy: Policy, match_threshold: float, member_threshold: float,
                 max_cluster_size: int, domain_name: str, batch_pairs: int = 2048):
        super().__init__()
        self._model = model_view
        self._args = (policy, match_threshold, member_threshold, max_cluster_size, domain_name, batch_pairs)

    def expand(self, grouped):
        return grouped | "ResolveEachCluster" >> beam.ParDo(_ResolveFn(*self._args), model=self._model).with_outputs(
            PLAN, REVIEW, main="clusters")
