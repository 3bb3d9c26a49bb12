"""Compare and score candidate pairs with the matching model, a batch at a time.

``comparison_vectors`` puts each pair of a batch into one level per comparison
(the pair's *pattern*), computing every fuzzy similarity for the whole batch in
one rapidfuzz call (``process.cpdist``). ``score_patterns`` turns patterns into
match weights with the model's tables, and ``explain`` says what each field
added or removed. Pure functions: no Beam here.
"""
from __future__ import annotations

import math
import operator
import re
import time

import numpy as np
from rapidfuzz import distance, fuzz, process

from transforms.model import WRITTEN_NAMES, guard_hits, prior_weight, probability, weight_tables

# Similarity scorers a level may name: (rapidfuzz scorer, is a distance, scale). Each returns
# a score where higher is more alike, except *_distance scorers whose threshold is an upper
# bound; a score is divided by its scale to meet the level's threshold (token_set_ratio runs
# 0-100, thresholds 0-1). Each is rapidfuzz's own function, so ``cpdist`` scores a whole
# batch in C: a Python wrapper would be called back once per pair.
_SCORERS = {
    "jaro_winkler": (distance.JaroWinkler.normalized_similarity, False, 1.0),
    "levenshtein": (distance.Levenshtein.normalized_similarity, False, 1.0),
    "token_set_ratio": (fuzz.token_set_ratio, False, 100.0),
    "damerau_levenshtein_distance": (distance.DamerauLevenshtein.distance, True, 1.0),
}


_NOT_DIGITS = re.compile(r"\D+")
# the shortest given names (after the first) in which another letter in the place of one is read as a
# typo, not another name
MIN_TYPO_LETTERS = 5


class _Batch:
    """Columns of a batch of pairs, built once per feature and reused by every level.

    A batch's pairs come from blocks, so one profile's features stand in several of its pairs
    (a block of three makes three pairs): each column is built once over the batch's distinct
    feature dicts (``members``, known by identity), then spread to the pairs' two sides by index,
    in C. The ``flipped`` view of a batch (right as left) swaps the sides' indices and shares
    every column the batch has built."""

    def __init__(self, left: list[dict], right: list[dict], cache: dict | None = None,
                 positions: tuple[np.ndarray, np.ndarray] | None = None):
        self.sides = (left, right)
        self.n = len(left)
        self._cache = {} if cache is None else cache
        if positions is None:
            self._cache["members"], positions = _distinct(left, right)
        self._positions = positions
        self.scores: dict = {}

    def flipped(self) -> "_Batch":
        """The same pairs with their sides swapped, sharing this batch's columns."""
        return _Batch(self.sides[1], self.sides[0], self._cache, self._positions[::-1])

    def _of_members(self, kind: str, field: str, build) -> np.ndarray:
        """``build(field)``: a column over the distinct members, built once."""
        key = (kind, field)
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = build(field)
        return value

    def _spread(self, kind: str, side: int, field: str, build) -> np.ndarray:
        """A members' column indexed out to one side of the pairs (kept for the other levels)."""
        positions = self._positions[side]
        key = (kind, field, id(positions))
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = self._of_members(kind, field, build)[positions]
        return value

    def _build_column(self, field: str) -> np.ndarray:
        members = self._cache["members"]
        return np.fromiter(map(operator.itemgetter(field), members), dtype=object, count=len(members))

    def _member_column(self, field: str) -> np.ndarray:
        return self._of_members("column", field, self._build_column)

    def column(self, side: int, field: str) -> np.ndarray:
        return self._spread("column", side, field, self._build_column)

    def empty(self, side: int, field: str) -> np.ndarray:
        # bool() of each value, in C: "", (), None and 0 are empty, as ``not v`` says
        return self._spread("empty", side, field, lambda f: ~self._member_column(f).astype(bool))

    def firsts(self, side: int, field: str) -> np.ndarray:
        return self._spread("firsts", side, field, lambda f: _firsts(self._member_column(f)))

    def single(self, side: int, field: str) -> np.ndarray:
        """Which values are a tuple of exactly one value (most multi-valued features hold one)."""
        return self._spread("single", side, field, lambda f: np.fromiter(
            (type(v) is tuple and len(v) == 1 for v in self._member_column(f)), dtype=bool,
            count=len(self._cache["members"])))

    def rests(self, side: int, field: str) -> np.ndarray:
        """A name's words after the first ("" for a name of one word, or none)."""
        return self._spread("rests", side, field, lambda f: np.fromiter(
            ((v or "").partition(" ")[2] for v in self._member_column(f)), dtype=object,
            count=len(self._cache["members"])))

    def lengths(self, side: int, field: str) -> np.ndarray:
        """How many values each multi-valued feature holds (0 for none)."""
        return self._spread("lengths", side, field, lambda f: np.fromiter(
            map(len, self._member_column(f)), dtype=np.int64, count=len(self._cache["members"])))

    def any_written(self) -> bool:
        """Whether any profile of the batch has a name kept as written (most batches have none)."""
        return bool(self._of_members("any", "written", lambda f: self._member_column(f).astype(bool).any()))

    def written(self, side: int, index: int) -> np.ndarray:
        """One name as written (the ``written`` feature's entry ``index``; "" where it has none)."""
        return self._spread("written", side, index, lambda i: np.fromiter(
            (w[i] if w else "" for w in self._member_column("written")), dtype=object,
            count=len(self._cache["members"])))

    def days(self, side: int, field: str) -> np.ndarray:
        return self._spread("days", side, field, lambda f: np.array(
            [v or "NaT" for v in self._member_column(f)], dtype="datetime64[D]"))

    def both_present(self, rows: np.ndarray, *fields: str) -> np.ndarray:
        """Rows (a subset of ``rows``) where every field is non-empty on both sides."""
        keep = np.ones(len(rows), dtype=bool)
        for field in fields:
            keep &= ~self.empty(0, field)[rows] & ~self.empty(1, field)[rows]
        return keep


