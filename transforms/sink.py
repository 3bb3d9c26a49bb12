"""ApplyMerges: send MergeProfiles requests at a global rate, exactly once in effect.

    outcomes = requests | "ApplyMerges" >> ApplyMerges(SinkConfig(...), max_merges=0)

Input: one element per plan line, ``{"line": int, "request_id": str, "request": {the
MergeProfiles kwargs}, "previous": {...} | None, "blocked": str | None}`` (see
``pipeline.apply``). Output: one outcome record per request (``ShardRunner._finish``:
request, outcome, reason, attempts, error code and message, send times), the record that
was appended to the journal the moment the outcome was known.

Sharding. Requests are keyed into ``shards`` groups (GroupByKey) by ``shard_of(MainProfileId)``
(SHA-256, not Python's salted ``hash``), or by the element's ``shard`` when the caller set
one (``pipeline.apply.assign_shards`` balances request counts, still one main per shard), so
every request of one main lands in one shard and runs there after the one before it, in
plan order. A shard runs its chains (the requests of one main) on ``concurrency`` threads,
so API latency does not cut the rate.

Rate. The configured rate R is for the whole job. Time is cut into global slots on the
wall clock, 1 / (R * (1 - headroom)) seconds apart; slot n belongs to shard n mod shards,
so a shard gets R/shards and its slots interleave with every other shard's, on any worker.
A worker pools the slots of the shards it holds (a shard that finished or waits lends its
slots to the others on that worker). Every attempt, retries included, takes one slot: any
1-second window holds at most ceil(R * (1 - headroom)) + 1 <= R + 1 MergeProfiles requests
(the sink's burst is one request). ``headroom`` (default 5 %) absorbs scheduling jitter so
that two requests do not reach the service closer than 1/R apart. Within a worker a send
also waits until 1 / (R * (1 - headroom / 2)) after the worker's previous one, so that one
late request does not push the next one too close behind it. Adaptive: when more than 30 %
of a worker's last 50 sends were throttled (another caller is using the quota), the worker
uses 25 % fewer of its slots, and takes 1 % back per send that goes through.

Retries. botocore retries are off (``total_max_attempts: 1``; ``max_attempts: 1`` would
still mean one retry); our loop retries 429, 5xx and connection errors with exponential
backoff and full jitter until ``retry_deadline_s``. 400 and 403 are never retried.

Exactly once, in effect. Before the first send of every request, the profiles' state is read
with BatchGetProfile (ids of several upcoming requests packed 20 per call): main gone ->
skipped; every id to merge gone and the main present -> already_applied; some gone ->
skipped (stale plan: a partial cluster is never merged); all present -> send. The same check
runs again, with fresh data, before re-sending a request whose outcome is unknown (5xx,
dropped connection, timeout) and after a 404. A resumed run checks every request it was
not sure about in the same way. MergeProfiles is all-or-nothing, so a merge that really
happened is recognised instead of being sent twice.

Journal. Each outcome is appended to ``<journal_dir>/<run_id>/shard-NNN-<pid>-<rand>.jsonl``,
flushed and fsync'ed before the next request of that thread goes on; a "sending" record
(flushed, survives SIGKILL) precedes every attempt. For a non-local journal directory
(s3://, gs://) each record is its own object, written before the next step.

Circuit breaker. AccessDenied (or another credentials error), an unknown domain, a
share of failed attempts above ``error_rate_threshold`` over the worker's last
``ERROR_WINDOW`` attempts for ``ERROR_SPAN_S`` seconds on end, a journal that cannot be written, or a signal to the job
(``pipeline.apply``: ``stop_sending`` here, STOP.json for the others) stops all sending:
a STOP.json in the run's journal directory tells every worker. A worker process that
descends from the launcher (the DirectRunner's multi_processing mode) also stops when the
launcher is gone. Requests beyond ``max_merges`` (in plan order) are not sent. Whatever
is not sent is recorded as ``not_applied``.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import math
import os
import random
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Iterable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

LOG = logging.getLogger("profile_dedup.apply")

OUTCOMES = ("merged", "already_applied", "skipped", "failed", "not_applied")
DONE_OUTCOMES = ("merged", "already_applied", "skipped")  # never sent again on resume
METRICS_NAMESPACE = "profile_dedup.apply"
COUNTERS = ("sent", "merged", "already_applied", "skipped", "failed", "not_applied", "retried", "throttled",
            "batch_get_calls", "engagement_preferences_updated")

BATCH_GET_MAX_IDS = 20
ERROR_WINDOW = 50            # attempts per worker the error rate is measured over
ERROR_WINDOW_MIN = 20        # ... once at least this many were made
# ... and only when it stays above the threshold this long: retries ride out an outage of a
# second or two (32 requests in flight, each retried, fill the window within one), but a service
# that keeps failing stops the run within seconds, not after --merge_retry_deadline
ERROR_SPAN_S = 5.0
MAX_STATE_AGE_S = 30.0       # a prefetched state older than this is read again before sending
ADAPT_WINDOW = 50            # sends per worker the throttled share is measured over
ADAPT_THROTTLE_SHARE = 0.3   # above it, another caller is using the quota: use fewer slots
BACKOFF_BASE_S = 0.1         # 5xx and connection errors: first retry within 0.2 s, doubling
THROTTLE_BACKOFF_BASE_S = 0.025  # 429: the pacer already spaces retries; first within 50 ms
BACKOFF_CAP_S = 10.0
STOP_FILE = "STOP.json"

THROTTLE_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
                  "ProvisionedThroughputExceededException", "SlowDown", "RequestThrottled",
                  "RequestThrottledException"}
AUTH_CODES = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidClientTokenId",
              "InvalidSignatureException", "SignatureDoesNotMatch", "ExpiredTokenException", "ExpiredToken",
              "MissingAuthenticationTokenException", "AuthFailure", "IncompleteSignature",
              "NotAuthorized", "InvalidAccessKeyId"}
NOT_FOUND = "ResourceNotFoundException"


# --------------------------------------------------------------------------- small helpers

def shard_of(main_profile_id: str, shards: int) -> int:
    """Deterministic shard of a main profile (the same on every worker and every run)."""
    return int(hashlib.sha256(main_profile_id.encode("utf-8")).hexdigest()[:8], 16) % shards


def request_id_of(request: dict) -> str:
    """A stable id for a request: its canonical JSON, hashed (the journal's key)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


def new_run_id() -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_EMAIL_RE = re.compile(r"[^\s@'\"]+@[^\s@'\"]+")
_PHONE_RE = re.compile(r"\+\d[\d ().-]{5,}\d")


def scrub(message: str | None, limit: int = 300) -> str:
    """An error message safe to journal and log: no emails or E.164 phones, bounded length.
    Profile ids (32 hex digits) are kept."""
    if not message:
        return ""
    text = _PHONE_RE.sub("<phone>", _EMAIL_RE.sub("<email>", str(message)))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify_state(request: dict, present: dict[str, bool]) -> tuple[str | None, str]:
    """What the profiles' current state says about a request: (outcome, reason), or
    (None, "") when every profile still exists and the request may be sent."""
    main = request["MainProfileId"]
    ids = list(dict.fromkeys(request["ProfileIdsToBeMerged"]))
    if not present.get(main, False):
        return "skipped", f"main profile {main} no longer exists (merged away or deleted since the export)"
    gone = [i for i in ids if not present.get(i, False)]
    if not gone:
        return None, ""
    if len(gone) == len(ids):
        return "already_applied", "every profile to merge is gone and the main profile exists"
    return "skipped", (f"stale plan: {len(gone)} of {len(ids)} profiles to merge no longer exist "
                       f"({', '.join(gone[:5])}{', ...' if len(gone) > 5 else ''}); a partial cluster is never merged")


def union_engagement_preferences(main_id: str, profiles: list[dict]) -> dict:
    """EngagementPreferences of several profiles in one: Phone and Email entries of all of
    them (main first), duplicates (same key, value and contact type) once. An entry that
    names one of these profiles (or none) is pointed at ``main_id``, the profile they become;
    one that names a profile outside the merge keeps it (that profile is not merged)."""
    out: dict[str, list] = {"Phone": [], "Email": []}
    seen = set()
    merged = {main_id} | {p["ProfileId"] for p in profiles if p and p.get("ProfileId")}
    for profile in profiles:
        preferences = (profile or {}).get("EngagementPreferences") or {}
        own = (profile or {}).get("ProfileId")
        for kind in ("Phone", "Email"):
            for entry in preferences.get(kind) or []:
                named = entry.get("ProfileId") or own
                item = {**entry, "ProfileId": main_id if named in merged or not named else named}
                key = (kind, item.get("KeyName"), item.get("KeyValue"), item.get("ContactType"))
                if key not in seen:
                    seen.add(key)
                    out[kind].append(item)
    return {kind: items for kind, items in out.items() if items}


def expected_after_merge(request: dict, profiles: dict[str, dict], field: str):
    """A field's value after MergeProfiles, by the documented rules: a named source wins
    (even if empty); otherwise the main, then the first merged profile that has it."""
    named = (request.get("FieldSourceProfileIds") or {}).get(field)
    if named:
        return (profiles.get(named) or {}).get(field)
    for pid in [request["MainProfileId"], *request["ProfileIdsToBeMerged"]]:
        value = (profiles.get(pid) or {}).get(field)
        if value is not None:
            return value
    return None


# --------------------------------------------------------------------------- configuration

@dataclasses.dataclass(frozen=True)
class SinkConfig:
    """Everything a worker needs to apply merges (plain data: it is pickled to workers)."""

    domain_name: str
    journal_dir: str
    run_id: str
    rate: float = 50.0                       # MergeProfiles per second, whole job
    shards: int = 8
    concurrency: int = 4
    headroom: float = 0.05
    retry_deadline_s: float = 300.0
    error_rate_threshold: float = 0.5
    endpoint_url: str | None = None
    aws_region: str | None = None
    aws_profile: str | None = None
    fix_engagement_preferences: bool = False
    retry_mode: str = "standard"             # botocore's own retries are off either way
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    progress_every_s: float = 5.0
    launcher_pid: int = 0                    # the process that built the job (0: unknown)


def make_session(config: SinkConfig):
    """A boto3 session: the standard credential chain, --aws_profile and --aws_region."""
    import boto3

    return boto3.session.Session(profile_name=config.aws_profile, region_name=config.aws_region)


def make_client(config: SinkConfig, session=None):
    """A customer-profiles client with botocore's retries off (this module retries)."""
    from botocore.config import Config

    session = session or make_session(config)
    return session.client(
        "customer-profiles",
        endpoint_url=config.endpoint_url,
        config=Config(
            retries={"mode": config.retry_mode, "total_max_attempts": 1},
            max_pool_connections=max(10, config.shards * (config.concurrency + 1)),
            connect_timeout=min(config.connect_timeout_s, config.retry_deadline_s),
            # one call that hangs may not outlast the request's whole --merge_retry_deadline
            read_timeout=min(config.read_timeout_s, config.retry_deadline_s),
            user_agent_extra="profile-dedup",
        ),
    )


# --------------------------------------------------------------------------- journal

def is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) in (None, "file")


