"""Tests for transforms/buckets.py: bucketed shuffles give the groups a per-key shuffle gives."""
from __future__ import annotations

import base64
import itertools
import random
import subprocess
import sys
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from transforms.buckets import (
    BucketBuffer,
    CoGroupInBuckets,
    CountInBuckets,
    FromSideInput,
    GroupInBuckets,
    bucket_of,
    count_bucket,
    group_bucket,
)
from transforms.packing import pack_compressed, unpack_compressed


def test_from_side_input_works_out_once_per_side_input_object():
    calls = []
    table = FromSideInput(lambda side: calls.append(len(side)) or {k: v for k, v in side})
    first, second = [("a", 1)], [("a", 1), ("b", 2)]
    assert table(first) == {"a": 1} and table(first) == {"a": 1}
    assert table(second) == {"a": 1, "b": 2}
    assert calls == [1, 2]


def test_bucket_of_is_stable_across_processes():
    keys = ["0\x1f+441234", "john|smith", "Zoë", "\udcff odd"]
    here = [bucket_of(k, 512) for k in keys]
    code = ("from transforms.buckets import bucket_of; "
            f"print([bucket_of(k, 512) for k in {keys!r}])")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip().splitlines()[-1] == str(here)
    assert all(0 <= b < 512 for b in here)


@pytest.mark.parametrize("many", [False, True])
def test_buffer_and_group_give_every_key_its_values(many):
    rng = random.Random(3)
    pairs = [(f"k{rng.randrange(300)}", n) for n in range(5000)]
    buffer = BucketBuffer(buckets=16, flush_at=700)
    batches = []
    if many:   # in uneven slices, each larger than the buffer holds at times
        for start, end in itertools.pairwise([0, 3, 1000, 1001, 2900, 5000]):
            out = buffer.add_many(pairs[start:end])
            # the buffer flushes as it fills (700 entries each time), not once per call
            assert sum(len(unpack_compressed(blob)) for _, blob in out) % 700 == 0
            batches.extend(out)
    else:
        for key, value in pairs:
            batches.extend(buffer.add(key, value))
    flushed_early = len(batches)
    batches.extend(buffer.drain())
    assert flushed_early > 0 and buffer.drain() == []
    by_bucket: dict = {}
    for bucket, blob in batches:
        assert isinstance(blob, bytes)
        by_bucket.setdefault(bucket, []).append(blob)
    grouped = {}
    for bucket, blobs in by_bucket.items():
        for key, values in group_bucket(blobs).items():
            assert bucket_of(key, 16) == bucket and key not in grouped
            grouped[key] = values
    expected: dict = {}
    for key, value in pairs:
        expected.setdefault(key, []).append(value)
    assert grouped == expected


def test_one_record_under_several_keys_is_packed_once_per_batch():
    record = {"id": "x" * 32, "name": base64.b64encode(random.Random(1).randbytes(600)).decode()}

    def blob_size(keys):
        buffer = BucketBuffer(buckets=1)
        for key in keys:
            buffer.add(key, record)
        [(_, blob)] = buffer.drain()
        assert group_bucket([blob]) == {key: [record] for key in keys}
        return len(blob)

    one, three = blob_size(["a"]), blob_size(["a", "b", "c"])
    assert one > 600 and three - one < 40  # the record is stored once, not three times


def test_cogroup_in_buckets_matches_cogroupbykey():
    left = [(f"id{n % 40}", n) for n in range(120)]
    right = [(f"id{n}", f"r{n}") for n in range(30, 60)]
    expected = {}
    for key, value in left:
        expected.setdefault(key, {"l": [], "r": []})["l"].append(value)
    for key, value in right:
        expected.setdefault(key, {"l": [], "r": []})["r"].append(value)
    with beam.Pipeline(runner="FnApiRunner") as p:
        joined = {"l": p | "L" >> beam.Create(left), "r": p | "R" >> beam.Create(right)} | CoGroupInBuckets(buckets=7)
        normalised = joined | beam.Map(lambda kv: (kv[0], {t: sorted(v, key=str) for t, v in kv[1].items()}))
        assert_that(normalised, equal_to([(k, {t: sorted(v, key=str) for t, v in g.items()})
                                          for k, g in expected.items()]))


def test_cogroup_in_buckets_takes_lists_of_pairs_as_it_takes_pairs():
    left = [(f"id{n % 5}", n) for n in range(12)]
    right = [(f"id{n}", f"r{n}") for n in range(3, 8)]
    with beam.Pipeline(runner="FnApiRunner") as p:
        joined = ({"l": p | "L" >> beam.Create([left[:7], left[7:]]), "r": p | "R" >> beam.Create(right)}
                  | CoGroupInBuckets(buckets=3))
        normalised = joined | beam.Map(lambda kv: (kv[0], {t: sorted(v, key=str) for t, v in kv[1].items()}))
        expected = {}
        for key, value in left:
            expected.setdefault(key, {"l": [], "r": []})["l"].append(value)
        for key, value in right:
            expected.setdefault(key, {"l": [], "r": []})["r"].append(value)
        assert_that(normalised, equal_to([(k, {t: sorted(v, key=str) for t, v in g.items()})
                                          for k, g in expected.items()]))