def _distinct(left: list[dict], right: list[dict]) -> tuple[list[dict], tuple[np.ndarray, np.ndarray]]:
    """The distinct feature dicts of both sides (by identity) and, per side, each pair's index into them."""
    n = len(left)
    both = left + right
    _, first, inverse = np.unique(np.fromiter(map(id, both), dtype=np.int64, count=2 * n),
                                  return_index=True, return_inverse=True)
    members = [both[i] for i in first.tolist()]
    inverse = inverse.reshape(-1).astype(np.intp)
    return members, (inverse[:n], inverse[n:])


def _firsts(column: np.ndarray) -> np.ndarray:
    """The first value of each multi-valued feature of a column ("" for none), other values as they
    are: the column itself when it holds no tuples."""
    if tuple not in set(map(type, column)):
        return column
    return np.fromiter((v if type(v) is not tuple else v[0] if v else "" for v in column), dtype=object,
                       count=len(column))


def _python_test(batch: _Batch, rows: np.ndarray, fields: tuple, test) -> np.ndarray:
    """Apply ``test(a, b)`` (two records) to the rows where all ``fields`` are present on both sides."""
    out = np.zeros(len(rows), dtype=bool)
    present = batch.both_present(rows, *fields)
    left, right = batch.sides
    for position in np.flatnonzero(present):
        row = rows[position]
        out[position] = test(left[row], right[row])
    return out


def _overlap(batch: _Batch, rows: np.ndarray, field: str) -> np.ndarray:
    """Do the two sides' values of a multi-valued field share one, on ``rows``? Pairs where both
    hold exactly one value (most of them) are compared as whole columns; the rest value by value."""
    present = batch.both_present(rows, field)
    single = present & batch.single(0, field)[rows] & batch.single(1, field)[rows]
    out = np.zeros(len(rows), dtype=bool)
    out[single] = batch.firsts(0, field)[rows[single]] == batch.firsts(1, field)[rows[single]]
    rest = np.flatnonzero(present & ~single)
    if len(rest):
        left, right = batch.column(0, field)[rows[rest]], batch.column(1, field)[rows[rest]]
        out[rest] = [not set(a).isdisjoint(b) for a, b in zip(left, right)]
    return out


def _begins(short: str, long: str) -> bool:
    """Is ``short`` the first letter or the first words of ``long``?"""
    return long.startswith(short) and (len(short) == 1 or len(long) == len(short) or long[len(short)] == " ")


def _conflicting(batch: _Batch, rows: np.ndarray, field: str) -> np.ndarray:
    """Do both sides hold values of a multi-valued field, neither side's all among the other's?
    "apt 5c" against no flat at all may be one home; "apt 5c" against "apt 11g" is two."""
    present = batch.both_present(rows, field)
    single = present & batch.single(0, field)[rows] & batch.single(1, field)[rows]
    out = np.zeros(len(rows), dtype=bool)
    out[single] = batch.firsts(0, field)[rows[single]] != batch.firsts(1, field)[rows[single]]
    rest = np.flatnonzero(present & ~single)
    if len(rest):
        left, right = batch.column(0, field)[rows[rest]], batch.column(1, field)[rows[rest]]
        out[rest] = [not (set(a) <= set(b) or set(b) <= set(a)) for a, b in zip(left, right)]
    return out


def _similar(batch: _Batch, rows: np.ndarray, field_a: str, field_b: str, scorer_name: str,
             threshold: float) -> np.ndarray:
    """Left ``field_a`` against right ``field_b`` with a scorer, on ``rows``; scores are cached per row."""
    scorer, is_distance, scale = _SCORERS[scorer_name]
    key = (field_a, field_b, scorer_name)
    scores = batch.scores.get(key)
    if scores is None:
        scores = batch.scores[key] = np.full(batch.n, np.nan)
    present = ~batch.empty(0, field_a)[rows] & ~batch.empty(1, field_b)[rows]
    wanted = rows[present & np.isnan(scores[rows])]
    if len(wanted):
        scores[wanted] = process.cpdist(list(batch.firsts(0, field_a)[wanted]), list(batch.firsts(1, field_b)[wanted]),
                                        scorer=scorer, dtype=np.float64, workers=1) / scale
    values = scores[rows]
    hit = values <= threshold if is_distance else values >= threshold
    return hit & present


