"""What a runner's size estimates of the job's batches cost, with Beam's default coder and with ``BatchCoder``.

    python benchmarks/size_estimates.py                     # batches of 2,000 generated profiles
    python benchmarks/size_estimates.py --batch 5000 --repeat 9

For its metrics, Beam's worker estimates the encoded size of some elements each step outputs: every one of the
first ten, then about ten in every n (so about 10 + 10 ln(n / 10) of a collection's n elements; the rule is
described in ``apache_beam/runners/worker/opcounters.py``). A collection with nothing declared gets
``FastPrimitivesCoder``, which estimates a list by encoding all of it; the job's batches hold thousands of
profiles, feature dicts or pairs of them, and are declared ``Batch`` (``transforms.packing``), whose coder
estimates from the first item. This prints, per kind of batch, the median milliseconds of one estimate with each
coder, and how many estimates Beam makes of a collection of 50, 500 and 5,000 such batches.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apache_beam.coders import coders  # noqa: E402

from benchmarks.generate import generate  # noqa: E402
from transforms.block import with_block_keys  # noqa: E402
from transforms.model import default_model  # noqa: E402
from transforms.normalize import profile_features  # noqa: E402
from transforms.packing import Batch, BatchCoder  # noqa: E402


def estimates_made(n: int) -> int:
    """About how many of a collection's ``n`` elements Beam estimates (the first ten, then about 10 / i)."""
    return n if n <= 10 else round(10 + 10 * math.log(n / 10))


def batches(size: int, seed: int) -> dict[str, Batch]:
    """A batch of each kind the job makes: profiles, feature dicts (with blocking keys), candidate pairs."""
    rules = default_model()["blocking_rules"]
    profiles = Batch(profile for profile, _ in generate(size, seed=seed))
    features = with_block_keys(rules, Batch(profile_features(p) for p in profiles))
    pairs = Batch((features[i], features[i + 1], ("name",)) for i in range(len(features) - 1))
    return {"profiles": profiles, "features": features, "pairs": pairs}


def median_ms(estimate, value, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        estimate(value)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2000, help="profiles in a batch (default 2000)")
    parser.add_argument("--repeat", type=int, default=7, help="estimates timed per cell; the median is shown")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args(argv)
    default = coders.FastPrimitivesCoder().get_impl()
    batch_coder = BatchCoder().get_impl()
    print(f"| batch of {args.batch} | default coder ms | BatchCoder ms | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for kind, batch in batches(args.batch, args.seed).items():
        slow = median_ms(default.get_estimated_size_and_observables, batch, args.repeat)
        fast = median_ms(batch_coder.get_estimated_size_and_observables, batch, args.repeat)
        print(f"| {kind} | {slow:.3f} | {fast:.3f} | {slow / max(fast, 1e-9):.0f} |")
    print()
    print("| batches in a collection | estimates Beam makes | share |")
    print("| ---: | ---: | ---: |")
    for n in (50, 500, 5000):
        made = estimates_made(n)
        print(f"| {n:,} | {made:,} | {made / n:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
