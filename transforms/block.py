"""Blocking: only profiles that share a blocking key are ever compared.

Each blocking rule names feature values two profiles must share ("same phone",
"same birth date and phonetic last name", ...). A profile gets one key per rule
(several for multi-valued features such as phones). Profiles are grouped by key
and pairs are made inside each group, so the work grows with the sizes of the
blocks, never with n^2.

Two things keep that true on real data:

* **Oversized blocks are capped.** A key shared by more than ``max_block_size``
  (or the rule's own, lower ``max_block_size``)
  profiles (a call-centre phone, ``noemail@example.com``) makes no pairs; it is
  counted and listed (``capped_blocks``) so the report can say which.
* **Each pair is compared once.** A pair that shares several keys is made only in
  the block of the smallest key they share that is not capped (every profile
  carries its keys, so a block can tell without another shuffle).

Keys are shuffled in buckets (``transforms.buckets``): a profile's nine or so
keys would otherwise be nine elements each, most of them shared with nobody.
Block sizes are counted from the keys alone (a light shuffle), so the blocks
themselves are read once, by the step that pairs them; a member's features are
packed once for all its keys and unpacked only in blocks that make pairs.

Pairs leave this step in *batches* (lists of a few thousand pairs gathered across
the blocks of a bundle), not one element each: comparing and scoring work on whole
batches, and a million candidate pairs as single elements would spend most of the
job in the runner's per-element bookkeeping.
"""
from __future__ import annotations

import functools
import itertools
import time
import typing
from typing import Iterable

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from transforms import progress
from transforms.buckets import (DEFAULT_BUCKETS, BucketBuffer, CountInBuckets, FromSideInput, group_bucket,
                               in_global_window, key_hash)
from transforms.packing import Batch, like, pack, records, unpack

KEY_SEPARATOR = "\x1f"


# "<rule index>\x1f", made once: block_keys runs for every profile
_PREFIXES = tuple(f"{index}{KEY_SEPARATOR}" for index in range(100))


def block_keys(features: dict, rules: list[dict]) -> tuple[str, ...]:
    """All blocking keys of one profile, as ``"<rule index>\\x1f<value>\\x1f..."`` strings.

    A rule yields no key when any of its features is empty; a multi-valued feature
    (a tuple) yields one key per value, and several of them the product.
    """
    keys: list[str] = []
    get = features.get
    for index, rule in enumerate(rules):
        fields = rule["fields"]
        prefix = _PREFIXES[index] if index < len(_PREFIXES) else f"{index}{KEY_SEPARATOR}"
        if len(fields) == 1:
            value = get(fields[0])
            if not value:
                continue
            if isinstance(value, tuple):
                keys.extend([prefix + v for v in value if v])
            else:
                keys.append(prefix + value)
            continue
        values = [get(field) for field in fields]
        if not all(values):
            continue
        if not any(isinstance(value, tuple) for value in values):   # most rules: one value per field
            keys.append(prefix + KEY_SEPARATOR.join(values))
            continue
        parts = []
        for value in values:
            if isinstance(value, tuple):
                value = [v for v in value if v]
                if not value:
                    break
                parts.append(value)
            else:
                parts.append((value,))
        else:
            keys.extend([prefix + KEY_SEPARATOR.join(combo) for combo in itertools.product(*parts)])
    return tuple(sorted(set(keys)))


def rule_of(key: str) -> int:
    return int(key.split(KEY_SEPARATOR, 1)[0])


def block_limit(rules: list[dict], key: str, default: int) -> int:
    """The largest block a key may make. A rule with a ``window`` pairs linearly, so its own
    ``max_block_size`` (if any) is its limit; any other rule's is the lower of its own and the default."""
    rule = rules[rule_of(key)]
    if rule.get("window"):
        return rule.get("max_block_size", default)
    return min(rule.get("max_block_size", default), default)


def is_windowed(rules: list[dict], key: str, size: int) -> bool:
    """Whether a block of this size under this key pairs each member with its ``window``
    neighbours only (in ``window_order``) instead of with every other member.

    A block of at most ``window`` + 1 members, or of at most the rule's ``all_pairs_up_to``,
    pairs everyone (that costs at most (size - 1) / 2 pairs per member)."""
    rule = rules[rule_of(key)]
    window = rule.get("window")
    return bool(window) and size > max(window + 1, rule.get("all_pairs_up_to", 0))


def window_order(features: dict) -> tuple:
    """Sort order inside a windowed block: near-duplicates end up next to each other."""
    def first(value):
        return (value[0] if value else "") if isinstance(value, tuple) else (value or "")
    return tuple(first(features.get(field)) for field in ("last", "first", "dob", "postcodes", "emails", "phones")) \
        + (features["id"],)