def _swapped_similar(batch: _Batch, rows: np.ndarray, f1: str, f2: str, scorer_name: str, threshold: float):
    """Names entered in each other's fields: a's f1 is like b's f2 and, unless a has no
    f2, a's f2 is like b's f1 (or the same the other way round)."""
    flipped = batch.flipped()
    flipped.scores = batch.scores.setdefault(("flipped",), {})  # type: ignore[assignment]
    forward = _similar(batch, rows, f1, f2, scorer_name, threshold) & (
        batch.empty(0, f2)[rows] | _similar(batch, rows, f2, f1, scorer_name, threshold))
    backward = _similar(flipped, rows, f1, f2, scorer_name, threshold) & (
        flipped.empty(0, f2)[rows] | _similar(flipped, rows, f2, f1, scorer_name, threshold))
    return forward | backward


def _typo_of_member(a: dict, b: dict, value_field: str, set_field: str, condition: dict) -> bool:
    """Is a's value one typo (Damerau-Levenshtein ``distance``, default 1) away from one of
    b's set, with the same first letter? Only a value the table does not know (its set is
    just itself) can be a typo: "jmi" of "jim" (James), but "tim" is a name of its own, not
    a typo of "tom" (Thomas), nor "zoe" of "joe". Both words need ``min_length`` letters
    (default 3)."""
    word = a[value_field].split(" ")[0]
    min_length = condition.get("min_length", 3)
    if len(word) < min_length or tuple(a[set_field]) != (word,):
        return False
    limit = condition.get("distance", 1)
    return any(len(v) >= min_length and v[0] == word[0]
               and distance.DamerauLevenshtein.distance(word, v, score_cutoff=limit) <= limit
               for v in b[set_field])


