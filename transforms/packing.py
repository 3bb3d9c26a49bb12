"""Records packed as bytes for the shuffles that carry whole profiles or features.

A runner that groups in memory (the DirectRunner's engine) holds every grouped
value at once; a dict of twenty short strings takes several times the memory of
its pickled bytes, and encoding one bytes value is a copy, not a walk over every
field. Packed records are only ever read back by this job's own transforms.
"""
from __future__ import annotations

import pickle


def pack(record) -> bytes:
    """A record (or a list of them) as one bytes value, to carry through a shuffle."""
    return pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(payload):
    """What ``pack`` packed (anything that is not bytes is returned as it is)."""
    return pickle.loads(payload) if isinstance(payload, bytes) else payload
