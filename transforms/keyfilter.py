"""A compact "might this key be wanted?" filter, built from a PCollection of keys.

After matching, only profiles that are linked into a group or stand in a review
pair are needed again (about half of a generated million). Joining every profile
to the groups would carry the other half through one more shuffle, which the
DirectRunner holds in one process's memory. A side input of the wanted ids
would be exact but grow with them; a Bloom filter (Bloom, "Space/time trade-offs
in hash coding with allowable errors", CACM 1970) answers with no false
negatives, a small share of false positives (about 1% at 10 bits per key and 7
hash functions), and about 1.2 MB per million wanted keys. A false positive only
lets one unneeded profile through to the join, which drops it as before.

The filter is built with what every runner supports: the keys are counted
(``Count.Globally``), partial filters of that size are made from batches of keys,
and ``CombineGlobally`` ORs them into one, used as a singleton side input.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import apache_beam as beam
import numpy as np

BITS_PER_KEY = 10
HASHES = 7
MIN_BITS = 1024


class KeyFilter:
    """A Bloom filter over string keys. ``bits`` is its size (rounded up to whole bytes)."""

    def __init__(self, bits: int, hashes: int = HASHES, array: np.ndarray | None = None):
        self.bits = max(8, -(-int(bits) // 8) * 8)
        self.hashes = hashes
        self.array = np.zeros(self.bits // 8, dtype=np.uint8) if array is None else array

    @classmethod
    def for_keys(cls, expected: int) -> "KeyFilter":
        """An empty filter sized for ``expected`` keys."""
        return cls(max(MIN_BITS, BITS_PER_KEY * int(expected)))

    def _positions(self, keys: Iterable[str]) -> np.ndarray:
        """The bit positions of each key (keys x hashes), by double hashing of a 128-bit digest."""
        digests = b"".join(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()
                           for key in keys)
        halves = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
        steps = np.arange(self.hashes, dtype=np.uint64)
        with np.errstate(over="ignore"):  # wrapping in 64 bits is part of the hash
            combined = halves[:, :1] + steps * (halves[:, 1:] | np.uint64(1))
        return combined % np.uint64(self.bits)

    def add(self, keys: Iterable[str]) -> "KeyFilter":
        positions = self._positions(keys).ravel()
        np.bitwise_or.at(self.array, (positions >> np.uint64(3)).astype(np.intp),
                         (np.uint8(1) << (positions & np.uint64(7)).astype(np.uint8)))
        return self

    def might_contain(self, keys: list[str]) -> np.ndarray:
        """For each key, False when it was certainly never added."""
        if not keys:
            return np.zeros(0, dtype=bool)
        positions = self._positions(keys)
        bytes_at = self.array[(positions >> np.uint64(3)).astype(np.intp)]
        bit_set = (bytes_at >> (positions & np.uint64(7)).astype(np.uint8)) & 1
        return bit_set.all(axis=1)

    def union(self, other: "KeyFilter") -> "KeyFilter":
        if (other.bits, other.hashes) != (self.bits, self.hashes):
            raise ValueError("only filters of one size and hash count can be joined")
        return KeyFilter(self.bits, self.hashes, self.array | other.array)


class _UnionOfFilters(beam.CombineFn):
    """ORs partial filters of one size; no filter at all gives an empty one (nothing wanted)."""

    def create_accumulator(self):
        return None

    def add_input(self, accumulator, partial):
        return partial if accumulator is None else accumulator.union(partial)

    def merge_accumulators(self, accumulators):
        merged = None
        for accumulator in accumulators:
            if accumulator is not None:
                merged = accumulator if merged is None else merged.union(accumulator)
        return merged

    def extract_output(self, accumulator):
        return KeyFilter.for_keys(0) if accumulator is None else accumulator


def _partial_filter(keys: list[str], expected: int) -> KeyFilter:
    return KeyFilter.for_keys(expected).add(keys)


class FilterOfKeys(beam.PTransform):
    """PCollection of string keys -> one ``KeyFilter`` holding all of them (for ``AsSingleton``)."""

    def expand(self, keys):
        expected = beam.pvalue.AsSingleton(keys | "CountKeys" >> beam.combiners.Count.Globally())
        return (
            keys
            | "BatchKeys" >> beam.BatchElements(min_batch_size=1000, max_batch_size=50_000)
            | "PartialFilters" >> beam.Map(_partial_filter, expected)
            | "UnionOfFilters" >> beam.CombineGlobally(_UnionOfFilters())
        )