def _condition_mask(condition: dict, batch: _Batch, rows: np.ndarray) -> np.ndarray:
    """Boolean mask over ``rows``: which pairs meet a level's condition."""
    kind = condition["kind"]
    if kind == "else":
        return np.ones(len(rows), dtype=bool)
    if kind == "null":
        a_empty = np.ones(len(rows), dtype=bool)
        b_empty = np.ones(len(rows), dtype=bool)
        for field in condition["fields"]:
            a_empty &= batch.empty(0, field)[rows]
            b_empty &= batch.empty(1, field)[rows]
        return a_empty | b_empty
    if kind == "all":
        mask = np.ones(len(rows), dtype=bool)
        for part in condition["of"]:
            alive = np.flatnonzero(mask)
            if not len(alive):
                break
            mask[alive] = _condition_mask(part, batch, rows[alive])
        return mask
    if kind == "exact":
        field = condition["field"]
        a, b = batch.column(0, field)[rows], batch.column(1, field)[rows]
        return (a == b) & ~batch.empty(0, field)[rows]
    if kind == "overlap":
        field = condition["field"]
        return _overlap(batch, rows, field)
    if kind == "member":
        value_field, set_field = condition["fields"]
        return _python_test(batch, rows, (value_field,), lambda a, b: (
            a[value_field].split(" ")[0] in b[set_field] or b[value_field].split(" ")[0] in a[set_field]))
    if kind == "member_typo":
        value_field, set_field = condition["fields"]
        return _python_test(batch, rows, (value_field,), lambda a, b: (
            _typo_of_member(a, b, value_field, set_field, condition) or
            _typo_of_member(b, a, value_field, set_field, condition)))
    if kind == "compatible":
        return ~_conflicting(batch, rows, condition["field"])
    if kind == "conflicting":
        return _conflicting(batch, rows, condition["field"])
    if kind == "neither":
        # every field empty on both sides
        empty = np.ones(len(rows), dtype=bool)
        for field in condition["fields"]:
            empty &= batch.empty(0, field)[rows] & batch.empty(1, field)[rows]
        return empty
    if kind == "begins":
        # one value is an initial of the other ("j" / "james") or its first words ("ann" / "ann marie")
        field = condition["field"]
        return _python_test(batch, rows, (field,), lambda a, b: _begins(a[field], b[field]) or _begins(b[field], a[field]))
    if kind == "other_name":
        # both first words are names the nickname table knows (their variants are more than the
        # word itself) and share no variant (not the same, not nicknames of each other or of one
        # name, as Dicky and Ricky are of Richard): "mark" / "mary" are two names, "mrak" a typo of one
        set_field = condition["field"]
        out = (batch.lengths(0, set_field)[rows] > 1) & (batch.lengths(1, set_field)[rows] > 1)
        positions = np.flatnonzero(out)
        if len(positions):
            left, right = batch.column(0, set_field)[rows[positions]], batch.column(1, set_field)[rows[positions]]
            out[positions] = [set(a).isdisjoint(b) for a, b in zip(left, right)]
        return out
    if kind == "cross_exact":
        f1, f2 = condition["fields"]
        same = (batch.column(0, f1)[rows] == batch.column(1, f2)[rows]) & (
            batch.column(0, f2)[rows] == batch.column(1, f1)[rows])
        return same & ~batch.empty(0, f1)[rows] & ~batch.empty(0, f2)[rows]
    if kind == "date_swap":
        field = condition["field"]
        return _python_test(batch, rows, (field,), lambda a, b: (
            a[field][:4] == b[field][:4] and a[field][5:7] == b[field][8:10] and a[field][8:10] == b[field][5:7]))
    if kind == "same_letters":
        field = condition["field"]
        return _python_test(batch, rows, (field,), lambda a, b: len(a[field]) >= 3 and sorted(a[field]) == sorted(b[field]))
    if kind == "cross_similarity":
        f1, f2 = condition["fields"]
        return _swapped_similar(batch, rows, f1, f2, condition["scorer"], condition["threshold"])
    if kind == "date_within":
        field = condition["field"]
        a_days, b_days = batch.days(0, field)[rows], batch.days(1, field)[rows]
        both = ~(np.isnat(a_days) | np.isnat(b_days))
        diff = np.abs((a_days - b_days).astype("timedelta64[D]").astype(np.float64))
        return both & (np.where(both, diff, np.inf) <= condition["days"])
    if kind == "other_given_names":
        # the words after the first agree (within one typo), or one side has none: "mary" / "mary
        # ann" may be one woman, "van anh" / "van binh" or "jean pierre" / "jean luc" are two people.
        # In a short given name (under five letters, often one syllable) only a letter more or less is a
        # typo (ann / anne): another letter in its place makes another name (hye jin / hye min, xiao ming /
        # xiao ling)
        field = condition["field"]
        a, b = batch.rests(0, field)[rows], batch.rests(1, field)[rows]
        agree = (a == "") | (b == "") | (a == b)
        rest = np.flatnonzero(~agree)
        if len(rest):
            a_rest, b_rest = list(a[rest]), list(b[rest])
            typo = process.cpdist(a_rest, b_rest, scorer=distance.DamerauLevenshtein.distance,
                                  score_cutoff=1, dtype=np.int32, workers=1) <= 1
            letter_more_or_less = process.cpdist(a_rest, b_rest, scorer=distance.Indel.distance,
                                                 score_cutoff=1, dtype=np.int32, workers=1) <= 1
            long_enough = np.minimum(np.fromiter(map(len, a_rest), dtype=np.int64, count=len(rest)),
                                     np.fromiter(map(len, b_rest), dtype=np.int64, count=len(rest))) >= MIN_TYPO_LETTERS
            agree[rest] = typo & (long_enough | letter_more_or_less)
        return agree
    if kind == "similarity":
        field = condition["field"]
        hit = _similar(batch, rows, field, field, condition["scorer"], condition["threshold"])
        # digits tell namesakes' addresses apart (john.smith1980 / john.smith1994): with "same_digits",
        # a value that is similar but carries other digits is not a typo of the other. The digits are
        # read in order, so a letter typed inside a number (page13 / page1i3) is still a typo.
        # Numbers issued one after another (SB-1000 / SB-1001, a couple's two accounts opened together)
        # differ in their last character, while a typo lands anywhere: with "same_last", one in the
        # last place is not told from the next number, and is not taken for a typo.
        digits, last = condition.get("same_digits"), condition.get("same_last")
        if (digits or last) and hit.any():
            left, right = batch.firsts(0, field)[rows], batch.firsts(1, field)[rows]
            for position in np.flatnonzero(hit):
                a, b = left[position], right[position]
                if (digits and _NOT_DIGITS.sub("", a) != _NOT_DIGITS.sub("", b)) or (last and a[-1:] != b[-1:]):
                    hit[position] = False
        return hit
    raise ValueError(f"unknown comparison level kind {kind!r}")


def comparison_vectors(model: dict, left: list[dict], right: list[dict]) -> np.ndarray:
    """Pattern matrix (pairs x comparisons) of level indices for pairs (left[i], right[i]).

    Levels are tried in order and each only on the pairs no earlier level took, so
    a batch where most pairs agree exactly computes few fuzzy scores.
    """
    n = len(left)
    comparisons = model["comparisons"]
    out = np.empty((n, len(comparisons)), dtype=np.int8)
    if n == 0:
        return out
    batch = _Batch(left, right)
    for column, comparison in enumerate(comparisons):
        levels = comparison["levels"]
        result = np.full(n, len(levels) - 1, dtype=np.int8)
        remaining = np.arange(n)
        for index, level in enumerate(levels[:-1]):
            if not len(remaining):
                break
            hit = _condition_mask(level, batch, remaining)
            result[remaining[hit]] = index
            remaining = remaining[~hit]
        if comparison.get("as_written"):
            result[(result != 0) & _written_apart(batch, comparison["as_written"])] = len(levels) - 1
        out[:, column] = result
    return out