def owned_pairs(block_key: str, members: list[dict], capped, windowed=(),
                window: int = 0) -> Iterable[tuple[dict, dict, tuple[int, ...]]]:
    """Pairs of a block that this block owns, each pair of the whole job made by exactly one block.

    ``members`` carry their sorted keys in ``keys``; ``capped`` is any container of keys whose blocks make no
    pairs, ``windowed`` of keys whose blocks pair only neighbours. The owner of a
    pair is its smallest shared key that pairs everyone (neither capped nor
    windowed), else its smallest shared windowed key. With ``window`` > 0 this
    block is windowed: it looks only at members within ``window`` places of each
    other in ``window_order`` (a pair its owner's window misses is not made: that
    is what keeps a large block's cost linear). Yields ``(left, right, rules)``
    ordered by ProfileId (left id < right id), where ``rules`` are the indices of
    every rule that shares a key with them (the owner first), which estimation needs.
    """
    if window:
        ordered = sorted(members, key=window_order)
        candidates = ((i, j) for i in range(len(ordered)) for j in range(i + 1, min(i + 1 + window, len(ordered))))
    else:
        ordered = sorted(members, key=lambda f: f["id"])
        candidates = ((i, j) for i in range(len(ordered)) for j in range(i + 1, len(ordered)))
    capped = capped if isinstance(capped, frozenset) else frozenset(capped)
    windowed = windowed if isinstance(windowed, frozenset) else frozenset(windowed)
    key_sets = [frozenset(f["keys"]) for f in ordered]
    rules_of: dict = {}   # a block's pairs mostly share the same keys
    for i, j in candidates:
        left, right = ordered[i], ordered[j]
        if left["id"] == right["id"]:
            continue
        # set operations run in C: most pairs share one or two keys of the ten or so each has
        shared = key_sets[i] & key_sets[j]
        if capped:
            shared -= capped
        if not shared:
            continue
        if len(shared) == 1:
            owner = next(iter(shared))
        else:
            owner = min(shared - windowed or shared) if windowed else min(shared)
        if owner == block_key:
            if left["id"] > right["id"]:
                left, right = right, left
            rules = rules_of.get(shared)
            if rules is None:
                rules = rules_of[shared] = tuple(sorted({rule_of(k) for k in shared}))
            yield left, right, rules


def hard_conflicts(left: dict, right: dict) -> list[str]:
    """Reasons two profiles may never be merged, whatever their score.

    * different ProfileType: a business account (ACCOUNT_PROFILE, or no ProfileType and
      PartyType BUSINESS) never merges with a person (PROFILE, or no ProfileType);
    * both have a value of a named identifier (e.g. AccountNumber) and they differ.
    """
    reasons = []
    left_type, right_type = left["type"] or "PROFILE", right["type"] or "PROFILE"
    if left_type != right_type:
        reasons.append(f"different ProfileType ({left_type} / {right_type})")
    right_ids = dict(right["identifiers"])
    for field, value in left["identifiers"]:
        other = right_ids.get(field)
        if other and other != value:
            reasons.append(f"different {field}")
    return reasons


def keys_of(features: dict, rules: list[dict]) -> tuple[str, ...]:
    """A profile's blocking keys: those ``with_block_keys`` put in its features, else made now."""
    keys = features.get("keys")
    return keys if keys is not None else block_keys(features, rules)


def with_block_keys(rules: list[dict], element):
    """Features (or a batch of them) with their blocking keys under ``keys``, made once for the two
    steps that read them (counting block sizes, and sending profiles to their blocks)."""
    return like(element, [dict(features, keys=block_keys(features, rules)) for features in records(element)])


def keys_only(rules: list[dict], element) -> list[tuple[str, None]]:
    """The blocking keys of a profile's features (or a batch of them) as ``(key, None)`` entries,
    for counting block sizes."""
    return [(key, None) for features in records(element) for key in keys_of(features, rules)]


def shared_key_filter(hash_arrays) -> np.ndarray:
    """The sorted ``key_hash`` values of every block that can make pairs, from per-bucket arrays."""
    arrays = [a for a in hash_arrays if len(a)]
    return np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, dtype=np.uint32)


def pairing_keys(keys: tuple[str, ...], shared: np.ndarray) -> list[str]:
    """The keys (of one profile) whose blocks can make pairs: their hash is in ``shared``.

    A hash shared by chance (32 bits) only lets a key of a one-member block through,
    which then makes no pair: the filter never drops a key that pairs.
    """
    return pairing_keys_of_many([keys], shared)[0]


