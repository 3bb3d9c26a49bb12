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