def _written_apart(batch: _Batch, name: str) -> np.ndarray:
    """Pairs whose name ``name`` both sides have as written (see transforms.model.WRITTEN_NAMES),
    differently, and not as the other side's other name (first and last swapped)."""
    index = WRITTEN_NAMES.index(name)
    if not batch.any_written():
        return np.zeros(batch.n, dtype=bool)                 # no name written in such a script
    a, b = batch.written(0, index), batch.written(1, index)
    apart = (a != "") & (b != "") & (a != b)
    if name != "middle" and apart.any():
        other = WRITTEN_NAMES.index("last" if name == "first" else "first")
        apart &= (a != batch.written(1, other)) & (b != batch.written(0, other))
    return apart


def joint_specs(model: dict) -> list[tuple[int, int, str]]:
    """``(column, other column, joint field)`` of each term-frequency spec with ``given``, in model order:
    the extra frequency columns ``term_frequencies`` adds after one column per comparison."""
    names = [comparison["name"] for comparison in model["comparisons"]]
    return [
        (column, names.index(spec["given"]["comparison"]), spec["given"]["joint_field"])
        for column, comparison in enumerate(model["comparisons"])
        for spec in [comparison.get("term_frequency") or {}] if spec.get("given")
    ]


def term_frequencies(model: dict, left: list[dict], right: list[dict], patterns: np.ndarray) -> np.ndarray:
    """Per pair, how common the shared value is, for each comparison (0 where it does not apply),
    then for each ``given`` spec (``joint_specs``) how common the shared joint value is.

    A comparison with ``term_frequency: {field, levels}`` looks up the relative
    frequency of the value both profiles share (from ``features["tf"]``) when the
    pair lands on one of those levels: agreeing on "smith" is weaker evidence than
    agreeing on "pantazopoulos". With ``given: {comparison, joint_field}`` and the
    pair on the term-frequency levels of both comparisons, the extra column holds
    the share of profiles with the shared joint value ("john|smith").
    """
    width = patterns.shape[1]
    joints = joint_specs(model)
    out = np.zeros((len(patterns), width + len(joints)), dtype=np.float64)
    on_level = {}
    for column, comparison in enumerate(model["comparisons"]):
        spec = comparison.get("term_frequency")
        if not spec:
            continue
        on_level[column] = np.isin(patterns[:, column], _level_indices(comparison, spec["levels"]))
        _fill_shared_frequencies(out, column, np.flatnonzero(on_level[column]), left, right, spec["field"])
    for extra, (column, other, joint_field) in enumerate(joints, start=width):
        _fill_shared_frequencies(out, extra, np.flatnonzero(on_level[column] & on_level[other]), left, right,
                                 joint_field)
    return out


def _fill_shared_frequencies(out: np.ndarray, column: int, rows: np.ndarray, left: list[dict], right: list[dict],
                             field: str) -> None:
    """``out[row, column]`` = the shared frequency of ``field`` of each pair in ``rows``, set together."""
    if len(rows):
        out[rows, column] = [_shared_frequency(left[row], right[row], field) for row in rows.tolist()]


def _level_indices(comparison: dict, labels) -> list[int]:
    own = [level["label"] for level in comparison["levels"]]
    return [own.index(label) for label in labels]


def _shared_frequency(a: dict, b: dict, field: str) -> float:
    """Share of profiles holding the value two profiles share (the rarest, if several)."""
    a_tf = a.get("tf", {}).get(field)
    b_tf = b.get("tf", {}).get(field) if a_tf else None
    if not b_tf:
        return 0.0
    if len(a_tf) == 1:   # most fields hold one value
        (value, share), = a_tf.items()
        other = b_tf.get(value)
        return 0.0 if other is None else max(share, other)
    shared = a_tf.keys() & b_tf.keys()
    if not shared:
        return 0.0
    return min(max(a_tf[v], b_tf[v]) for v in shared)


def _fits_rows(conditions: dict, patterns: np.ndarray, n: int) -> np.ndarray:
    """Rows of a pattern matrix whose level, in every listed column, is one of the listed levels."""
    mask = np.ones(n, dtype=bool)
    for column, levels in conditions.items():
        mask &= np.isin(patterns[:, column], list(levels))
    return mask