def pairing_keys_of_many(key_lists: list[tuple[str, ...]], shared: np.ndarray) -> list[list[str]]:
    """``pairing_keys`` of each of several profiles' keys, looked up together (one search for a
    whole batch of profiles instead of one per profile)."""
    total = sum(map(len, key_lists))
    if not total or not len(shared):
        return [[] for _ in key_lists]
    hashes = np.fromiter((key_hash(k) for keys in key_lists for k in keys), dtype=np.uint32, count=total)
    found = np.minimum(np.searchsorted(shared, hashes), len(shared) - 1)
    hits = (shared[found] == hashes).tolist()
    out, start = [], 0
    for keys in key_lists:
        end = start + len(keys)
        out.append([key for key, hit in zip(keys, hits[start:end]) if hit])
        start = end
    return out


# The tagged output of the steps on either side of the blocking shuffle: how many (key, member)
# entries went in, and how many came out grouped (the job checks that they agree).
ENTRIES = "entries"


@beam.typehints.with_output_types(typing.Tuple[int, typing.Any])
class _AttachKeysFn(beam.DoFn):
    """Features (or a batch of them) -> ``(bucket, packed [(blocking key, packed slim features), ...])``
    batches (see transforms.buckets), for the keys of blocks that can make pairs only (``shared``): most keys
    are held by one profile, or by a capped block, and their members would never be unpacked.
    Each bundle also gives the number of entries it sent (``ENTRIES``)."""

    def __init__(self, rules, keep_fields, buckets):
        self._rules = rules
        self._keep = keep_fields
        self._fields = packed_fields(keep_fields)
        self._buckets = buckets
        self._members: BucketBuffer | None = None
        self._filter = FromSideInput(shared_key_filter)
        self._skipped = Metrics.counter("block", "keys_without_pairs")

    def start_bundle(self):
        self._members = BucketBuffer(self._buckets)
        self._sent = 0

    def process(self, element, shared_hashes):
        shared = self._filter(shared_hashes)
        skipped = 0
        batch = records(element)
        key_lists = [keys_of(features, self._rules) for features in batch]
        for features, keys, pairing in zip(batch, key_lists, pairing_keys_of_many(key_lists, shared)):
            skipped += len(keys) - len(pairing)
            if not pairing:
                continue
            # Only what comparing needs travels through the shuffle, packed once for all its keys,
            # as a tuple of values in a fixed field order when the fields are known: the names would
            # be a third of it. A member carries all its keys: they say which block owns each pair.
            if self._fields:
                payload = pack(tuple(keys if field == "keys" else features.get(field) for field in self._fields))
            else:
                payload = pack(dict(features, keys=keys))
            self._sent += len(pairing)
            yield from self._members.add_many([(key, payload) for key in pairing])
        self._skipped.inc(skipped)

    def finish_bundle(self):
        for batch in self._members.drain():
            yield in_global_window(batch)
        yield beam.pvalue.TaggedOutput(ENTRIES, in_global_window(self._sent))


def packed_fields(keep_fields) -> tuple[str, ...]:
    """The field order of packed block members (their kept features, then their keys);
    empty when every feature is kept (members then travel as dicts)."""
    return tuple(sorted(set(keep_fields) - {"keys"})) + ("keys",) if keep_fields else ()


