"""Shuffles by bucket: many small keys travel as a few large elements.

Blocking gives every profile a dozen keys, most of them shared with nobody. As
one element per key, a million profiles are twelve million elements, and the
runner's per-element work (encoding, grouping, decoding, calling the next step)
costs more than the matching itself. So a step that would emit ``(key, value)``
adds it to a ``BucketBuffer`` instead: values are gathered by a stable hash of
their key into ``buckets`` lists and emitted as ``(bucket, packed list of (key,
value))``. After a ``GroupByKey`` on the bucket, ``group_bucket`` gives each key
its values, exactly the groups a ``GroupByKey`` on the keys would have made.

Each list travels packed as one bytes value (``transforms.packing``) and
compressed (zstd, level 1): a runner that groups in memory then holds a few
thousand bytes objects instead of millions of small Python objects, and the
lists of one bucket share most of their text (keys of one rule, field layouts),
so they shrink to about a third (``benchmarks/compression.py`` on generated
profiles: 37% of the bytes kept, 15 + 5 microseconds per profile to compress and
decompress its ten or so entries; zlib at its fastest kept 38% for 47 + 20).

It is a plain GroupByKey with bigger values, so every runner supports it; the
bucket count bounds the parallelism of the step after it (512 by default, more
than the workers of any job this tool is meant for).
"""
from __future__ import annotations

import functools
import itertools
import typing
import zlib
from collections import Counter
from typing import Iterable

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from transforms.packing import pack_compressed, records, unpack_compressed

DEFAULT_BUCKETS = 512
# Values buffered before the buffer is emitted (about 100 per bucket element at 512 buckets).
DEFAULT_FLUSH_AT = 50_000


def key_hash(key: str) -> int:
    """A stable 32-bit hash of a key (the same in every process, unlike ``hash()``)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass"))


def bucket_of(key: str, buckets: int) -> int:
    """A key's bucket, from its stable hash."""
    return key_hash(key) % buckets


class BucketBuffer:
    """Gathers ``(key, value)`` pairs by bucket inside one DoFn bundle.

    ``add`` returns the ``(bucket, packed list)`` batches to emit when the buffer
    is full (else an empty list); ``drain`` returns what is left, for
    ``finish_bundle`` (wrap each batch with ``in_global_window`` there).
    """

    def __init__(self, buckets: int = DEFAULT_BUCKETS, flush_at: int = DEFAULT_FLUSH_AT):
        if buckets < 1:
            raise ValueError("buckets must be at least 1")
        self.buckets = buckets
        self._flush_at = flush_at
        self._lists: list[list] = [[] for _ in range(buckets)]
        self._size = 0

    def add(self, key: str, value) -> list[tuple[int, list]]:
        return self.add_many(((key, value),))

    def add_many(self, entries: Iterable[tuple[str, object]]) -> list[tuple[int, list]]:
        """``add`` for each ``(key, value)`` of ``entries`` (one call for a profile's or a batch's
        entries: this runs for every entry of every shuffle by bucket, so the loop does no more than
        hash the key and append the entry as it is, up to the room left before the next flush)."""
        out: list = []
        buckets, crc32 = self.buckets, zlib.crc32
        entries = iter(entries)
        while True:
            lists, size = self._lists, self._size
            for entry in itertools.islice(entries, self._flush_at - size):
                lists[crc32(entry[0].encode("utf-8", "surrogatepass")) % buckets].append(entry)   # bucket_of
                size += 1
            self._size = size
            if size < self._flush_at:
                return out
            out.extend(self.drain())

    def drain(self) -> list[tuple[int, bytes]]:
        batches = [(bucket, pack_compressed(items)) for bucket, items in enumerate(self._lists) if items]
        self._lists, self._size = [[] for _ in range(self.buckets)], 0
        return batches


def in_global_window(value) -> WindowedValue:
    """A value emitted from ``finish_bundle``, in the global window this job runs in."""
    return WindowedValue(value, GlobalWindow().max_timestamp(), (GlobalWindow(),))


class FromSideInput:
    """What a DoFn works out from a side input (a dict, a sorted array...), worked out once per side
    input object the runner hands it, not once per element: ``derived = self._table(side_input)``.

    The side input is known by its ``id``, not kept: keeping it would hold a second copy alive
    between bundles. Within one run a side input's content never changes, so an id reused by a
    later copy stands for the same content."""

    def __init__(self, derive):
        self._derive = derive
        self._source_id = None
        self._value = None

    def __call__(self, side_input):
        if self._source_id != id(side_input):
            self._value, self._source_id = self._derive(side_input), id(side_input)
        return self._value


def group_bucket(batches: Iterable[bytes]) -> dict:
    """The packed batches of one bucket -> ``{key: [values]}``, values in arrival order."""
    groups: dict = {}
    for batch in batches:
        for key, value in unpack_compressed(batch):
            groups.setdefault(key, []).append(value)
    return groups


@beam.typehints.with_output_types(typing.Tuple[int, typing.Any])
class ToBucketsFn(beam.DoFn):
    """element -> ``(bucket, packed [(key, value), ...])`` batches, the ``(key, value)`` entries of
    each element given by ``entries(element)`` (a picklable function)."""

    def __init__(self, entries, buckets: int = DEFAULT_BUCKETS):
        self._entries = entries
        self._buckets = buckets
        self._buffer: BucketBuffer | None = None

    def start_bundle(self):
        self._buffer = BucketBuffer(self._buckets)

    def process(self, element):
        yield from self._buffer.add_many(self._entries(element))

    def finish_bundle(self):
        for batch in self._buffer.drain():
            yield in_global_window(batch)


