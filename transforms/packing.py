"""Records packed as bytes for the shuffles that carry whole profiles or features; batches of records.

A runner that groups in memory (the DirectRunner's engine) holds every grouped
value at once; a dict of twenty short strings takes several times the memory of
its pickled bytes, and encoding one bytes value is a copy, not a walk over every
field. Packed records are only ever read back by this job's own transforms.
"""
from __future__ import annotations

import gc
import pickle
import threading

import apache_beam as beam
import zstandard

# One zstd compressor and decompressor per thread (they may not be shared between threads, and
# making one costs about as much as compressing a bucket list).
_CODECS = threading.local()


# CPython's default thresholds of the cyclic garbage collector, and the job's.
DEFAULT_GC_THRESHOLDS = (700, 10, 10)
GC_THRESHOLDS = (50_000, 20, 100)


def collect_garbage_less_often() -> bool:
    """Run Python's cyclic garbage collector less often in this process; True if changed.

    The job unpacks millions of short-lived dicts and tuples (block members, pairs, group
    members) while it holds large batches. With the default thresholds a young collection
    runs every 700 net allocations and an older one every 7,000, each walking every object
    of its generations; reference counting frees this job's objects anyway (its data makes
    no cycles). Unpacking and rebuilding 30,000 profiles' features as dicts, next to 150,000
    live ones: 8.2 and 9.9 µs each with the defaults, 4.9 and 4.6 µs with these. Thresholds
    someone already changed are theirs and are kept. ``transforms/__init__.py`` calls this,
    so every process that runs one of the job's steps (the launcher, each worker) has it."""
    if gc.get_threshold() != DEFAULT_GC_THRESHOLDS:
        return False
    gc.set_threshold(*GC_THRESHOLDS)
    return True


def pack(record) -> bytes:
    """A record (or a list of them) as one bytes value, to carry through a shuffle."""
    return pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(payload):
    """What ``pack`` packed (anything that is not bytes is returned as it is)."""
    return pickle.loads(payload) if isinstance(payload, bytes) else payload


def _codecs() -> tuple:
    codecs = getattr(_CODECS, "pair", None)
    if codecs is None:
        codecs = _CODECS.pair = (zstandard.ZstdCompressor(level=1), zstandard.ZstdDecompressor())
    return codecs


def pack_compressed(record) -> bytes:
    """``pack``, then zstd at level 1: for what waits in a runner's memory between stages (bucket
    lists, compared batches). On blocking's bucket lists it keeps 37% of the bytes (zlib at its
    fastest: 38%) in a third of zlib's time, and decompresses four times as fast
    (``benchmarks/compression.py``)."""
    return _codecs()[0].compress(pack(record))


def unpack_compressed(payload):
    """What ``pack_compressed`` packed (anything that is not bytes is returned as it is)."""
    return unpack(_codecs()[1].decompress(payload)) if isinstance(payload, bytes) else payload


class Batch(list):
    """A batch of records (profiles, features, candidate pairs) travelling as one element.

    A plain list would work as well, but a runner estimates the size of some of the elements each
    step outputs, for its metrics (the first ten, then about ten in every n), and Beam's default coder
    estimates a list by encoding all of it: for batches of thousands of feature dicts (or pairs of
    them) that was about 8% of the workers' busy time at 100k profiles in two processes (py-spy
    --native), and about 1% at a million, where fewer of the batches are sampled. A collection
    declared ``Batch`` (``.with_output_types(Batch)``) gets ``BatchCoder``, which estimates from one
    item (``benchmarks/size_estimates.py``)."""


class BatchCoder(beam.coders.Coder):
    """Pickles a ``Batch`` (any value, in fact) where a runner must encode it; estimates its size as
    its length times the pickled size of its first item, without encoding the rest."""

    def encode(self, value) -> bytes:
        return pack(value)

    def decode(self, encoded: bytes):
        return unpack(encoded)

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, value) -> int:
        if isinstance(value, list) and value:
            return len(value) * len(pack(value[0]))
        return len(pack(value))

    def to_type_hint(self):
        return Batch


beam.coders.registry.register_coder(Batch, BatchCoder)


def keeping_shape(pcoll, transform):
    """``transform``, a step whose output has its input's shape (see ``like``), declared to output
    ``Batch`` when ``pcoll`` holds batches."""
    return transform.with_output_types(Batch) if pcoll.element_type is Batch else transform


def records(element) -> list | tuple:
    """The records of an element that is one record or a batch of them (a list).

    The job's per-profile steps take either: the pipeline hands them batches (one per shuffle
    bucket, thousands of profiles), because the runner's work per element (calling each step,
    counting, encoding between stages) costs more than normalising a profile; a PCollection of
    single records (a dict, a tuple) works the same, one at a time.
    """
    return element if isinstance(element, list) else (element,)


def like(element, outputs: list):
    """``outputs`` in the shape of ``element``: a ``Batch`` for a batch, its one item for a record."""
    return Batch(outputs) if isinstance(element, list) else outputs[0]


def count_records(element) -> int:
    """How many records an element holds (1, or the length of a batch)."""
    return len(records(element))