def _entries_of_word(word):
    return [(letter, (word, i)) for i, letter in enumerate(word)] if word != "skip" else []


def test_group_in_buckets_gives_the_groups_groupbykey_gives():
    pairs = [(f"k{n % 13}", n) for n in range(200)] + [("lone", -1)]
    words = ["banana", "apple", "skip", "cherry"]
    with beam.Pipeline(runner="FnApiRunner") as p:
        created = p | "Pairs" >> beam.Create(pairs)
        ours = created | "Ours" >> GroupInBuckets(buckets=5) | "SortOurs" >> beam.MapTuple(lambda k, v: (k, sorted(v)))
        theirs = created | "Theirs" >> beam.GroupByKey() | "SortTheirs" >> beam.MapTuple(lambda k, v: (k, sorted(v)))
        grouped = [(k, sorted(n for key, n in pairs if key == k)) for k in {k for k, _ in pairs}]
        assert_that(ours, equal_to(grouped), label="AsGroupByKey")
        assert_that(theirs, equal_to(grouped), label="GroupByKeyItself")
        # an entries function (a word -> one entry per letter), an element giving none, and lists of pairs
        by_letter = (p | "Words" >> beam.Create(words) | "ByLetter" >> GroupInBuckets(_entries_of_word, buckets=3)
                     | "SortLetters" >> beam.MapTuple(lambda k, v: (k, sorted(v))))
        expected = {}
        for word in words:
            for letter, value in _entries_of_word(word):
                expected.setdefault(letter, []).append(value)
        assert_that(by_letter, equal_to([(k, sorted(v)) for k, v in expected.items()]), label="WithEntries")
        batched = (p | "Batches" >> beam.Create([pairs[:50], pairs[50:]]) | "Batched" >> GroupInBuckets(buckets=2)
                   | "SortBatched" >> beam.MapTuple(lambda k, v: (k, sorted(v))))
        assert_that(batched, equal_to(grouped), label="FromLists")


def _letters(word):
    return [(letter, None) for letter in word]


def _at_least(key):
    return 1 if key == "z" else 2


def test_count_in_buckets_counts_every_key_and_keeps_those_common_enough():
    words = ["banana", "bandana", "kiwi", "fizz"]
    expected = Counter(letter for word in words for letter in word)
    with beam.Pipeline(runner="FnApiRunner") as p:
        counted = p | beam.Create(words) | CountInBuckets(_letters, _at_least, buckets=3)
        assert_that(counted | "Buckets" >> beam.Map(lambda bucket: 1) | beam.CombineGlobally(sum),
                    equal_to([3]), label="OneListPerBucket")
        assert_that(counted | beam.FlatMap(lambda bucket: bucket), equal_to(
            [(k, n) for k, n in expected.items() if n >= _at_least(k)]), label="Counts")
    # "k" and "f" are seen once: left out; "z" is seen twice (its floor is 1): kept
    assert expected["k"] == 1 and expected["f"] == 1 and expected["z"] == 2


def test_count_bucket_sums_counts_across_packed_lists():
    batches = [pack_compressed([("a", 1), ("b", 1)]), pack_compressed([("a", 3)])]
    assert count_bucket((0, batches), lambda key: 2) == [[("a", 4)]]
    assert sorted(count_bucket((0, batches), lambda key: 1)[0]) == [("a", 4), ("b", 1)]


def test_count_to_buckets_counts_a_key_once_per_bundle_and_flushes_when_full():
    from transforms.buckets import _CountToBucketsFn
    fn = _CountToBucketsFn(_letters, buckets=3, flush_at=4)
    fn.start_bundle()
    early = list(fn.process("aab"))          # two distinct keys: kept
    assert early == []
    early = list(fn.process("cdd"))          # four distinct keys: flushed
    sent = [entry for _, batch in early for entry in unpack_compressed(batch)]
    assert sorted(sent) == [("a", 2), ("b", 1), ("c", 1), ("d", 2)]
    assert all(bucket == bucket_of(key, 3) for bucket, batch in early for key, _ in unpack_compressed(batch))
    late = [w.value for w in fn.finish_bundle()]
    assert late == []                        # nothing left after the flush
    list(fn.process("ee"))
    late = [w.value for w in fn.finish_bundle()]
    assert [entry for _, batch in late for entry in unpack_compressed(batch)] == [("e", 2)]
