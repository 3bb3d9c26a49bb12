"""Tests for transforms/packing.py: records survive packing as they were."""
from __future__ import annotations

from transforms.packing import pack, unpack


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
