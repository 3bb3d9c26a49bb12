"""Tests for transforms/packing.py: records survive packing as they were."""
from __future__ import annotations

import numpy as np

from transforms.packing import like, pack, pack_compressed, records, unpack, unpack_compressed


def test_pack_round_trips_the_types_features_use():
    record = {"id": "a" * 32, "phones": ("+441234567890",), "keys_set": frozenset({"0\x1fx"}),
              "tf": {"last": {"smith": 0.01}}, "dob": "", "name": "Zoë 👩‍👩‍👧", "n": 3}
    payload = pack(record)
    assert isinstance(payload, bytes)
    back = unpack(payload)
    assert back == record
    assert isinstance(back["phones"], tuple) and isinstance(back["keys_set"], frozenset)


def test_unpack_passes_a_dict_through():
    record = {"id": "x"}
    assert unpack(record) is record


def test_pack_compressed_round_trips_a_compared_batch_in_fewer_bytes():
    rows = 500
    batch = {"a": [f"{i:032x}" for i in range(rows)], "b": [f"{i + 7:032x}" for i in range(rows)],
             "rules": [("phone",)] * rows, "patterns": np.ones((rows, 9), dtype=np.int8),
             "frequencies": np.zeros((rows, 10)), "conflicts": [()] * rows}
    payload = pack_compressed(batch)
    assert isinstance(payload, bytes) and len(payload) < len(pack(batch)) / 3
    back = unpack_compressed(payload)
    assert back["a"] == batch["a"] and back["rules"] == batch["rules"]
    assert np.array_equal(back["patterns"], batch["patterns"]) and back["patterns"].dtype == np.int8
    assert unpack_compressed(batch) is batch


def test_records_of_a_record_or_a_batch_and_outputs_in_the_same_shape():
    one, batch = {"id": "a"}, [{"id": "a"}, {"id": "b"}]
    assert records(one) == (one,)
    assert records(batch) is batch
    assert records(("key", "value")) == (("key", "value"),)   # a (key, value) tuple is one record
    assert records([]) == []
    assert like(one, [{"id": "A"}]) == {"id": "A"}
    assert like(batch, [1, 2]) == [1, 2]


def test_the_garbage_collector_runs_less_often_in_every_process_that_runs_a_step():
    import gc
    import subprocess
    import sys

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from transforms.packing import GC_THRESHOLDS, collect_garbage_less_often, count_records

    # a fresh interpreter has the defaults until it imports the package
    probe = "import gc; a = gc.get_threshold(); import transforms; print(a, gc.get_threshold())"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"(700, 10, 10) {GC_THRESHOLDS}"
    # a user's own thresholds are kept
    keep = "import gc; gc.set_threshold(1000, 5, 5); import transforms; print(gc.get_threshold())"
    out = subprocess.run([sys.executable, "-c", keep], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(1000, 5, 5)"
    # in this process (other libraries in the test run may have set their own): defaults are raised,
    # anything else is left alone
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        assert collect_garbage_less_often() is True and gc.get_threshold() == GC_THRESHOLDS
        gc.set_threshold(1000, 5, 5)
        assert collect_garbage_less_often() is False and gc.get_threshold() == (1000, 5, 5)
    finally:
        gc.set_threshold(*before)
    # and Beam's worker processes have them once they run a step of the package (here
    # count_records, sent by reference: the worker imports it); the lambda after it, in the
    # same fused step, imports nothing of the project
    options = PipelineOptions(["--runner", "FnApiRunner", "--direct_running_mode", "multi_processing",
                               "--direct_num_workers", "2"])
    with beam.Pipeline(options=options) as p:
        seen = (p | beam.Create([[1], [2, 3], [4], [5]]) | beam.Reshuffle() | beam.Map(count_records)
                | beam.Map(lambda n: (n, __import__("gc").get_threshold())))
        assert_that(seen, equal_to([(1, GC_THRESHOLDS), (2, GC_THRESHOLDS), (1, GC_THRESHOLDS), (1, GC_THRESHOLDS)]))


def test_a_batch_coder_round_trips_and_estimates_a_batch_from_its_first_item_alone():
    import pickle

    from transforms.packing import Batch, BatchCoder

    coder = BatchCoder()
    batch = Batch([{"id": "a", "phones": ("+441234567890",)}, {"id": "b", "phones": ()}])
    back = coder.decode(coder.encode(batch))
    assert back == batch and isinstance(back, Batch)
    one = len(pickle.dumps(batch[0], protocol=pickle.HIGHEST_PROTOCOL))
    assert coder.estimate_size(batch) == 2 * one
    # the rest is not encoded to estimate it: a batch whose second item cannot be pickled is estimated
    unpicklable = Batch([{"id": "a"}, lambda: None])
    assert coder.estimate_size(unpicklable) == 2 * len(pickle.dumps({"id": "a"}, protocol=pickle.HIGHEST_PROTOCOL))
    assert coder.estimate_size(Batch()) == len(coder.encode(Batch()))
    assert coder.decode(coder.encode({"id": "a"})) == {"id": "a"}   # a lone record too


def test_batches_get_the_batch_coder_and_steps_keep_their_inputs_shape():
    import apache_beam as beam

    from transforms.normalize import NormalizeProfiles
    from transforms.packing import Batch, BatchCoder

    assert isinstance(beam.coders.registry.get_coder(Batch), BatchCoder)
    assert like([{"id": "a"}], [{"id": "A"}]) == [{"id": "A"}]
    assert isinstance(like([{"id": "a"}], [{"id": "A"}]), Batch)
    p = beam.Pipeline()
    batches = p | "Batches" >> beam.Create([Batch([{"ProfileId": "a"}])]).with_output_types(Batch)
    single = p | "Single" >> beam.Create([{"ProfileId": "a"}])
    assert (batches | "OfBatches" >> NormalizeProfiles()).element_type is Batch
    assert (single | "OfSingle" >> NormalizeProfiles()).element_type is not Batch


def test_the_jobs_collections_of_batches_are_declared_batches(tmp_path):
    """Each collection of profile, feature or pair batches in the job's graph is declared ``Batch``,
    so a runner estimating element sizes for its metrics does not encode whole batches."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import ProfileDedupOptions
    from pipeline.run import build_pipeline
    from transforms.model import default_model
    from transforms.packing import Batch

    source = tmp_path / "in.jsonl"
    source.write_text('{"ProfileId": "a"}\n')
    options = PipelineOptions(["--input", str(source), "--output", str(tmp_path / "out")])
    p = beam.Pipeline(options=options)
    build_pipeline(p, options.view_as(ProfileDedupOptions), default_model(), None)
    types = {}

    class Outputs(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            for tag, pcoll in node.outputs.items():
                types[(node.full_label, tag)] = pcoll.element_type

    p.visit(Outputs())
    batches = [
        ("ReadProfiles/KeepFirstOfEachId/ParDo(_KeepFirstInBucketFn)", None),
        ("NormalizeProfiles/Normalize", None),
        ("BlockingKeys", None),
        ("TermFrequencies/AttachFrequencies", None),
        ("BlockPairs/PairsInBlocks0/ParDo(_PairsInBlockFn)", None),
        ("BlockPairs/PairsInBlocks7/ParDo(_PairsInBlockFn)", None),
        ("KeyProfiles", None),
        ("KeyFeatures", None),
    ]
    for label, tag in batches:
        assert types[(label, tag)] is Batch, (label, tag, types.get((label, tag)))