class Scorer:
    """The model's weight tables, ready to score pattern matrices quickly."""

    def __init__(self, model: dict):
        self.model = model
        tables = weight_tables(model)
        width = max(len(t) for t in tables)
        self._table = np.zeros((len(tables), width))
        for i, table in enumerate(tables):
            self._table[i, : len(table)] = table
        self._rows = [list(map(float, row)) for row in self._table]
        self._m = [[level.get("m", 1.0) for level in c["levels"]] for c in model["comparisons"]]
        self._m_table = np.ones_like(self._table)
        for i, row in enumerate(self._m):
            self._m_table[i, : len(row)] = row
        self._prior = prior_weight(model)
        self._joints = joint_specs(model)
        self._guards = [
            (guard["name"], self._compile(guard["when"]), self._compile(guard.get("unless", {})))
            for guard in model.get("guards", [])
        ]
        self._settles = {
            guard["name"]: sorted(self._index(c) for c in guard.get("main_settles", guard["when"]))
            for guard in model.get("guards", [])
        }
        self._member_settles = {
            guard["name"]: ([self._index(c) for c in guard["member_settles"].get("profile_lacks", ())],
                            self._compile(guard["member_settles"]["by"]))
            for guard in model.get("guards", []) if guard.get("member_settles")}

    def _compile(self, conditions: dict) -> dict:
        return {self._index(c): {self._level_index(c, label) for label in labels} for c, labels in conditions.items()}

    def _index(self, comparison_name: str) -> int:
        return [c["name"] for c in self.model["comparisons"]].index(comparison_name)

    def _level_index(self, comparison_name: str, label: str) -> int:
        levels = self.model["comparisons"][self._index(comparison_name)]["levels"]
        return [level["label"] for level in levels].index(label)

    def _level_weight(self, column: int, level: int, frequency: float) -> float:
        """A level's weight, lowered for a common shared value (never raised)."""
        weight = self._rows[column][level]
        if frequency:
            weight = min(weight, math.log2(self._m[column][level] / frequency))
        return weight

    def _field_weights(self, pattern, frequencies) -> list[float]:
        """Per comparison, the weight one pattern row adds (term frequencies and joint caps applied)."""
        weights = [self._level_weight(i, int(level), frequencies[i]) for i, level in enumerate(pattern)]
        width = len(weights)
        for extra, (column, other, _) in enumerate(self._joints, start=width):
            joint = frequencies[extra] if extra < len(frequencies) else 0.0
            if joint:
                cap = math.log2(self._m[column][int(pattern[column])] * self._m[other][int(pattern[other])] / joint)
                weights[column] -= max(0.0, weights[column] + weights[other] - cap)
        return weights

    def weight(self, pattern, frequencies=None) -> float:
        """Match weight of one pattern (plain Python: faster than numpy for one row)."""
        if frequencies is None:
            rows = self._rows
            return self._prior + sum(rows[i][level] for i, level in enumerate(pattern))
        return self._prior + sum(self._field_weights(pattern, frequencies))

    def weights(self, patterns: np.ndarray, frequencies: np.ndarray | None = None) -> np.ndarray:
        """Match weight (log2 odds, prior included) of each pattern row.

        ``frequencies`` (from ``term_frequencies``) lowers a level's weight for a common
        shared value, and caps a ``given`` pair of comparisons at their joint value's weight
        (the reduction counted on the first of the two: a first name within its last name).
        """
        if len(patterns) == 0:
            return np.zeros(0)
        width = patterns.shape[1]
        columns = np.arange(width)
        levels = patterns.astype(np.intp)
        per_field = self._table[columns, levels]
        if frequencies is not None and frequencies.any():
            m_levels = self._m_table[columns, levels]
            own = frequencies[:, :width]
            with np.errstate(divide="ignore"):
                adjusted = np.log2(m_levels / np.where(own > 0, own, 1.0))
            per_field = np.where(own > 0, np.minimum(per_field, adjusted), per_field)
            for extra, (column, other, _) in enumerate(self._joints, start=width):
                if extra >= frequencies.shape[1]:
                    break
                joint = frequencies[:, extra]
                with np.errstate(divide="ignore"):
                    cap = np.log2(m_levels[:, column] * m_levels[:, other] / np.where(joint > 0, joint, 1.0))
                excess = np.where(joint > 0, np.maximum(0.0, per_field[:, column] + per_field[:, other] - cap), 0.0)
                per_field[:, column] = per_field[:, column] - excess
        return self._prior + per_field.sum(axis=1)

    def guards(self, pattern) -> list[str]:
        """Names of the guards a single pattern trips."""
        return guard_hits(self._guards, pattern)

    def guard_lists(self, patterns: np.ndarray) -> list[tuple[str, ...]]:
        """For each pattern row, the names of the guards it trips (as ``guards`` would say)."""
        n = len(patterns)
        hits = []
        for name, when, unless in self._guards:
            mask = _fits_rows(when, patterns, n)
            if unless:
                mask &= ~_fits_rows(unless, patterns, n)
            hits.append((name, mask))
        out: list[tuple[str, ...]] = [()] * n
        tripped = np.zeros(n, dtype=bool)
        for _, mask in hits:
            tripped |= mask
        for row in np.flatnonzero(tripped):
            out[row] = tuple(name for name, mask in hits if mask[row])
        return out

    def probabilities(self, weights: np.ndarray) -> np.ndarray:
        """``probability`` of each weight, the same values as the scalar function."""
        return np.fromiter((probability(float(w)) for w in weights), dtype=np.float64, count=len(weights))

    def guard_columns(self, name: str) -> list[int]:
        """The comparison columns a guard's "when" looks at."""
        return next(sorted(when) for guard_name, when, _ in self._guards if guard_name == name)

    def settling_columns(self, name: str) -> list[int]:
        """The comparison columns a main needs a value for to settle a guard between two of its members:
        the guard's ``main_settles`` comparisons, or every comparison of its "when"."""
        return self._settles[name]

    def member_settling(self, name: str) -> tuple[list[int], dict] | None:
        """For a guard a kept member may settle between a profile and the main: the columns of
        the comparisons the profile must lack and the main have (``profile_lacks``), and the
        levels (column -> level indices) of which the member must fit one with the profile
        (``by``); None for other guards."""
        return self._member_settles.get(name)

    def explain(self, pattern, frequencies=None) -> dict:
        """Field-by-field account of one pattern: level label and weight added."""
        out = {}
        comparisons = self.model["comparisons"]
        width = len(comparisons)
        # plain Python numbers: this runs for every edge of every cluster, and numpy's scalars are slow one by one
        pattern = pattern.tolist() if isinstance(pattern, np.ndarray) else [int(level) for level in pattern]
        if frequencies is None:
            frequencies = [0.0] * width
        else:
            frequencies = frequencies.tolist() if isinstance(frequencies, np.ndarray) else [float(x) for x in frequencies]
        weights = self._field_weights(pattern, frequencies)
        joint_of = {column: frequencies[extra] for extra, (column, _, _) in enumerate(self._joints, start=width)
                    if extra < len(frequencies)}
        rows = self._rows
        for i, comparison in enumerate(comparisons):
            level = pattern[i]
            weight = round(weights[i], 3)
            entry = {"level": comparison["levels"][level]["label"], "weight": weight}
            if weight < round(rows[i][level], 3):
                joint = joint_of.get(i)
                if joint and weights[i] < self._level_weight(i, level, frequencies[i]) - 1e-9:
                    other = comparison["term_frequency"]["given"]["comparison"].replace("_", " ")
                    entry["note"] = (f"common together with the same {other}: "
                                     f"{joint:.2%} of profiles share both")
                elif frequencies[i]:
                    entry["note"] = f"common value: {frequencies[i]:.2%} of profiles share it"
            out[comparison["name"]] = entry
        return out

    def probability(self, weight: float) -> float:
        return probability(weight)


