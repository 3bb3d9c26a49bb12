"""Tests for transforms/keyfilter.py: the Bloom filter of wanted ids, alone and built by Beam on two workers."""
from __future__ import annotations

import random

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that

from transforms.keyfilter import FilterOfKeys, KeyFilter


def random_ids(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(128):032x}" for _ in range(n)]


@pytest.mark.parametrize("kind", ["random", "sequential", "text"])
def test_no_false_negatives_and_few_false_positives(kind):
    if kind == "random":
        keys, others = random_ids(20_000, 1), random_ids(20_000, 2)
    elif kind == "sequential":   # ids that differ in a digit or two must still spread over the bits
        keys, others = [f"{n:032x}" for n in range(20_000)], [f"{n:032x}" for n in range(20_000, 40_000)]
    else:
        keys = [f"clé-{n}-ü\u00e9" for n in range(20_000)]
        others = [f"clé-{n}-ü\u00e9" for n in range(20_000, 40_000)]
    wanted = KeyFilter.for_keys(len(keys)).add(keys)
    assert wanted.might_contain(keys).all()
    false_positives = wanted.might_contain(others).mean()
    assert false_positives < 0.02, false_positives      # about 1% at 10 bits per key, 7 hashes
    assert wanted.array.nbytes == 20_000 * 10 // 8


def test_an_empty_filter_holds_nothing_and_union_of_parts_is_the_whole():
    keys = random_ids(5_000, 3)
    assert not KeyFilter.for_keys(0).might_contain(keys).any()
    assert KeyFilter.for_keys(10).might_contain([]).shape == (0,)
    parts = [KeyFilter.for_keys(5_000).add(keys[i::3]) for i in range(3)]
    whole = parts[0].union(parts[1]).union(parts[2])
    assert (whole.array == KeyFilter.for_keys(5_000).add(keys).array).all()
    assert whole.might_contain(keys).all()
    with pytest.raises(ValueError, match="one size"):
        parts[0].union(KeyFilter.for_keys(6_000))


@pytest.mark.parametrize("n", [0, 30_000])
def test_filter_built_on_two_workers(n):
    # partial filters from batches on two worker processes, ORed by CombineGlobally; the
    # check runs in a worker and fails the pipeline if anything is off
    keys, others = random_ids(n, 4), random_ids(10_000, 5)
    repeated = keys + keys[:100]
    expected_bits = max(1024, 10 * len(repeated))

    def check(filters):
        [built] = filters
        assert built.bits == expected_bits, built.bits
        assert built.might_contain(keys).all(), "a key went missing"
        false_positives = built.might_contain(others).mean()
        assert (false_positives < 0.02) if n else (false_positives == 0.0), false_positives

    options = PipelineOptions(["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                               "--direct_num_workers=2"])
    with beam.Pipeline(options=options) as p:
        built = p | beam.Create(repeated, reshuffle=True) | beam.Reshuffle() | FilterOfKeys()
        assert_that(built, check)
