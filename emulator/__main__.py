"""``python -m emulator --profiles profiles.jsonl --domain demo --port 0``

Prints ``emulator listening on http://127.0.0.1:PORT`` once ready and serves until it is
interrupted or terminated.
"""
from __future__ import annotations

import argparse
import signal
import sys

from .server import create_emulator, read_profiles_jsonl


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs) -> None:
    # --merge_rate and --merge-rate both work
    parser.add_argument(f'--{name}', *([f'--{name.replace("_", "-")}'] if '_' in name else []), **kwargs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='python -m emulator',
        description='Serve a local Customer Profiles endpoint for boto3 (endpoint_url).',
    )
    _flag(parser, 'profiles', help='JSONL file of Profile objects to load')
    _flag(parser, 'domain', default='demo', help='domain to create and load (default: demo)')
    _flag(parser, 'port', type=int, default=0, help='port on 127.0.0.1; 0 = any free port')
    _flag(parser, 'merge_rate', type=float, help='accepted MergeProfiles per second (token bucket)')
    _flag(parser, 'merge_burst', type=float, help='token bucket size (default: merge_rate)')
    _flag(parser, 'error_rate', type=float, default=0.0, help='share of merges answered 500, not applied')
    _flag(parser, 'throttle_rate', type=float, default=0.0, help='share of merges answered 429 at random')
    _flag(parser, 'ghost_rate', type=float, default=0.0, help='share of merges applied but left unanswered')
    _flag(parser, 'latency_ms', type=float, default=0.0, help='delay added to every API request')
    _flag(parser, 'seed', type=int, help='seed for the random fault draws')
    _flag(parser, 'verbose', action='store_true', help='log every request to stderr')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        profiles = read_profiles_jsonl(args.profiles) if args.profiles else []
        emulator = create_emulator(
            profiles, args.domain, port=args.port, verbose=args.verbose,
            merge_rate=args.merge_rate, merge_burst=args.merge_burst,
            error_rate=args.error_rate, throttle_rate=args.throttle_rate,
            ghost_rate=args.ghost_rate, latency_ms=args.latency_ms, seed=args.seed,
        )
    except (OSError, ValueError) as exc:
        print(f'emulator: {exc}', file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f'emulator listening on {emulator.url}', flush=True)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