# --------------------------------------------------------------------------- Beam

import apache_beam as beam  # noqa: E402  (Beam wiring kept apart from the pure functions)
from apache_beam.metrics import Metrics  # noqa: E402

from transforms import progress  # noqa: E402
from transforms.block import hard_conflicts  # noqa: E402
from transforms.packing import unpack_compressed  # noqa: E402


def scorer_for(cache: dict, model: dict) -> Scorer:
    """The ``Scorer`` of a side-input model, built once per model object a DoFn sees."""
    scorer = cache.get(id(model))
    if scorer is None:
        scorer = cache[id(model)] = Scorer(model)
    return scorer


def compare_batch(model: dict, pairs: list) -> dict:
    """A batch of candidate pairs ``(left, right, rule names)`` -> one compared batch, columns of equal length.

    ``a``/``b`` (ids), ``rules`` (names per pair, the owning rule first),
    ``patterns`` (int8, pairs x comparisons), ``frequencies`` (shared-value
    frequencies, same shape) and ``conflicts`` (hard "never merge" reasons per pair).
    """
    left = [pair[0] for pair in pairs]
    right = [pair[1] for pair in pairs]
    patterns = comparison_vectors(model, left, right)
    return {
        "a": [f["id"] for f in left], "b": [f["id"] for f in right], "rules": [pair[2] for pair in pairs],
        "patterns": patterns, "frequencies": term_frequencies(model, left, right, patterns),
        "conflicts": [tuple(hard_conflicts(x, y)) for x, y in zip(left, right)],
    }


def score_batch(scorer: Scorer, batch: dict) -> dict:
    """A compared batch plus ``weights``, ``probabilities`` and ``guards`` (names tripped, per pair)."""
    weights = scorer.weights(batch["patterns"], batch["frequencies"])
    return dict(batch, weights=weights, probabilities=scorer.probabilities(weights),
                guards=scorer.guard_lists(batch["patterns"]))


def edge_rows(batch: dict, threshold: float) -> np.ndarray:
    """Rows of a scored batch that link two profiles for merging: at or above the threshold,
    no hard conflict and no guard."""
    clear = np.fromiter((not c and not g for c, g in zip(batch["conflicts"], batch["guards"])), dtype=bool,
                        count=len(batch["a"]))
    return np.flatnonzero((batch["probabilities"] >= threshold) & clear)