def _tagged_entries(tag: str, element) -> list:
    return [(key, (tag, value)) for key, value in records(element)]


def _join_bucket(element, tags):
    _, batches = element
    for key, tagged in sorted(group_bucket(batches).items()):
        joined = {tag: [] for tag in tags}
        for tag, value in tagged:
            joined[tag].append(value)
        yield key, joined


class CoGroupInBuckets(beam.PTransform):
    """``{tag: PCollection of (key, value)}`` -> ``(key, {tag: [values]})``, as ``CoGroupByKey`` gives,
    for every key present in any input; the shuffle moves buckets, not keys (string keys). An
    input's elements may also be lists of ``(key, value)`` (see ``transforms.packing.records``)."""

    def __init__(self, buckets: int = DEFAULT_BUCKETS):
        super().__init__()
        self._buckets = buckets

    def expand(self, tagged: dict):
        tags = sorted(tagged)
        parts = [tagged[tag] | f"Bucket_{tag}" >> beam.ParDo(
            ToBucketsFn(functools.partial(_tagged_entries, tag), self._buckets)) for tag in tags]
        return (
            parts
            | "AllBuckets" >> beam.Flatten()
            | "GroupByBucket" >> beam.GroupByKey()
            | "JoinInBucket" >> beam.FlatMap(_join_bucket, tags)
        )


def _groups_of_bucket(element) -> list:
    _, batches = element
    return sorted(group_bucket(batches).items())


class GroupInBuckets(beam.PTransform):
    """``(key, value)`` elements (string keys) -> ``(key, [values])``, the groups ``GroupByKey``
    makes, with the shuffle moving buckets of packed, compressed entries instead of one element
    per key. ``entries(element)`` (picklable, optional) gives an element's ``(key, value)``
    entries; without it an element is one entry or a list of them."""

    def __init__(self, entries=None, buckets: int = DEFAULT_BUCKETS):
        super().__init__()
        self._entries = entries or records
        self._buckets = buckets

    def expand(self, pcoll):
        return (
            pcoll
            | "ToBuckets" >> beam.ParDo(ToBucketsFn(self._entries, self._buckets))
            | "GroupByBucket" >> beam.GroupByKey()
            | "GroupsOfBucket" >> beam.FlatMap(_groups_of_bucket)
        )


@beam.typehints.with_output_types(typing.Tuple[int, typing.Any])
class _CountToBucketsFn(beam.DoFn):
    """element -> ``(bucket, packed [(key, count), ...])`` batches: the keys of ``entries(element)``
    counted over the bundle first, so a key seen many times (a common first name, a city)
    travels once per bundle with its count, not once per profile."""

    def __init__(self, entries, buckets: int = DEFAULT_BUCKETS, flush_at: int = DEFAULT_FLUSH_AT):
        self._entries = entries
        self._buckets = buckets
        self._flush_at = flush_at
        self._counts: Counter = Counter()

    def start_bundle(self):
        self._counts = Counter()

    def process(self, element):
        self._counts.update([key for key, _ in self._entries(element)])
        if len(self._counts) >= self._flush_at:
            yield from self._drain()

    def finish_bundle(self):
        for batch in self._drain():
            yield in_global_window(batch)

    def _drain(self) -> list[tuple[int, bytes]]:
        buffer = BucketBuffer(self._buckets, flush_at=len(self._counts) + 1)
        buffer.add_many(self._counts.items())
        self._counts = Counter()
        return buffer.drain()


def count_bucket(element, at_least) -> list[list[tuple[str, int]]]:
    """A bucket of ``(key, count)`` entries -> one list of ``(key, total count)`` for the keys
    counted at least ``at_least(key)`` times (for ``beam.FlatMap``: a list of that one list)."""
    _, batches = element
    counts: Counter = Counter()
    for batch in batches:
        for key, n in unpack_compressed(batch):
            counts[key] += n
    return [[(key, n) for key, n in counts.items() if n >= at_least(key)]]


class CountInBuckets(beam.PTransform):
    """Elements -> how often each key occurs across them, counted in buckets.

    ``entries(element)`` gives an element's ``(key, None)`` entries (string keys); the output
    holds one list per bucket of ``(key, count)`` for the keys counted at least
    ``at_least(key)`` times (both functions picklable), e.g. for an ``AsList`` side input. It is a
    ``Count.PerElement`` whose keys travel as a few packed lists, not one element each, each bundle
    counting its own keys first (a combiner before the shuffle, as Beam lifts one for ``CombinePerKey``).
    """

    def __init__(self, entries, at_least, buckets: int = DEFAULT_BUCKETS):
        super().__init__()
        self._entries = entries
        self._at_least = at_least
        self._buckets = buckets

    def expand(self, pcoll):
        return (
            pcoll
            | "KeysToBuckets" >> beam.ParDo(_CountToBucketsFn(self._entries, self._buckets))
            | "GroupByBucket" >> beam.GroupByKey()
            | "CountEachKey" >> beam.FlatMap(count_bucket, self._at_least)
        )
