"""How the bucket lists of blocking compress: bytes kept and time per profile, by codec.

    python benchmarks/compression.py                  # 20,000 generated profiles
    python benchmarks/compression.py --profiles 50000 --repeat 5

Blocking sends each profile's packed features once per blocking key that can pair, in
bucket lists (``transforms.buckets``) that wait in the runner's memory between stages,
compressed by ``transforms.packing.pack_compressed``. This builds those lists the way
``_AttachKeysFn`` does (every key, chunks of about 100 entries as a bundle flushes them)
from the project's own generator, and prints, per codec, the share of bytes kept and the
median microseconds per profile to compress and to decompress. Codecs whose module is
not installed are left out (zstd is a dependency; lz4 is not).
"""
from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.generate import generate  # noqa: E402
from transforms.block import block_keys, packed_fields  # noqa: E402
from transforms.buckets import bucket_of  # noqa: E402
from transforms.estimate import comparison_fields  # noqa: E402
from transforms.model import default_model  # noqa: E402
from transforms.normalize import profile_features  # noqa: E402
from transforms.packing import pack  # noqa: E402


def bucket_chunks(profiles: int, seed: int, chunk: int = 100, buckets: int = 512) -> list[bytes]:
    """Pickled ``[(key, packed features), ...]`` lists, as blocking flushes them."""
    model = default_model()
    rules = model["blocking_rules"]
    keep = frozenset({"id", "type", "identifiers", "tf"}).union(
        *(comparison_fields(c, raw=True) for c in model["comparisons"]))
    fields = packed_fields(keep)
    lists: dict[int, list] = {}
    for profile, _ in generate(profiles, seed):
        features = dict(profile_features(profile), tf={})
        keys = block_keys(features, rules)
        payload = pack(tuple(keys if field == "keys" else features.get(field) for field in fields))
        for key in keys:
            lists.setdefault(bucket_of(key, buckets), []).append((key, payload))
    return [pickle.dumps(items[i:i + chunk], protocol=pickle.HIGHEST_PROTOCOL)
            for items in lists.values() for i in range(0, len(items), chunk)]


def codecs() -> dict:
    found = {"zlib level 1": (lambda b: zlib.compress(b, 1), zlib.decompress)}
    try:
        import zstandard
        compressor, decompressor = zstandard.ZstdCompressor(level=1), zstandard.ZstdDecompressor()
        found["zstd level 1"] = (compressor.compress, decompressor.decompress)
    except ImportError:
        pass
    try:
        import lz4.block
        found["lz4 block"] = (lz4.block.compress, lz4.block.decompress)
    except ImportError:
        pass
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args(argv)
    chunks = bucket_chunks(args.profiles, args.seed)
    raw = sum(map(len, chunks))
    print(f"{args.profiles} profiles, {len(chunks)} bucket lists, {raw / args.profiles:.0f} bytes per profile packed")
    print(f"{'codec':<14} {'bytes kept':>10} {'compress us/profile':>20} {'decompress us/profile':>22}")
    for name, (compress, decompress) in codecs().items():
        times_in, times_out = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            packed = [compress(c) for c in chunks]
            middle = time.perf_counter()
            for p in packed:
                decompress(p)
            times_in.append(middle - started)
            times_out.append(time.perf_counter() - middle)
        kept = sum(map(len, packed)) / raw
        print(f"{name:<14} {kept:>10.1%} {statistics.median(times_in) / args.profiles * 1e6:>20.1f} "
              f"{statistics.median(times_out) / args.profiles * 1e6:>22.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
