"""Fault injection for MergeProfiles and the counters the emulator reports.

``MergeGate`` decides, under one lock, whether a MergeProfiles request is throttled at
random, throttled by the token bucket, failed with a 500, or accepted; and it keeps the
log of accepted times and the peak count in any one-second window under the same lock,
so the numbers it reports are exact however many threads call it.
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class FaultConfig:
    """Faults to inject.  Rates are probabilities in [0, 1] drawn per MergeProfiles request.

    merge_rate:    accepted MergeProfiles per second (token bucket); None = unlimited
    merge_burst:   bucket size; default max(1, merge_rate)
    error_rate:    share answered 500 InternalServerException, merge not applied
    throttle_rate: share answered 429 ThrottlingException at random, regardless of rate
    ghost_rate:    share applied, then the connection is closed with no answer
    latency_ms:    delay added before every API request (all operations)
    seed:          seed for the random draws
    """

    merge_rate: float | None = None
    merge_burst: float | None = None
    error_rate: float = 0.0
    throttle_rate: float = 0.0
    ghost_rate: float = 0.0
    latency_ms: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ('error_rate', 'throttle_rate', 'ghost_rate'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'{name} must be between 0 and 1')
        if self.latency_ms < 0:
            raise ValueError('latency_ms must not be negative')
        if self.merge_rate is not None and self.merge_rate <= 0:
            raise ValueError('merge_rate must be positive (or None for no limit)')
        if self.merge_burst is not None:
            if self.merge_rate is None:
                raise ValueError('merge_burst needs merge_rate')
            if self.merge_burst < 1:
                raise ValueError('merge_burst must be at least 1')

    @property
    def burst(self) -> float | None:
        if self.merge_rate is None:
            return None
        return self.merge_burst if self.merge_burst is not None else max(1.0, self.merge_rate)


class TokenBucket:
    """Holds up to ``burst`` tokens, refilled at ``rate`` per second; starts full.

    Over any interval of length T it grants at most ``burst + rate * T`` tokens.
    Not thread-safe on its own: ``MergeGate`` calls it under its lock.
    """

    def __init__(self, rate: float, burst: float, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


# Outcomes of MergeGate.admit
ACCEPTED = 'accepted'
RANDOM_THROTTLE = 'random_throttle'
RATE_LIMIT = 'rate_limit'
INTERNAL_ERROR = 'internal_error'


class MergeGate:
    """Fault decisions and merge counters."""

    WINDOW_S = 1.0

    def __init__(self, config: FaultConfig):
        self._lock = threading.Lock()
        self._mono0 = time.monotonic()
        self._wall0 = time.time()
        self._configure(config)
        self.accepted_times: list[float] = []  # wall-clock seconds, in acceptance order
        self._window: deque[float] = deque()
        self.peak_1s = 0
        self.rejected: Counter[str] = Counter()
        self.accepted = 0
        self.applied = 0
        self.profiles_merged_away = 0
        self.ghosts = 0
        self.repeats: Counter[str] = Counter()

    def _configure(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        now = time.monotonic()
        self._bucket = TokenBucket(config.merge_rate, config.burst, now) if config.merge_rate else None

    def reconfigure(self, config: FaultConfig) -> None:
        """New fault settings; the bucket starts full again, counters are kept."""
        with self._lock:
            self._configure(config)

    def admit(self) -> str:
        """Decide a MergeProfiles request's fate; record it if accepted."""
        with self._lock:
            if self.config.throttle_rate and self._rng.random() < self.config.throttle_rate:
                outcome = RANDOM_THROTTLE
            else:
                now = time.monotonic()
                if self._bucket is not None and not self._bucket.take(now):
                    outcome = RATE_LIMIT
                else:
                    self._record_accept(now)
                    if self.config.error_rate and self._rng.random() < self.config.error_rate:
                        outcome = INTERNAL_ERROR
                    else:
                        outcome = ACCEPTED
            if outcome != ACCEPTED:
                self.rejected[outcome] += 1
            return outcome

    def _record_accept(self, now: float) -> None:
        self.accepted += 1
        self.accepted_times.append(self._wall0 + (now - self._mono0))
        window = self._window
        window.append(now)
        while window[0] <= now - self.WINDOW_S:
            window.popleft()
        self.peak_1s = max(self.peak_1s, len(window))

    def ghost(self) -> bool:
        """Should this applied merge lose its answer?"""
        with self._lock:
            return bool(self.config.ghost_rate) and self._rng.random() < self.config.ghost_rate

    def record_applied(self, merged_away: int, ghost: bool) -> None:
        with self._lock:
            self.applied += 1
            self.profiles_merged_away += merged_away
            self.ghosts += ghost

    def record_repeat(self, kind: str | None) -> None:
        if kind:
            with self._lock:
                self.repeats[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                'merges_accepted': self.accepted,
                'merges_applied': self.applied,
                'profiles_merged_away': self.profiles_merged_away,
                'merges_rejected': {
                    key: self.rejected[key] for key in (RANDOM_THROTTLE, RATE_LIMIT, INTERNAL_ERROR)
                },
                'ghost_merges': self.ghosts,
                'remerge_attempts': self.repeats['full'],
                'partial_remerge_attempts': self.repeats['partial'],
                'peak_accepted_merges_1s': self.peak_1s,
                'accepted_merge_times': list(self.accepted_times),
                'faults': {**asdict(self.config), 'merge_burst': self.config.burst},
            }


class RequestCounters:
    """Requests and error answers per operation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.errors: dict[str, Counter[str]] = defaultdict(Counter)

    def request(self, operation: str) -> None:
        with self._lock:
            self.requests[operation] += 1

    def error(self, operation: str, code: str) -> None:
        with self._lock:
            self.errors[operation][code] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                'requests': dict(self.requests),
                'errors': {op: dict(codes) for op, codes in self.errors.items()},
            }