def capped_blocks(sizes: dict, rules: list[dict], max_block_size: int) -> list[dict]:
    """The blocks among ``{key: size}`` that are too big to pair: one record each with the raw
    ``block_key``, the rule, the key as shown to people, the size and the pairs not made."""
    out = []
    for key, size in sizes.items():
        if size > block_limit(rules, key, max_block_size):
            out.append({"block_key": key, "rule": rules[rule_of(key)]["name"],
                        "key": key.split(KEY_SEPARATOR, 1)[1].replace(KEY_SEPARATOR, " + "),
                        "size": size, "pairs_not_made": size * (size - 1) // 2})
    return out


def _two_or_more(key: str) -> int:
    return 2   # a key held by one profile makes no pair, and no block to cap or window


class _LargeBlocksFn(beam.DoFn):
    """A bucket's ``(key, size)`` counts (sizes of 2 or more) -> capped-block records (main
    output), ``(key, size)`` of every block that is capped or windowed (``large``), which
    pairing needs to know, and the ``key_hash`` values of the blocks that can make pairs
    (``shared``, one array per bucket)."""

    LARGE = "large"
    SHARED = "shared"

    def __init__(self, rules, max_block_size):
        self._rules = rules
        self._max = max_block_size
        self._capped = Metrics.counter("block", "capped_blocks")
        self._windowed = Metrics.counter("block", "windowed_blocks")

    def process(self, counts):
        sizes = dict(counts)
        for record in capped_blocks(sizes, self._rules, self._max):
            self._capped.inc()
            yield {k: v for k, v in record.items() if k != "block_key"}
            yield beam.pvalue.TaggedOutput(self.LARGE, (record["block_key"], record["size"]))
        shared = []
        for key, size in sizes.items():
            if size > block_limit(self._rules, key, self._max):
                continue
            shared.append(key_hash(key))
            if is_windowed(self._rules, key, size):
                self._windowed.inc()
                yield beam.pvalue.TaggedOutput(self.LARGE, (key, size))
        yield beam.pvalue.TaggedOutput(self.SHARED, np.array(shared, dtype=np.uint32))


class BlockSizes(beam.PTransform):
    """Feature dicts (or batches of them) -> the sizes of their blocks, from the keys alone (a light shuffle).

    Returns a dict: ``capped`` (one record per oversized block), ``large`` (``(key, size)``
    of capped and windowed blocks) and ``shared`` (per bucket, the hashes of the blocks that
    can make pairs). Keys need no term frequencies, so this can read the features as they
    leave normalising and run before them.
    """

    def __init__(self, rules: list[dict], max_block_size: int, buckets: int = DEFAULT_BUCKETS):
        super().__init__()
        self._rules = rules
        self._max = max_block_size
        self._buckets = buckets

    def expand(self, features):
        sized = (
            features
            | "CountKeys" >> CountInBuckets(functools.partial(keys_only, self._rules), _two_or_more, self._buckets)
            | "LargeBlocks" >> beam.ParDo(_LargeBlocksFn(self._rules, self._max)).with_outputs(
                _LargeBlocksFn.LARGE, _LargeBlocksFn.SHARED, main="capped")
        )
        return {"capped": sized.capped, "large": sized[_LargeBlocksFn.LARGE], "shared": sized[_LargeBlocksFn.SHARED]}


def _capped_and_windowed(rules: list[dict], max_block_size: int, large: dict) -> tuple[frozenset, frozenset]:
    """Capped and windowed keys from the ``(key, size)`` side input of large blocks."""
    capped = frozenset(k for k, size in large.items() if size > block_limit(rules, k, max_block_size))
    return capped, frozenset(large) - capped


class _PairsInBlockFn(beam.DoFn):
    """A bucket of blocks -> batches of owned pairs (capped blocks make none), and the number
    of entries the bucket held (``ENTRIES``).

    Pairs are gathered across the blocks of a bundle and emitted ``batch_size`` at a
    time (the rest when the bundle ends), in the global window the job runs in.
    """

    def __init__(self, rules, max_block_size, batch_size, fields):
        self._rules = rules
        self._batch_size = batch_size
        self._fields = fields
        self._names = [rule["name"] for rule in rules]
        self._split = FromSideInput(functools.partial(_capped_and_windowed, rules, max_block_size))
        self._buffer: list = []
        self._pairs = progress.counter("block", "candidate_pairs")
        self._usec = Metrics.counter("block", "busy_usec")

    def start_bundle(self):
        self._buffer = Batch()

    def process(self, element, large_blocks):
        _, batches = element
        started = time.perf_counter()
        names = self._names
        capped, windowed = self._split(large_blocks)
        grouped = group_bucket(batches)
        yield beam.pvalue.TaggedOutput(ENTRIES, sum(map(len, grouped.values())))
        for key, members in grouped.items():
            if len(members) < 2 or key in capped:
                continue
            window = self._rules[rule_of(key)]["window"] if key in windowed else 0
            members = [self._record(m) for m in members]
            pairs = [(left, right, tuple(names[r] for r in rules)) for left, right, rules in
                     owned_pairs(key, members, capped, windowed, window)]
            self._pairs.inc(len(pairs))
            self._buffer.extend(pairs)
            if len(self._buffer) >= self._batch_size:
                batch, self._buffer = self._buffer, Batch()
                # the time of the steps this batch runs through next is theirs, not blocking's
                self._usec.inc(int((time.perf_counter() - started) * 1_000_000))
                yield batch
                started = time.perf_counter()
        self._usec.inc(int((time.perf_counter() - started) * 1_000_000))

    def _record(self, payload) -> dict:
        record = unpack(payload)
        return dict(zip(self._fields, record)) if isinstance(record, tuple) else record

    def finish_bundle(self):
        if self._buffer:
            batch, self._buffer = self._buffer, Batch()
            yield in_global_window(batch)


SHUFFLE_PARTS = 8


def _bucket_part(element, parts: int) -> int:
    return element[0] % parts


class BlockPairs(beam.PTransform):
    """Feature dicts (or batches of them) -> batches (lists) of candidate pairs
    ``(left, right, rule names)``, each pair once.

    ``rule names`` lists every blocking rule that pairs the two profiles; the
    first is the rule whose block made the pair. ``keep_fields`` (if given) are
    the only features carried into the blocks, to keep the shuffle small.
    A batch holds about ``batch_size`` pairs (a block's pairs are never split).
    Blocks are shuffled in ``buckets`` buckets (``transforms.buckets``), grouped in ``parts``
    separate ``GroupByKey``s (by bucket), each paired in its own step. ``then`` (if given) makes a
    PTransform applied to each part's batches before the parts are flattened, so that the
    flattened collection is what it makes (the pipeline compares and packs pairs there). If it
    makes a dict of collections, each is flattened over the parts and returned under its name
    (``pairs`` among them).

    ``sizes`` is the output of ``BlockSizes`` on the same profiles (made here if not given;
    the pipeline gives it from the features before term frequencies, so counting runs early).

    Returns a dict: ``pairs`` (the batches, or what ``then`` made of them), ``capped`` (one
    record per oversized block: rule, key, size, pairs not made), and ``entries_sent`` and
    ``entries_grouped``: one number each, the (key, member) entries that went into the blocking
    shuffle and that came out of it. They must agree; a runner that loses data makes them differ.
    """

    def __init__(self, rules: list[dict], max_block_size: int, keep_fields: frozenset | None = None,
                 batch_size: int = 2048, buckets: int = DEFAULT_BUCKETS, sizes: dict | None = None,
                 parts: int = SHUFFLE_PARTS, then=None):
        super().__init__()
        self._parts = parts
        self._then = then
        self._rules = rules
        self._max = max_block_size
        self._keep = keep_fields
        self._batch_size = batch_size
        self._buckets = buckets
        self._sizes = sizes

    def expand(self, features):
        # Block sizes come from the keys alone, so the blocks themselves are read once, by the
        # step that pairs them, and only keys of blocks that can pair carry their members.
        sizes = self._sizes or features | "BlockSizes" >> BlockSizes(self._rules, self._max, self._buckets)
        keyed = features | "AttachBlockKeys" >> beam.ParDo(
            _AttachKeysFn(self._rules, self._keep, self._buckets),
            shared_hashes=beam.pvalue.AsList(sizes["shared"])).with_outputs(ENTRIES, main="members")
        members = keyed.members
        # The largest shuffle of the job, grouped in parts by bucket: a runner that groups in memory
        # (the DirectRunner) encodes a grouped shuffle for the step that reads it while still holding
        # it, and hands each worker its share at once; in parts, one part at a time is doubled and sent.
        parts = members | "SplitBuckets" >> beam.Partition(_bucket_part, self._parts)
        large = beam.pvalue.AsDict(sizes["large"])
        outputs, grouped = [], []
        for i in range(self._parts):
            paired = (parts[i]
                      | f"GroupByBucket{i}" >> beam.GroupByKey()
                      | f"PairsInBlocks{i}" >> beam.ParDo(
                          _PairsInBlockFn(self._rules, self._max, self._batch_size, packed_fields(self._keep)),
                          large_blocks=large).with_output_types(Batch).with_outputs(ENTRIES, main="pairs"))
            pairs = paired.pairs
            grouped.append(paired[ENTRIES])
            # what the caller does with the pairs runs in each part's own step, before the parts meet:
            # a runner holds the flattened parts in memory until their next step reads them
            made = pairs | f"Then{i}" >> self._then() if self._then else pairs
            outputs.append(made if isinstance(made, dict) else {"pairs": made})
        own = ("capped", "entries_sent", "entries_grouped")
        if "pairs" not in outputs[0] or not set(own).isdisjoint(outputs[0]):
            raise ValueError(f"BlockPairs: a then that makes a dict must make 'pairs', and none of {', '.join(own)}; "
                             f"it made {', '.join(outputs[0])}")
        result = {name: [made[name] for made in outputs] | f"AllParts{name.title()}" >> beam.Flatten()
                  for name in outputs[0]}
        result.update(capped=sizes["capped"],
                      entries_sent=keyed[ENTRIES] | "EntriesSent" >> beam.CombineGlobally(sum),
                      entries_grouped=grouped | "AllGrouped" >> beam.Flatten() | "EntriesGrouped" >> beam.CombineGlobally(sum))
        return result
