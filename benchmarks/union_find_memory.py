"""Memory of the connected-components step per million matched profiles.

    python benchmarks/union_find_memory.py                 # 1M matched profiles
    python benchmarks/union_find_memory.py --profiles 3000000

``ConnectedComponents`` combines every match edge into one union-find
(``transforms.cluster.ConnectedComponentsFn``). It holds matched profiles only,
never the whole dataset, so the question for a large domain is how much memory
one worker needs per matched profile. This builds duplicate groups of 2 to 4
profiles (32-character ids, as ProfileIds are), feeds their edges through the
CombineFn the way a worker does (add_input, then merging two partial
accumulators, then extract_output) and prints traced Python memory, ids
included.
"""
from __future__ import annotations

import argparse
import random
import time
import tracemalloc

from transforms.cluster import ConnectedComponentsFn


def edges_for(profiles: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    edges, made = [], 0
    while made < profiles:
        size = rng.choice((2, 2, 2, 3, 4))
        group = ["%032x" % rng.getrandbits(128) for _ in range(size)]
        edges.extend((group[0], other) for other in group[1:])
        made += size
    return edges


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=1_000_000, help="matched profiles")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    tracemalloc.start()
    edges = edges_for(args.profiles, args.seed)
    with_edges, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    fn = ConnectedComponentsFn()
    started = time.perf_counter()
    half = len(edges) // 2
    parts = []
    for chunk in (edges[:half], edges[half:]):
        accumulator = fn.create_accumulator()
        for edge in chunk:
            fn.add_input(accumulator, edge)
        parts.append(accumulator)
    components = fn.extract_output(fn.merge_accumulators(parts))
    seconds = time.perf_counter() - started
    current, peak = tracemalloc.get_traced_memory()
    per_million = 1_000_000 / args.profiles
    print(f"{'matched profiles':>17} {'edges':>9} {'components':>10} {'seconds':>8} {'ids+edges MiB':>13} "
          f"{'peak MiB':>9} {'peak MiB per 1M':>15}")
    print(f"{args.profiles:>17} {len(edges):>9} {len(components):>10} {seconds:>8.1f} {with_edges / 2**20:>13.0f} "
          f"{peak / 2**20:>9.0f} {peak / 2**20 * per_million:>15.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