def run_dir(journal_dir: str, run_id: str) -> str:
    return FileSystems.join(journal_dir, run_id)


class JournalWriter:
    """Appends records for one shard runner; each ``write`` is durable when it returns.

    Local: one JSONL file per shard runner, flushed on every record (a SIGKILL loses
    nothing) and fsync'ed on every outcome (a power loss neither). Elsewhere (s3://, gs://):
    one object per record, written (closed) before ``write`` returns.
    """

    def __init__(self, journal_dir: str, run_id: str, shard: int):
        self._lock = threading.Lock()
        self._seq = 0
        self._dir = run_dir(journal_dir, run_id)
        self._tag = f"shard-{shard:03d}-{os.getpid()}-{secrets.token_hex(2)}"
        self._local = is_local(journal_dir)
        self._handle = None
        if self._local:
            os.makedirs(self._dir, exist_ok=True)
            self._handle = open(os.path.join(self._dir, self._tag + ".jsonl"), "a", encoding="utf-8")

    def write(self, record: dict, sync: bool = True) -> None:
        line = json.dumps(record, sort_keys=True, ensure_ascii=False)
        with self._lock:
            self._seq += 1
            if self._local:
                self._handle.write(line + "\n")
                self._handle.flush()  # in the OS from here on: a SIGKILL loses nothing
                fd = self._handle.fileno()
            else:
                seq = self._seq
        if not self._local:
            name = FileSystems.join(self._dir, "records", f"{self._tag}-{seq:07d}.json")
            with FileSystems.create(name, mime_type="application/json") as handle:
                handle.write(line.encode("utf-8"))
        elif sync:
            os.fsync(fd)  # on disk (power loss); outside the lock, so the other threads go on

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
                self._handle = None