def scored_pair(batch: dict, row: int) -> dict:
    """One row of a scored batch as a pair record."""
    return {
        "a": batch["a"][row], "b": batch["b"][row], "rule": batch["rules"][row][0], "rules": list(batch["rules"][row]),
        "pattern": tuple(int(x) for x in batch["patterns"][row]),
        "frequencies": tuple(float(x) for x in batch["frequencies"][row]),
        "weight": float(batch["weights"][row]), "probability": float(batch["probabilities"][row]),
        "conflicts": list(batch["conflicts"][row]), "guards": list(batch["guards"][row]),
    }


class _CompareFn(beam.DoFn):
    """A batch of candidate pairs -> one compared batch, patterns computed together."""

    def __init__(self, model):
        self._model = model
        self._compared = progress.counter("compare", "pairs_compared")
        self._usec = Metrics.counter("compare", "busy_usec")

    def process(self, pairs):
        if not pairs:
            return
        started = time.perf_counter()
        batch = compare_batch(self._model, pairs)
        self._usec.inc(int((time.perf_counter() - started) * 1_000_000))
        self._compared.inc(len(pairs))
        yield batch


class ComparePairs(beam.PTransform):
    """Batches of candidate pairs ``[(left, right, rules)]`` -> compared batches (see ``compare_batch``).

    Each fuzzy comparison runs over a whole batch in one rapidfuzz call instead of
    once per pair in Python, and the runner handles one element per batch.
    """

    def __init__(self, model: dict):
        super().__init__()
        self._model = model

    def expand(self, batches):
        return batches | "ComparisonPatterns" >> beam.ParDo(_CompareFn(self._model))


class _ScoreFn(beam.DoFn):
    def __init__(self):
        self._scorers: dict = {}
        self._scored = progress.counter("score", "pairs_scored")
        self._usec = Metrics.counter("score", "busy_usec")

    def process(self, batch, model):
        scorer = scorer_for(self._scorers, model)
        started = time.perf_counter()
        batch = unpack_compressed(batch)
        scored = score_batch(scorer, batch)
        self._usec.inc(int((time.perf_counter() - started) * 1_000_000))
        self._scored.inc(len(batch["a"]))
        yield scored


class ScorePairs(beam.PTransform):
    """Compared batches (or the same packed by ``packing.pack_compressed``) -> scored batches
    (weights, probabilities, guards), model as side input."""

    def __init__(self, model_view):
        super().__init__()
        self._model = model_view

    def expand(self, compared):
        return compared | "MatchWeight" >> beam.ParDo(_ScoreFn(), model=self._model)


class MatchEdges(beam.PTransform):
    """Scored batches -> ``(a, b)`` id pairs that link two profiles for merging (see ``edge_rows``)."""

    def __init__(self, threshold: float):
        super().__init__()
        self._threshold = threshold

    def expand(self, scored):
        threshold = self._threshold
        return scored | "EdgesOfBatch" >> beam.FlatMap(
            lambda batch: [(batch["a"][r], batch["b"][r]) for r in edge_rows(batch, threshold)])


def is_edge(pair: dict, threshold: float) -> bool:
    """A scored pair that links two profiles for merging: above the threshold, nothing against it."""
    return pair["probability"] >= threshold and not pair["conflicts"] and not pair["guards"]


class _ExplainReviewFn(beam.DoFn):
    def __init__(self, threshold: float, review_threshold: float):
        self._threshold = threshold
        self._review_threshold = review_threshold
        self._scorers: dict = {}

    def process(self, batch, model):
        for row in np.flatnonzero(batch["probabilities"] >= self._review_threshold):
            pair = scored_pair(batch, row)
            if not is_edge(pair, self._threshold):
                yield self._review(pair, model)

    def _review(self, pair, model):
        scorer = scorer_for(self._scorers, model)
        reasons = list(pair["conflicts"]) + [f"guard: {g}" for g in pair["guards"]]
        if pair["probability"] < self._threshold:
            reasons.append(f"probability {pair['probability']:.4f} is below --match_threshold {self._threshold}")
        return {
            "kind": "pair", "a": pair["a"], "b": pair["b"], "rule": pair["rule"],
            "weight": round(pair["weight"], 3), "probability": round(pair["probability"], 6),
            "reasons": reasons, "fields": scorer.explain(pair["pattern"], pair["frequencies"]),
        }


class ReviewPairs(beam.PTransform):
    """Scored batches -> the pairs a person should look at, each with its reasons and field weights.

    A pair goes to review when its probability is between ``review_threshold`` and
    ``threshold``, or above it but stopped by a hard rule or a guard.
    """

    def __init__(self, model_view, threshold: float, review_threshold: float):
        super().__init__()
        self._model = model_view
        self._threshold = threshold
        self._review_threshold = review_threshold

    def expand(self, scored):
        return scored | "ExplainReviewPair" >> beam.ParDo(
            _ExplainReviewFn(self._threshold, self._review_threshold), model=self._model)