def read_journal(journal_dir: str) -> list[dict]:
    """Every record of every run under ``journal_dir`` (a torn last line is skipped)."""
    records = []
    patterns = [FileSystems.join(journal_dir, "*", "*.jsonl"), FileSystems.join(journal_dir, "*", "records", "*.json")]
    for result in FileSystems.match(patterns):
        for metadata in sorted(result.metadata_list, key=lambda m: m.path):
            with FileSystems.open(metadata.path) as handle:
                data = handle.read().decode("utf-8", errors="replace")
            for n, line in enumerate(data.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError:
                    LOG.warning("journal %s:%d is torn (killed while writing); skipped", metadata.path, n)
    return records


def write_stop(journal_dir: str, run_id: str, reason: str) -> None:
    path = FileSystems.join(run_dir(journal_dir, run_id), STOP_FILE)
    if is_local(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with FileSystems.create(path, mime_type="application/json") as handle:
        handle.write(json.dumps({"reason": reason, "time": utc_now_iso()}).encode("utf-8"))


def read_stop(journal_dir: str, run_id: str) -> str | None:
    path = FileSystems.join(run_dir(journal_dir, run_id), STOP_FILE)
    if not FileSystems.exists(path):
        return None
    try:
        with FileSystems.open(path) as handle:
            return json.loads(handle.read().decode("utf-8")).get("reason") or "stopped"
    except (OSError, ValueError):
        return "stopped"


# --------------------------------------------------------------------------- pacing

class SlotPacer:
    """The global slot schedule, as seen by one worker process.

    Slot n starts at n / (R * (1 - headroom)) seconds after the epoch and belongs to shard
    n mod shards. This worker may use the slots of the shards it holds; each send takes one.
    """

    def __init__(self, rate: float, shards: int, headroom: float):
        self.slot_rate = rate * (1.0 - headroom)
        self.min_gap = 1.0 / (rate * (1.0 - headroom / 2.0))
        self.late_after = 1.0 / self.slot_rate   # a slot this far past is given up for a fresh one
        self.shards = shards
        self._owned: set[int] = set()
        self._lock = threading.Lock()
        self._gate = threading.Lock()
        self._last_slot = -1
        self._last_departure = 0.0
        self.factor = 1.0
        self._credit = 0.0
        self._outcomes: collections.deque[bool] = collections.deque(maxlen=ADAPT_WINDOW)
        self._last_cut = 0.0

    def own(self, shard: int) -> None:
        with self._lock:
            self._owned.add(shard % self.shards)

    def reserve(self) -> float:
        """The start time of the next slot this worker may use (and take it)."""
        with self._lock:
            if not self._owned:
                raise RuntimeError("SlotPacer.reserve before any shard was assigned")
            n = max(math.ceil(time.time() * self.slot_rate), self._last_slot + 1)
            while True:
                if n % self.shards in self._owned:
                    self._credit = min(1.0, self._credit + self.factor)
                    if self._credit >= 1.0 - 1e-9:
                        self._credit -= 1.0
                        break
                n += 1
            self._last_slot = n
            return n / self.slot_rate

    def wait(self, slot_time: float, cancelled: threading.Event | None = None) -> float:
        """Sleep until ``slot_time`` and at least ``min_gap`` after this worker's last
        departure; return the departure time.

        A slot more than one slot period past (the process was stopped or starved for a while,
        and its threads wake up holding slots long gone) is not used: a fresh one is taken. Sent
        late, overdue slots would go out ``min_gap`` apart, at the whole job's rate, while the
        other workers go on using their own share: the job as a whole above its rate."""
        while True:
            delay = slot_time - time.time()
            if delay <= 0:
                if -delay > self.late_after:
                    slot_time = self.reserve()
                    continue
                break
            if cancelled is not None and cancelled.wait(min(delay, 0.5)):
                raise _Cancelled()
            elif cancelled is None:
                time.sleep(delay)
        while True:
            with self._gate:
                now = time.time()
                delay = self._last_departure + self.min_gap - now
                if delay <= 0:
                    self._last_departure = now
                    return now
            time.sleep(delay)

    def record(self, throttled: bool) -> None:
        """Adaptive share: when more than ADAPT_THROTTLE_SHARE of this worker's last sends
        were throttled (someone else is using the quota), use 25 % fewer slots (at most
        every 2 s); each send that is not throttled gives back 1 %. Occasional 429s from
        timing jitter do not slow the worker down."""
        with self._lock:
            self._outcomes.append(throttled)
            if throttled:
                now = time.monotonic()
                n = len(self._outcomes)
                if (n >= ADAPT_WINDOW // 2 and sum(self._outcomes) / n > ADAPT_THROTTLE_SHARE
                        and now - self._last_cut > 2.0):
                    self.factor = max(0.05, self.factor * 0.75)
                    self._last_cut = now
                    self._outcomes.clear()
                    LOG.info("throttled: this worker now uses %.0f%% of its slots", 100 * self.factor)
            elif self.factor < 1.0:
                self.factor = min(1.0, self.factor + 0.01)


_SEND = threading.local()  # the slot a thread is about to send in; read by the before-send hook


def install_pacing_hook(client) -> None:
    """Wait for the slot in botocore's before-send event, after the request is serialised
    and signed: the time from the slot to the wire is then only the socket write."""

    def before_send(**_):
        plan = getattr(_SEND, "plan", None)
        if plan is not None:
            pacer, slot, cancelled = plan
            _SEND.plan = None
            _SEND.departure = pacer.wait(slot, cancelled)
        return None

    client.meta.events.register("before-send.customer-profiles.MergeProfiles", before_send)
    client._profile_dedup_paced = True  # noqa: SLF001 - our own marker


class _Cancelled(Exception):
    """The circuit breaker tripped while waiting."""


class _Fatal(Exception):
    """Stop everything: credentials, permissions, unknown domain."""


class _Unknown(Exception):
    """The profiles' state could not be read before the deadline."""


class Breaker:
    """Stops sending for the whole job: on a fatal error or too many failed attempts."""

    def __init__(self, config: SinkConfig):
        self._config = config
        self.tripped = threading.Event()
        self.reason: str | None = None
        self._lock = threading.Lock()
        self._window: collections.deque[bool] = collections.deque(maxlen=ERROR_WINDOW)
        self._failing_since: float | None = None   # when the share of failures went above the threshold
        self._checked = 0.0
        # A worker process the launcher started itself (the DirectRunner's multi_processing mode, through
        # "sh -c") outlives a launcher that is killed, and must then stop sending. Workers of other
        # runners do not descend from the launcher (and may rightly outlive it): they are not watched.
        launcher = config.launcher_pid
        self._launcher = launcher if launcher and launcher != os.getpid() and _descends_from(launcher) else 0

    def trip(self, reason: str) -> None:
        with self._lock:
            if self.tripped.is_set():
                return
            self.reason = reason
            self.tripped.set()
        LOG.error("circuit breaker: %s; no more MergeProfiles are sent in this run", reason)
        try:
            write_stop(self._config.journal_dir, self._config.run_id, reason)
        except Exception as error:  # the local flag still stops this worker
            LOG.error("could not write %s: %s", STOP_FILE, error)

    def is_tripped(self) -> bool:
        """True once tripped here or by another worker (STOP.json, checked once a second)."""
        if self.tripped.is_set():
            return True
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            if self._launcher and not _alive(self._launcher):
                self.trip("the job that started this worker process has ended (killed or interrupted); "
                          "run it again to go on")
                return True
            reason = read_stop(self._config.journal_dir, self._config.run_id)
            if reason:
                with self._lock:
                    self.reason = self.reason or reason
                    self.tripped.set()
        return self.tripped.is_set()

    def record(self, error: bool, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._window.append(error)
            n = len(self._window)
            failed = sum(self._window)
            above = n >= ERROR_WINDOW_MIN and failed / n > self._config.error_rate_threshold
            if not above:
                self._failing_since = None
                return
            if self._failing_since is None:
                self._failing_since = now
            lasted = now - self._failing_since
        if lasted >= ERROR_SPAN_S:
            self.trip(f"{failed} of the last {n} MergeProfiles attempts failed, above "
                      f"--merge_error_rate_threshold {self._config.error_rate_threshold:g} "
                      f"for {lasted:.0f} s")


def _descends_from(pid: int) -> bool:
    """Is ``pid`` an ancestor of this process (the launcher that started this worker, maybe through a shell)?"""
    import psutil  # noqa: PLC0415

    try:
        return pid in {parent.pid for parent in psutil.Process().parents()}
    except psutil.Error:
        return False


def _alive(pid: int) -> bool:
    """Is the process running (a zombie, dead but not yet reaped by its parent, is not)?"""
    import psutil  # noqa: PLC0415

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:   # not ours to read: it exists
        return True


_PROCESS_LOCK = threading.Lock()
_PROCESS_STATE: dict[str, tuple[SlotPacer, Breaker]] = {}


def stop_sending(reason: str) -> int:
    """Trip the breaker of every run in this process (e.g. on a signal): no shard here sends again.
    Each writes its run's STOP.json; returns how many there were (none in a launcher whose workers
    are other processes)."""
    with _PROCESS_LOCK:
        breakers = [breaker for _, breaker in _PROCESS_STATE.values()]
    for breaker in breakers:
        breaker.trip(reason)
    return len(breakers)


def _process_state(config: SinkConfig) -> tuple[SlotPacer, Breaker]:
    """The pacer and breaker every shard of this run shares in this worker process."""
    with _PROCESS_LOCK:
        if config.run_id not in _PROCESS_STATE:
            _PROCESS_STATE[config.run_id] = (SlotPacer(config.rate, config.shards, config.headroom), Breaker(config))
        return _PROCESS_STATE[config.run_id]


# --------------------------------------------------------------------------- one shard

class _Item:
    """One request on its way through a shard."""

    def __init__(self, element: dict):
        self.element = element
        self.request = element["request"]
        self.main = self.request["MainProfileId"]
        self.ids = [self.main, *dict.fromkeys(self.request["ProfileIdsToBeMerged"])]
        self.ready = threading.Event()       # state fetched (or the fetch failed)
        self.claimed = False
        self.state: dict[str, dict | None] | None = None
        self.state_time = 0.0
        # the state was read before an earlier request of its group merged into the same main
        self.main_stale = False


def _error_code(error) -> tuple[str, int]:
    response = getattr(error, "response", None) or {}
    code = (response.get("Error") or {}).get("Code") or type(error).__name__
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
    return code, int(status)


class ShardRunner:
    """Applies the requests of one shard: chains of one main in order, ``concurrency``
    chains at a time, every send paced, checked, retried and journaled."""

    def __init__(self, shard: int, elements: Iterable[dict], client, config: SinkConfig,
                 pacer: SlotPacer, breaker: Breaker, cutoff: int | None):
        self.shard = shard
        self.config = config
        self.client = client
        self.pacer = pacer
        self.breaker = breaker
        self.cutoff = cutoff
        items = [_Item(e) for e in sorted(elements, key=lambda e: e["line"])]
        chains: dict[str, list[_Item]] = {}
        for item in items:
            chains.setdefault(item.main, []).append(item)
        self._queue = collections.deque(chains.values())
        self.total = len(items)
        self.outcomes: list[dict] = []
        self.stats: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._journal: JournalWriter | None = None
        self._started = 0.0
        self._last_progress = 0.0
        self._local = threading.local()

    # -- driver -------------------------------------------------------------------
    def run(self) -> list[dict]:
        self._started = self._last_progress = time.monotonic()
        self._journal = JournalWriter(self.config.journal_dir, self.config.run_id, self.shard)
        try:
            workers = [threading.Thread(target=self._work, name=f"apply-shard-{self.shard}-{i}", daemon=True)
                       for i in range(min(self.config.concurrency, len(self._queue)))]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        finally:
            self._journal_write({"event": "shard_done", "run": self.config.run_id, "shard": self.shard,
                                 "stats": dict(self.stats), "t": time.time(), "time": utc_now_iso()})
            try:
                self._journal.close()
            except OSError as error:
                LOG.error("shard %d: the journal could not be closed: %s", self.shard, error)
        self._log_progress(final=True)
        return self.outcomes

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    return
                chain = self._queue.popleft()
            previous: dict | None = None
            whole = self._whole_chain_check(chain) if len(chain) > 1 else None
            for item in chain:
                if whole is not None:
                    self._finish(item, *whole)
                    continue
                try:
                    record = self._handle(item, previous)
                except Exception as error:  # a bug: record it, never lose the request
                    LOG.exception("shard %d: unexpected error on line %s", self.shard, item.element.get("line"))
                    record = self._finish(item, "failed", f"unexpected error: {type(error).__name__}",
                                          error_code=type(error).__name__, error_message=scrub(str(error)))
                previous = record
            self._maybe_log_progress()

    def _whole_chain_check(self, chain: list[_Item]) -> tuple[str, str] | None:
        """(outcome, reason) for every request of a group split over several requests (one main),
        when the group must not be started: None to go on, request by request.

        Each request checks its own ids before it is sent, so a group whose third request holds a
        profile deleted since the export would be merged two requests out of three, and a partial
        group is never merged. Before the first request goes, the ids of every request not sent
        before are read together: a request that lost some of its profiles to merge stops the group
        (one that lost all of them was applied before, and says so itself). A group that
        --max_merges would cut in two waits for a run that can send it whole."""
        if self.cutoff is not None and chain[-1].element["line"] > self.cutoff >= chain[0].element["line"]:
            return "not_applied", (f"--max_merges reached: the group of main {chain[0].main} needs "
                                   f"{len(chain)} requests; not started in this run, so that it is not left half merged")
        fresh = [item for item in chain if not (item.element.get("previous") or {}).get("sent")
                 and not item.element.get("blocked")]
        if len(fresh) < 2 or self.breaker.is_tripped():
            return None
        ids = list(dict.fromkeys(pid for item in fresh for pid in item.ids))
        try:
            state = self._fetch_state(ids, time.monotonic() + self.config.retry_deadline_s)
        except (_Fatal, _Unknown):
            return None   # each request reads its own state again, and says what it finds
        gone = [pid for pid in ids if state.get(pid) is None]
        # A request whose profiles to merge are all gone was applied before (by an earlier run with
        # another journal, or another caller) or its profiles deleted: it says so itself, as a request
        # of its own would (already_applied), and the rest of the group goes on. Only a request that
        # lost some of its profiles makes the group a stale plan.
        partial = [item for item in fresh if 0 < sum(state.get(pid) is None for pid in item.ids[1:]) < len(item.ids) - 1]
        if not partial or state.get(chain[0].main) is None:
            # all there (or the main is gone, which each request reports itself): what was read
            # is each request's state, unless another thread's read-ahead has taken that request already
            now = time.monotonic()
            with self._lock:
                for position, item in enumerate(fresh):
                    if not item.claimed:
                        item.claimed = True
                        item.state, item.state_time = {pid: state[pid] for pid in item.ids}, now
                        # the main changes with each request before this one (its merged values, its
                        # EngagementPreferences once --fix_engagement_preferences has updated them)
                        item.main_stale = position > 0
                        item.ready.set()
            return None
        return "skipped", (f"stale plan: {len(gone)} of the {len(ids)} profiles of this group (main "
                           f"{chain[0].main}, {len(chain)} requests) no longer exist ({', '.join(gone[:5])}"
                           f"{', ...' if len(gone) > 5 else ''}); a group is merged whole or not at all")

    # -- one request --------------------------------------------------------------
    def _handle(self, item: _Item, previous_in_chain: dict | None) -> dict:
        element = item.element
        if element.get("blocked"):
            return self._finish(item, "skipped", element["blocked"])
        if previous_in_chain and previous_in_chain["outcome"] not in ("merged", "already_applied"):
            outcome = "skipped" if previous_in_chain["outcome"] == "skipped" else "not_applied"
            return self._finish(item, outcome, f"an earlier request for main {item.main} (line "
                                               f"{previous_in_chain['line']}) ended {previous_in_chain['outcome']}")
        if self.cutoff is not None and element["line"] > self.cutoff:
            return self._finish(item, "not_applied", "--max_merges reached: not sent in this run")
        if self.breaker.is_tripped():
            return self._finish(item, "not_applied", f"circuit breaker: {self.breaker.reason}")
        try:
            state = self._state_for(item)
            if item.main_stale:
                # read with its group's, before the requests ahead of it merged into the main: the
                # main as it is now (the EngagementPreferences follow-up unions from it)
                state = {**state, **self._fetch_state([item.main], time.monotonic() + self.config.retry_deadline_s)}
                item.main_stale = False
        except _Fatal as error:
            self.breaker.trip(str(error))
            return self._finish(item, "not_applied", f"circuit breaker: {self.breaker.reason}")
        except _Unknown as error:
            if self.breaker.is_tripped():
                return self._finish(item, "not_applied", f"circuit breaker: {self.breaker.reason}")
            return self._finish(item, "failed", f"could not read the profiles' state: {error}; nothing was sent",
                                error_code="StateUnknown")
        present = {pid: profile is not None for pid, profile in state.items()}
        outcome, reason = classify_state(item.request, present)
        if outcome:
            if outcome == "already_applied":
                reason = self._already_reason(element, reason)
            return self._finish(item, outcome, reason)
        return self._send(item, state)

    def _already_reason(self, element: dict, reason: str, sent_now: bool = False) -> str:
        previous = element.get("previous") or {}
        if sent_now:
            return f"{reason}: the merge sent in this run was applied though its answer was lost"
        if previous.get("sent"):
            return f"{reason}: sent by run {previous.get('run')} (outcome {previous.get('outcome') or 'unknown'})"
        # BatchGetProfile says the ids are gone, not where they went: this tool never sent this request,
        # so another caller merged them (into this main, or perhaps another) or they were deleted
        return (f"{reason}: this request was not sent by this tool (not in its journal); merged before this "
                "run by another caller or another plan (into this main or perhaps another: the state does not "
                "say) or deleted; check the main profile")

    def _send(self, item: _Item, before: dict[str, dict | None]) -> dict:
        config = self.config
        deadline = time.monotonic() + config.retry_deadline_s
        attempts = throttles = 0
        sent_at: list[float] = []
        ambiguous = False            # a send whose effect we do not know
        last_code = last_message = ""
        backoff_n = 0
        while True:
            if self.breaker.is_tripped():
                return self._unsent_after_stop(item, ambiguous, attempts, throttles, sent_at, last_code, last_message)
            slot = self.pacer.reserve()
            # Intent first (flushed: it survives SIGKILL), then wait for the slot and send. A run that
            # cannot write its journal cannot be resumed safely: it stops before the send, not after.
            if not self._journal_write({"event": "sending", "run": config.run_id,
                                        "request_id": item.element["request_id"], "line": item.element["line"],
                                        # "t" is when it was written (records of all runs are ordered by it);
                                        # the slot it waits for may be seconds ahead
                                        "attempt": attempts + 1, "t": time.time(), "slot": slot}, sync=False):
                return self._unsent_after_stop(item, ambiguous, attempts, throttles, sent_at, last_code, last_message)
            _SEND.departure = None
            try:
                if getattr(self.client, "_profile_dedup_paced", False):
                    _SEND.plan = (self.pacer, slot, self.breaker.tripped)
                else:
                    _SEND.departure = self.pacer.wait(slot, self.breaker.tripped)
                try:
                    self.client.merge_profiles(**item.request)
                finally:
                    _SEND.plan = None
                    departure = _SEND.departure
                    if departure is not None:
                        attempts += 1
                        sent_at.append(round(departure, 4))
                        self._count("sent" if attempts == 1 else "retried")
            except _Cancelled:
                return self._unsent_after_stop(item, ambiguous, attempts, throttles, sent_at, last_code, last_message)
            except Exception as error:  # classified below
                code, status = _error_code(error)
                last_code, last_message = code, scrub(_message_of(error))
                kind = _kind_of(error, code, status)
                if departure is None:  # failed before reaching the wire (e.g. credentials)
                    attempts += 1
                    self._count("sent" if attempts == 1 else "retried")
            else:
                self.pacer.record(False)
                self.breaker.record(False)
                record = self._finish(item, "merged", "", attempts=attempts, throttled=throttles, sent_at=sent_at,
                                      error_code=last_code, error_message=last_message)
                return self._after_merge(item, before, record)

            if kind == "throttle":
                throttles += 1
                self._count("throttled")
                self.pacer.record(True)
            else:
                self.breaker.record(kind in ("server", "unknown", "connect", "client"))
            if kind == "auth":
                self.breaker.trip(f"{code} from MergeProfiles: check the credentials and the IAM permissions "
                                  "(profile:MergeProfiles, profile:BatchGetProfile)")
                return self._finish(item, "failed", "not authorised; circuit breaker tripped", attempts=attempts,
                                    throttled=throttles, sent_at=sent_at, error_code=code, error_message=last_message)
            if kind == "client":
                return self._finish(item, "failed", "rejected by the service (not retried)", attempts=attempts,
                                    throttled=throttles, sent_at=sent_at, error_code=code, error_message=last_message)
            if kind == "not_found":
                return self._resolve(item, before, attempts, throttles, sent_at, code, last_message,
                                     sent_before=ambiguous, deadline=deadline)
            if kind in ("server", "unknown"):
                ambiguous = True
            backoff_n += 1
            base = THROTTLE_BACKOFF_BASE_S if kind == "throttle" else BACKOFF_BASE_S
            delay = random.uniform(0, min(BACKOFF_CAP_S, base * 2 ** backoff_n))
            if time.monotonic() + delay > deadline:
                if ambiguous:
                    return self._resolve(item, before, attempts, throttles, sent_at, code, last_message,
                                         sent_before=True, deadline=deadline + 30, gave_up=True)
                return self._finish(item, "failed", f"gave up after {attempts} attempts (--merge_retry_deadline)",
                                    attempts=attempts, throttled=throttles, sent_at=sent_at, error_code=code,
                                    error_message=last_message)
            self._maybe_log_progress()   # retries (throttling, an outage) do not silence the progress lines
            if self.breaker.tripped.wait(delay):
                continue  # handled at the top of the loop
            if ambiguous:
                try:
                    state = self._fetch_state(item.ids, deadline)
                except _Fatal as error:
                    self.breaker.trip(str(error))
                    continue
                except _Unknown as error:
                    return self._finish(item, "failed", f"outcome unknown and the state could not be read: {error}",
                                        attempts=attempts, throttled=throttles, sent_at=sent_at, error_code=code,
                                        error_message=last_message)
                present = {pid: profile is not None for pid, profile in state.items()}
                outcome, reason = classify_state(item.request, present)
                if outcome == "already_applied":
                    record = self._finish(item, outcome, self._already_reason(item.element, reason, sent_now=True),
                                          attempts=attempts, throttled=throttles, sent_at=sent_at,
                                          error_code=code, error_message=last_message)
                    return self._after_merge(item, before, record)
                if outcome:
                    return self._finish(item, outcome, reason, attempts=attempts, throttled=throttles,
                                        sent_at=sent_at, error_code=code, error_message=last_message)
                ambiguous = False  # checked: not applied; safe to send again

    def _resolve(self, item, before, attempts, throttles, sent_at, code, message, *, sent_before: bool,
                 deadline: float, gave_up: bool = False) -> dict:
        """After a 404 or an unknown outcome: read the state and say what happened."""
        try:
            state = self._fetch_state(item.ids, deadline)
        except (_Fatal, _Unknown) as error:
            if isinstance(error, _Fatal):
                self.breaker.trip(str(error))
            return self._finish(item, "failed", f"outcome unknown: the state could not be read ({error}); "
                                "a re-run checks it again", attempts=attempts, throttled=throttles, sent_at=sent_at,
                                error_code=code, error_message=message)
        present = {pid: profile is not None for pid, profile in state.items()}
        outcome, reason = classify_state(item.request, present)
        common = dict(attempts=attempts, throttled=throttles, sent_at=sent_at, error_code=code, error_message=message)
        if outcome == "already_applied":
            reason = self._already_reason(item.element, reason, sent_now=sent_before)
            return self._after_merge(item, before, self._finish(item, outcome, reason, **common))
        if outcome:
            return self._finish(item, outcome, reason, **common)
        if gave_up:
            # read just now, the profiles were not merged; a request still on its way (one that
            # timed out) may land later, so this says what was seen, and a re-run checks again
            return self._finish(item, "failed", f"gave up after {attempts} attempts (--merge_retry_deadline); "
                                "the profiles were not merged when last read (a request that timed out may "
                                "still land: a re-run checks the state before sending)", **common)
        if code == NOT_FOUND and "domain" in message.lower():
            self.breaker.trip(f"domain {self.config.domain_name!r} not found: {message}")
        return self._finish(item, "failed", "404 although every profile exists", **common)

    def _unsent_after_stop(self, item, ambiguous, attempts, throttles, sent_at, code, message) -> dict:
        if ambiguous:
            try:
                state = self._fetch_state(item.ids, time.monotonic() + 30)
                present = {pid: profile is not None for pid, profile in state.items()}
                outcome, reason = classify_state(item.request, present)
                if outcome == "already_applied":
                    return self._finish(item, outcome, self._already_reason(item.element, reason, sent_now=True),
                                        attempts=attempts, throttled=throttles, sent_at=sent_at,
                                        error_code=code, error_message=message)
            except Exception:  # noqa: BLE001 - the journal says not_applied; a re-run re-checks
                pass
        return self._finish(item, "not_applied", f"circuit breaker: {self.breaker.reason}", attempts=attempts,
                            throttled=throttles, sent_at=sent_at, error_code=code, error_message=message)

    # -- EngagementPreferences follow-up -----------------------------------------
    def _after_merge(self, item: _Item, before: dict[str, dict | None], record: dict) -> dict:
        if not self.config.fix_engagement_preferences:
            return record
        profiles = [before.get(pid) for pid in item.ids]
        if any(p is None for p in profiles):
            status = "unavailable: the profiles before the merge are not known"
        else:
            by_id = dict(zip(item.ids, profiles))
            union = union_engagement_preferences(item.main, profiles)
            expected = expected_after_merge(item.request, by_id, "EngagementPreferences")
            if not union or union == expected:
                status = "unchanged"
            else:
                try:
                    self._call("update_profile", deadline=time.monotonic() + self.config.retry_deadline_s,
                               DomainName=self.config.domain_name, ProfileId=item.main, EngagementPreferences=union)
                    status = "updated"
                    self._count("engagement_preferences_updated")
                except _Fatal as error:
                    self.breaker.trip(str(error))
                    status = f"failed: {error}"
                except _Unknown as error:
                    status = f"failed: {error}"
                if status.startswith("failed"):
                    LOG.warning("line %s: merged, but the EngagementPreferences update after it %s", item.element["line"],
                                status)
        record["engagement_preferences"] = status
        self._journal_write({"event": "engagement_preferences", "run": self.config.run_id,
                             "request_id": record["request_id"], "status": status, "t": time.time()})
        return record

    # -- state checks -------------------------------------------------------------
    def _state_for(self, item: _Item) -> dict[str, dict | None]:
        """The state of an item's profiles, fetched together with the ids of the next
        unstarted chains (up to 20 ids a call), or prefetched by an earlier call."""
        with self._lock:
            mine = not item.claimed
            batch = [item]
            if mine:
                item.claimed = True
                ids = set(item.ids)
                for chain in self._queue:
                    head = chain[0]
                    if head.claimed:
                        continue
                    if len(ids | set(head.ids)) > BATCH_GET_MAX_IDS:
                        break
                    head.claimed = True
                    ids |= set(head.ids)
                    batch.append(head)
        if mine:
            wanted = list(dict.fromkeys(pid for it in batch for pid in it.ids))
            try:
                state = self._fetch_state(wanted, time.monotonic() + self.config.retry_deadline_s)
            except BaseException:
                for other in batch[1:]:
                    other.claimed = False  # its own worker fetches it again
                    other.ready.set()
                raise
            now = time.monotonic()
            for it in batch:
                it.state = {pid: state[pid] for pid in it.ids}
                it.state_time = now
                it.ready.set()
        else:
            item.ready.wait()
        if item.state is None or time.monotonic() - item.state_time > MAX_STATE_AGE_S:
            item.state = self._fetch_state(item.ids, time.monotonic() + self.config.retry_deadline_s)
            item.state_time = time.monotonic()
        return item.state

    def _fetch_state(self, ids: list[str], deadline: float) -> dict[str, dict | None]:
        """BatchGetProfile, 20 ids a call: id -> profile, or None when it does not exist."""
        state: dict[str, dict | None] = {}
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), BATCH_GET_MAX_IDS):
            chunk = ids[start:start + BATCH_GET_MAX_IDS]
            answer = self._call("batch_get_profile", deadline=deadline, DomainName=self.config.domain_name,
                                ProfileIds=chunk)
            self._count("batch_get_calls")
            for profile in answer.get("Profiles") or []:
                state[profile["ProfileId"]] = profile
            for error in answer.get("Errors") or []:
                code = str(error.get("Code") or "")
                if not _says_not_found(code):
                    # only "not found" says a profile is gone (merged away, deleted); any other code
                    # (throttling, a 5xx, one this code does not know) leaves its state unknown:
                    # taken for gone, the merge would be recorded as done and never sent
                    raise _Unknown(f"BatchGetProfile answered {code or 'an error without a code'} "
                                   f"for {error.get('ProfileId')}")
                state.setdefault(error["ProfileId"], None)
            missing = [pid for pid in chunk if pid not in state]
            if missing:
                raise _Unknown(f"BatchGetProfile said nothing about {len(missing)} id(s)")
        return state

    def _call(self, operation: str, *, deadline: float, **kwargs) -> dict:
        """A read or idempotent call, retried on throttling, 5xx and connection errors."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return getattr(self.client, operation)(**kwargs)
            except Exception as error:  # classified below
                code, status = _error_code(error)
                kind = _kind_of(error, code, status)
                if kind == "auth":
                    raise _Fatal(f"{code} from {operation}: check the credentials and the IAM permissions") from None
                if kind == "not_found" and operation == "batch_get_profile":
                    raise _Fatal(f"domain {self.config.domain_name!r} not found ({code})") from None
                if kind in ("client", "not_found"):
                    raise _Unknown(f"{operation} failed: {code}: {scrub(_message_of(error))}") from None
                delay = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** attempt))
                if time.monotonic() + delay > deadline:
                    raise _Unknown(f"{operation} still failing after {attempt} attempts: {code}") from None
                # (throttling here is of BatchGetProfile or UpdateProfile: "throttled" counts MergeProfiles)
                self._maybe_log_progress()
                # a stop (a signal, the breaker, another worker's STOP.json) ends the retries at once:
                # this call would otherwise hold the run for up to --merge_retry_deadline
                if self.breaker.tripped.wait(delay) or self.breaker.is_tripped():
                    raise _Unknown(f"{operation} not retried: the run is stopping ({self.breaker.reason})") from None

    # -- bookkeeping --------------------------------------------------------------
    def _finish(self, item: _Item, outcome: str, reason: str, *, attempts: int = 0, throttled: int = 0,
                sent_at: list[float] | None = None, error_code: str = "", error_message: str = "") -> dict:
        element = item.element
        record = {
            "event": "outcome",
            "run": self.config.run_id,
            "request_id": element["request_id"],
            "line": element["line"],
            "shard": self.shard,
            "request": item.request,
            "outcome": outcome,
            "reason": reason,
            "attempts": attempts,
            "throttled": throttled,
            "sent_at": sent_at or [],
            "error_code": error_code or "",
            "error_message": error_message or "",
            "time": utc_now_iso(),
            "t": time.time(),
        }
        self._journal_write(record)   # if it fails, the outcome is still returned and reported
        self._count(outcome)
        with self._lock:
            self.outcomes.append(record)
        if outcome in ("skipped", "failed"):
            LOG.info("shard %d line %d: %s (%s)", self.shard, element["line"], outcome, reason or error_code)
        return record

    def _journal_write(self, record: dict, sync: bool = True) -> bool:
        """Append to the journal; False (and the circuit breaker tripped, so that no worker sends
        again) when it cannot be written: a disk full, a directory gone read-only."""
        try:
            self._journal.write(record, sync=sync)
            return True
        except Exception as error:  # noqa: BLE001  (any failure to record is a reason to stop)
            self.breaker.trip(f"the journal could not be written ({type(error).__name__}: {error}); a run that "
                              "cannot record what it sends stops sending")
            return False

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    def _maybe_log_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress >= self.config.progress_every_s:
            with self._lock:
                if now - self._last_progress < self.config.progress_every_s:
                    return
                self._last_progress = now
            self._log_progress()

    def _log_progress(self, final: bool = False) -> None:
        s = self.stats
        elapsed = max(1e-9, time.monotonic() - self._started)
        LOG.info("apply shard %d%s: %d/%d done; %d sent, %d merged, %d already applied, %d skipped, %d failed, "
                 "%d not applied, %d throttled; %.1f merges/s", self.shard, " finished" if final else "",
                 len(self.outcomes), self.total, s["sent"], s["merged"], s["already_applied"], s["skipped"],
                 s["failed"], s["not_applied"], s["throttled"], s["merged"] / elapsed)


def _message_of(error) -> str:
    response = getattr(error, "response", None) or {}
    return (response.get("Error") or {}).get("Message") or str(error)


def _says_not_found(code: str) -> bool:
    """Whether a per-profile error code of BatchGetProfile says the profile does not exist. The API
    reference calls the code a "status code for why a specific profile failed" without listing them:
    ResourceNotFoundException, a 404 or another "...NotFound..." name counts; nothing else does."""
    return code == NOT_FOUND or code == "404" or "notfound" in code.replace("_", "").lower()


def _kind_of(error, code: str, status: int) -> str:
    """throttle | server | unknown (connection lost after sending) | connect (never sent) |
    not_found | auth | client."""
    from botocore import exceptions as bx

    if isinstance(error, bx.ClientError):
        if code in THROTTLE_CODES or status == 429:
            return "throttle"
        if code in AUTH_CODES or status == 403:
            return "auth"
        if code == NOT_FOUND or status == 404:
            return "not_found"
        if status >= 500:
            return "server"
        return "client"
    if isinstance(error, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.NoRegionError)):
        return "auth"
    if isinstance(error, bx.ParamValidationError):
        return "client"
    if isinstance(error, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        return "connect"  # the request never reached the service
    if isinstance(error, (bx.HTTPClientError, bx.ReadTimeoutError, ConnectionError, TimeoutError)):
        return "unknown"  # it may have been applied
    raise error


# --------------------------------------------------------------------------- Beam wiring

class _ApplyShardsFn(beam.DoFn):
    """(shard, requests) -> outcome records. Shards of a bundle run at the same time on
    threads (the runner may hand every shard to one bundle); outcomes are emitted at the
    end of the bundle, when they are all journaled."""

    def __init__(self, config: SinkConfig):
        self._config = config
        self._counters = {name: Metrics.counter(METRICS_NAMESPACE, name) for name in COUNTERS}

    def setup(self):
        self._client = make_client(self._config)
        install_pacing_hook(self._client)
        self._pacer, self._breaker = _process_state(self._config)
        self._executor = ThreadPoolExecutor(max_workers=self._config.shards, thread_name_prefix="apply-shard")

    def start_bundle(self):
        self._running: list[tuple[ShardRunner, Any]] = []

    def process(self, element, cutoff=None):
        shard, requests = element
        self._pacer.own(shard)
        runner = ShardRunner(shard, list(requests), self._client, self._config, self._pacer, self._breaker, cutoff)
        self._running.append((runner, self._executor.submit(runner.run)))

    def finish_bundle(self):
        reported: collections.Counter[str] = collections.Counter()
        futures = [future for _, future in self._running]
        while True:
            # (a signal to the job trips the breaker from pipeline.apply; the shards then end)
            done, pending = wait(futures, timeout=2.0)
            self._report(reported)  # metrics must be updated from the bundle's thread
            if not pending:
                break
        for runner, future in self._running:
            future.result()  # re-raise a bug; Beam retries the bundle, the checks make that safe
            for record in runner.outcomes:
                yield GlobalWindows.windowed_value(record)

    def _report(self, reported: collections.Counter) -> None:
        total: collections.Counter[str] = collections.Counter()
        for runner, _ in self._running:
            with runner._lock:
                total.update(runner.stats)
        for name in COUNTERS:
            delta = total[name] - reported[name]
            if delta:
                self._counters[name].inc(delta)
                reported[name] += delta

    def teardown(self):
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=False)


class ApplyMerges(beam.PTransform):
    """Requests -> outcome records; see the module docstring for how.

    ``max_merges`` (0: no cap) limits the requests this run handles, in plan order; the
    rest are recorded ``not_applied``.
    """

    def __init__(self, config: SinkConfig, max_merges: int = 0):
        super().__init__()
        self._config = config
        self._max_merges = max_merges

    def expand(self, requests):
        shards = self._config.shards
        keyed = requests | "KeyByShard" >> beam.Map(
            lambda r: (r["shard"] if r.get("shard") is not None else shard_of(r["request"]["MainProfileId"], shards), r))
        grouped = keyed | "GroupByShard" >> beam.GroupByKey()
        if not self._max_merges:
            return grouped | "SendMerges" >> beam.ParDo(_ApplyShardsFn(self._config))
        cap = self._max_merges
        cutoff = (
            requests
            | "LineNumbers" >> beam.Map(lambda r: r["line"])
            | "FirstLines" >> beam.combiners.Top.Smallest(cap)
            | "CutoffLine" >> beam.Map(lambda lines: lines[-1] if len(lines) >= cap else None)
        )
        return grouped | "SendMerges" >> beam.ParDo(_ApplyShardsFn(self._config),
                                                    cutoff=beam.pvalue.AsSingleton(cutoff))
