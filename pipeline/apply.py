"""Apply a merge plan: check it whole, resume from the journal, send the rest.

    summary = run_apply(options, job, plan_path)

1. Read the plan (local or s3:// through Beam's FileSystems) and validate every line with
   ``validate_merge_request(line, --domain_name)``, plus the plan as a whole: no profile
   merged away by two requests, no main profile merged away by another request. One bad
   line refuses the whole plan (ValueError naming the lines) before anything is sent.
2. Check the credentials and Region can be found, and the domain exists (GetDomain).
3. Read ``OUTPUT/journal/``: requests already merged, already applied or skipped are not
   sent again; failed, not applied and unknown ones are re-checked by the sink first.
4. Run a Beam pipeline (same options and runner as the dry run) that applies the rest
   with ``transforms.sink.ApplyMerges``.
5. Write ``OUTPUT/applied.jsonl`` (one line per plan line, plan order, its final outcome)
   and an ``apply`` section in ``OUTPUT/summary.json``.
6. If this run left requests not done (circuit breaker, --max_merges, failures), raise
   ``ApplyStopped`` (a SystemExit: uncaught, Python prints the message and exits 1).
"""
from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time

import apache_beam as beam
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import StandardOptions

from pipeline import io
from transforms.sink import (
    DONE_OUTCOMES,
    METRICS_NAMESPACE,
    OUTCOMES,
    ApplyMerges,
    SinkConfig,
    is_local,
    make_client,
    make_session,
    new_run_id,
    read_journal,
    read_stop,
    request_id_of,
    run_dir,
    scrub,
    stop_sending,
    utc_now_iso,
    write_stop,
)
from transforms.validate import validate_merge_request

LOG = logging.getLogger("profile_dedup.apply")
MAX_PROBLEMS_SHOWN = 50


class ApplyStopped(SystemExit):
    """The apply run ended with requests not done: the circuit breaker tripped, --max_merges
    was reached, or some requests failed. Everything is journaled; a re-run with the same
    --output continues. ``summary`` is the summary written to summary.json."""

    def __init__(self, message: str, summary: dict, reason: str):
        super().__init__(message)
        self.message = message
        self.summary = summary
        self.reason = reason

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- the plan

def refuse_incomplete_plan(plan_path: str) -> None:
    """ValueError if the dry run that wrote the plan lost data between its steps (its summary.json,
    beside the plan, lists ``handover_problems``): that plan leaves out merges. A plan without a
    summary beside it (written by hand, or copied alone) is not judged here."""
    summary_path = FileSystems.join(FileSystems.split(plan_path)[0], "summary.json")
    try:
        summary = io.read_json(summary_path)
    except (OSError, BeamIOError, ValueError):
        return
    problems = summary.get("handover_problems") if isinstance(summary, dict) else None
    if problems:
        raise ValueError(f"the dry run that wrote {plan_path} lost data between steps ({'; '.join(problems)}), "
                         "so the plan is incomplete; run the dry run again and apply its plan")


def load_plan(path: str, domain_name: str) -> list[dict]:
    """The plan's requests as ``{"line", "request_id", "request"}``; ValueError naming every
    bad line if any line cannot be sent."""
    try:
        with FileSystems.open(path) as handle:
            text = handle.read().decode("utf-8")
    except (OSError, BeamIOError) as error:
        raise ValueError(f"cannot read the plan {path}: {error}") from None
    entries, problems = [], []
    merged_at: dict[str, int] = {}      # profile id -> line that merges it away
    main_at: dict[str, int] = {}        # profile id -> first line where it is the main
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            request = json.loads(raw)
        except ValueError as error:
            problems.append((n, f"not JSON ({error})"))
            continue
        found = validate_merge_request(request, domain_name)
        if found:
            problems.append((n, "; ".join(found)))
            continue
        main = request["MainProfileId"]
        if main in merged_at:
            problems.append((n, f"main profile {main} is merged away by line {merged_at[main]}"))
        for pid in request["ProfileIdsToBeMerged"]:
            if pid in merged_at:
                problems.append((n, f"profile {pid} is also merged by line {merged_at[pid]}"))
            elif pid in main_at:
                problems.append((n, f"profile {pid} is the main profile of line {main_at[pid]}"))
            merged_at.setdefault(pid, n)
        main_at.setdefault(main, n)
        entries.append({"line": n, "request_id": request_id_of(request), "request": request})
    if problems:
        shown = "\n".join(f"  line {n}: {why}" for n, why in problems[:MAX_PROBLEMS_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        lines = len({n for n, _ in problems})
        raise ValueError(f"refusing the plan {path}: {lines} line(s) cannot be sent as they are; "
                         f"nothing was sent:\n{shown}{more}")
    return entries


# --------------------------------------------------------------------------- the journal

def final_states(records: list[dict]) -> dict[str, dict]:
    """request_id -> {"outcome" (latest outcome or None), "record", "run", "sent", "attempts",
    "engagement_preferences"} over every run in the journal."""
    states: dict[str, dict] = {}
    # in the order they were written ("t")
    for record in sorted(records, key=lambda r: r.get("t") or 0):
        rid = record.get("request_id")
        if not rid:
            continue
        state = states.setdefault(rid, {"outcome": None, "record": None, "run": None, "sent": False,
                                        "attempts": 0, "engagement_preferences": None})
        event = record.get("event")
        if event == "sending":
            state["sent"] = True
            state["run"] = record.get("run")
        elif event == "outcome":
            if not (state["outcome"] == "merged" and record["outcome"] == "already_applied"):
                # (a retried bundle finds its own merge done: it stays "merged")
                state["outcome"] = record["outcome"]
                state["record"] = record
            state["run"] = record.get("run")
            state["attempts"] += record.get("attempts") or 0
            state["sent"] = state["sent"] or bool(record.get("attempts"))
        elif event == "engagement_preferences":
            state["engagement_preferences"] = record.get("status")
    return states


def pending_requests(plan: list[dict], states: dict[str, dict]) -> tuple[list[dict], int]:
    """The plan entries this run must handle (with what the journal knows), and how many
    are done already."""
    pending, done = [], 0
    skipped_mains: dict[str, int] = {}
    for entry in plan:
        state = states.get(entry["request_id"])
        main = entry["request"]["MainProfileId"]
        if state and state["outcome"] in DONE_OUTCOMES:
            done += 1
            if state["outcome"] == "skipped":
                skipped_mains.setdefault(main, entry["line"])
            continue
        previous = None
        if state:
            previous = {"outcome": state["outcome"], "run": state["run"], "sent": state["sent"]}
        blocked = None
        if main in skipped_mains:
            blocked = (f"an earlier request for main {main} (line {skipped_mains[main]}) was skipped; "
                       "the rest of that cluster is not merged")
        pending.append({**entry, "previous": previous, "blocked": blocked})
    return pending, done


def assign_shards(pending: list[dict], shards: int) -> None:
    """Set each entry's "shard": the requests of one main together (they run in order), the
    shards as even as possible (largest chains first, each to the least loaded shard), so
    no shard - and no worker holding it - is left sending alone at the end. Deterministic."""
    chains: dict[str, list[dict]] = {}
    for entry in pending:
        chains.setdefault(entry["request"]["MainProfileId"], []).append(entry)
    load = [0] * shards
    for chain in sorted(chains.values(), key=lambda c: (-len(c), c[0]["line"])):
        shard = min(range(shards), key=lambda k: (load[k], k))
        load[shard] += len(chain)
        for entry in chain:
            entry["shard"] = shard


# --------------------------------------------------------------------------- run

# How long a failed or interrupted run waits, once STOP.json is written, for workers in other
# processes to see it (they look once a second) before it reads the journal.
STOP_NOTICE_S = 2.5


def run_apply(options, job, plan_path: str) -> dict:
    """Apply ``plan_path`` to --domain_name; return the summary (also in summary.json)."""
    _check_options(job)
    refuse_incomplete_plan(plan_path)
    plan = load_plan(plan_path, job.domain_name)
    LOG.info("plan %s: %d requests, all valid for domain %s", plan_path, len(plan), job.domain_name)
    out = job.output
    journal_dir = io.output_path(out, "journal")
    run_id = new_run_id()
    config = SinkConfig(
        domain_name=job.domain_name,
        journal_dir=journal_dir,
        run_id=run_id,
        rate=job.max_merges_per_second,
        shards=job.merge_shards,
        concurrency=job.merge_concurrency,
        headroom=job.merge_rate_headroom,
        retry_deadline_s=job.merge_retry_deadline,
        error_rate_threshold=job.merge_error_rate_threshold,
        endpoint_url=job.endpoint_url,
        aws_region=job.aws_region,
        aws_profile=job.aws_profile,
        fix_engagement_preferences=job.fix_engagement_preferences,
        launcher_pid=os.getpid(),
    )
    with journal_lock(journal_dir):
        return _apply_locked(options, job, plan_path, plan, out, journal_dir, run_id, config)


def _apply_locked(options, job, plan_path: str, plan: list[dict], out: str, journal_dir: str, run_id: str,
                  config: SinkConfig) -> dict:
    """The rest of ``run_apply``, while this process holds the journal."""
    if not is_local(journal_dir):
        LOG.info("journal on %s: one object per record (an object store has no append)", journal_dir)

    states = final_states(_read_journal(journal_dir))
    pending, done = pending_requests(plan, states)
    LOG.info("journal: %d of %d requests done in earlier runs; %d to handle now", done, len(plan), len(pending))
    started = time.time()
    if pending:
        _preflight(config)
        assign_shards(pending, config.shards)
        pending_path = FileSystems.join(run_dir(journal_dir, run_id), "pending", "requests.jsonl")
        try:
            _write_lines(pending_path, (json.dumps(e, sort_keys=True) for e in pending))
        except OSError as error:   # read-only, full, not a directory: before anything is sent
            raise ValueError(f"--output {out}: the journal cannot be written there ({error})") from None
        standard = options.view_as(StandardOptions)
        if not standard.runner:
            standard.runner = "FnApiRunner"
        LOG.info("apply run %s: %d requests at %.4g merges/s over %d shards x %d in flight (runner %s)",
                 run_id, len(pending), config.rate, config.shards, config.concurrency, standard.runner)
        try:
            with _stop_on_signals(journal_dir, run_id), _workers_in_their_own_session(), \
                    beam.Pipeline(options=options) as p:
                (p
                 | "ReadPendingRequests" >> beam.io.ReadFromText(pending_path)
                 | "ParseRequests" >> beam.Map(json.loads)
                 | "ApplyMerges" >> ApplyMerges(config, max_merges=job.max_merges))
        except BaseException as error:
            # Workers in other processes may still be sending: STOP.json stops them (each looks once a
            # second). Whatever was applied is in the journal: say so in applied.jsonl, then fail.
            why = ("interrupted (Ctrl-C or SIGTERM)" if isinstance(error, KeyboardInterrupt)
                   else f"the apply pipeline failed ({type(error).__name__})")
            try:
                write_stop(journal_dir, run_id, f"{why}; run the same command again to go on")
                time.sleep(STOP_NOTICE_S)
            except Exception as stop_error:  # noqa: BLE001  (the original error is what matters)
                LOG.error("could not write the stop signal for the workers: %s", stop_error)
            LOG.error("%s; writing what the journal knows to applied.jsonl", why)
            try:
                _write_lines(io.output_path(out, "applied.jsonl"),
                             (io.dumps(_applied_line(e, s)) for e, s in _with_states(plan, journal_dir)))
            except (OSError, BeamIOError) as write_error:   # the original error is what matters
                LOG.error("could not write applied.jsonl (%s): a re-run with the same --output writes it", write_error)
            raise
        _log_metrics(getattr(p, "result", None))
    elapsed = time.time() - started

    records = _read_journal(journal_dir)
    states = final_states(records)
    applied_path = io.output_path(out, "applied.jsonl")
    follow_up = job.fix_engagement_preferences
    stop_reason = read_stop(journal_dir, run_id) if pending else None
    section = _apply_section(plan, plan_path, states, records, run_id if pending else None, config,
                             elapsed, stop_reason, applied_path, journal_dir)
    try:
        _write_lines(applied_path, (io.dumps(_applied_line(e, states.get(e["request_id"]), follow_up)) for e in plan))
        summary = _merge_summary(out, section)
    except (OSError, BeamIOError) as error:
        # a full or read-only disk: what was sent is in the journal (written before each send, or the send
        # did not happen); the reports are not, and a re-run with the same --output writes them
        _log_section(section, wrote=False)
        raise ApplyStopped(f"apply ended, but its reports could not be written to {out} ({error}); what was sent "
                           "is in the journal: free the space and run the same command again to write them "
                           "(done requests are not sent again)", {"apply": section}, "outputs") from None
    _log_section(section)

    this_run = section["this_run"]
    unfinished = this_run["outcomes"]["not_applied"] + this_run["outcomes"]["failed"]
    if stop_reason or unfinished:
        if stop_reason:
            reason, why = "circuit_breaker", f"circuit breaker: {stop_reason}"
        elif any(r.get("reason", "").startswith("--max_merges") for r in _run_outcomes(records, run_id)):
            reason, why = "max_merges", f"--max_merges {job.max_merges} reached"
        else:
            reason, why = "failed", "some requests failed"
        message = (f"apply stopped ({why}): {this_run['outcomes']['not_applied']} request(s) not applied and "
                   f"{this_run['outcomes']['failed']} failed in this run, see {applied_path}; "
                   f"re-run with the same --output to continue (done requests are not sent again)")
        raise ApplyStopped(message, summary, reason)
    return summary


LOCK_FILE = "LOCK"


@contextlib.contextmanager
def journal_lock(journal_dir: str):
    """Hold ``journal_dir`` for this run: a second apply run on the same --output at the same time
    would read the same journal, take the same requests for pending, and send them all again (the
    service refuses a merge of ids already gone, but the rate doubles and both runs' reports are
    wrong). A local journal gets a LOCK file made exclusively, naming this process; one whose
    process is gone (killed) is taken over with a warning. An object store (s3://) has no exclusive
    create: there, one run at a time is the scheduler's to keep."""
    if not is_local(journal_dir):
        yield
        return
    import psutil  # noqa: PLC0415

    path = os.path.join(journal_dir, LOCK_FILE)
    mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": utc_now_iso()})
    unwritable = f"--output {os.path.dirname(journal_dir)}: the journal cannot be written there"
    try:
        os.makedirs(journal_dir, exist_ok=True)
    except OSError as error:   # read-only, full, a file in the way: before anything is sent
        raise ValueError(f"{unwritable} ({error})") from None
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path, encoding="utf-8") as handle:
                    holder = json.loads(handle.read() or "{}")
            except (OSError, ValueError):
                holder = {}
            same_host = holder.get("host") == socket.gethostname()
            if not same_host or (holder.get("pid") and psutil.pid_exists(int(holder["pid"]))):
                raise ValueError(
                    f"--output {os.path.dirname(journal_dir)}: another apply run is using this journal "
                    f"(process {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
                    f"{holder.get('started', '?')}); wait for it to end, or remove {path} if it is gone") from None
            LOG.warning("journal lock %s was left by process %s, which is gone: taking it over", path, holder.get("pid"))
            os.unlink(path)
            continue
        except OSError as error:
            raise ValueError(f"{unwritable} ({error})") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(mine)
        break
    try:
        yield
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


@contextlib.contextmanager
def _stop_on_signals(journal_dir: str, run_id: str):
    """While the apply pipeline runs, SIGINT (Ctrl-C) or SIGTERM (a scheduler, ``kill``) stops the
    sending at once and the run ends as a circuit-breaker stop does: requests in flight end, every
    other one is recorded not_applied, the outputs are written, exit status 3. STOP.json reaches
    workers in other processes (each looks once a second); the runner, which waits for its workers,
    could not be interrupted sooner. A second signal interrupts the process at once (the journal
    still keeps a rerun safe)."""
    if threading.current_thread() is not threading.main_thread():   # signals reach the main thread only
        yield
        return
    received: list[int] = []

    def stop(signum, _frame):
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        name = signal.Signals(signum).name
        reason = f"stopped by {name}; run the same command again to go on"
        LOG.warning("%s: no more MergeProfiles are sent in this run; waiting for the requests in flight "
                    "(%s again stops at once)", name, name)
        if stop_sending(reason):   # this process's shards: their breaker writes STOP.json
            return
        try:
            write_stop(journal_dir, run_id, reason)
        except Exception as error:  # noqa: BLE001  (nothing here was sending)
            LOG.error("could not write the stop signal for the worker processes: %s", error)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _workers_in_their_own_session():
    """While the apply pipeline runs, the DirectRunner's worker processes (multi_processing mode) start
    in a session of their own, so a Ctrl-C at the terminal, which reaches every process of the
    foreground group, reaches only this one: its handler (``_stop_on_signals``) stops the sending
    through STOP.json, and the workers finish what is in flight and end their bundles. Killed by the
    same Ctrl-C, they left the runner waiting for them for ever. A worker still stops when this
    process is killed outright: the sink watches the process that started it.

    Beam starts them with ``subprocess.Popen(command, shell=True)`` in ``local_job_service``; that
    module's ``subprocess`` is swapped for one whose ``Popen`` adds ``start_new_session=True`` (the
    same call otherwise). Other runners start no such processes, and nothing changes for them."""
    from apache_beam.runners.portability import local_job_service

    original = getattr(local_job_service, "subprocess", None)
    if original is None or not hasattr(original, "Popen"):
        yield
        return

    class _OwnSession:
        def __getattr__(self, name):
            return getattr(original, name)

        @staticmethod
        def Popen(*args, **kwargs):  # noqa: N802  (subprocess's name)
            kwargs.setdefault("start_new_session", True)
            return original.Popen(*args, **kwargs)

    local_job_service.subprocess = _OwnSession()
    try:
        yield
    finally:
        local_job_service.subprocess = original


def _check_options(job) -> None:
    if not job.output:
        raise ValueError("--output is required")
    if not 0 <= job.merge_rate_headroom < 0.5:
        raise ValueError("--merge_rate_headroom must be in [0, 0.5)")
    if job.merge_retry_deadline <= 0:
        raise ValueError("--merge_retry_deadline must be positive")
    if not 0 < job.merge_error_rate_threshold <= 1:
        raise ValueError("--merge_error_rate_threshold must be in (0, 1]")


def _preflight(config: SinkConfig) -> None:
    """Fail early, before the pipeline, on what would stop every request; sends no merge."""
    from botocore import exceptions as bx

    try:
        session = make_session(config)
        client = make_client(config, session)
        credentials = session.get_credentials()
    except bx.NoRegionError:
        raise ValueError("no AWS Region: pass --aws_region or set AWS_REGION / AWS_DEFAULT_REGION") from None
    except bx.ProfileNotFound as error:
        raise ValueError(f"--aws_profile: {error}") from None
    except (bx.CredentialRetrievalError, bx.PartialCredentialsError, bx.NoCredentialsError,
            bx.InvalidConfigError, bx.TokenRetrievalError, bx.SSOError) as error:
        # a credential_process that fails, a key id without its secret, an expired SSO session...
        raise ValueError(f"AWS credentials could not be loaded from boto3's standard chain: {scrub(str(error))}") \
            from None
    if credentials is None:
        raise ValueError("no AWS credentials in boto3's standard chain (environment, shared files, SSO, "
                         "instance or container role); see --aws_profile")
    try:
        client.get_domain(DomainName=config.domain_name)
    except bx.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise ValueError(f"Customer Profiles domain {config.domain_name!r} does not exist "
                             f"(endpoint {config.endpoint_url or 'AWS'})") from None
        LOG.warning("GetDomain %s answered %s; going on (MergeProfiles needs its own permissions)",
                    config.domain_name, code)
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError) as error:
        raise ValueError(f"cannot reach Customer Profiles: {scrub(str(error))}") from None
    except (bx.ReadTimeoutError, bx.ConnectionClosedError) as error:
        raise ValueError(f"Customer Profiles did not answer GetDomain: {scrub(str(error))}") from None
    except (bx.CredentialRetrievalError, bx.PartialCredentialsError, bx.NoCredentialsError,
            bx.TokenRetrievalError, bx.SSOError) as error:   # credentials are resolved on the first call
        raise ValueError(f"AWS credentials could not be loaded from boto3's standard chain: {scrub(str(error))}") \
            from None


def _with_states(plan: list[dict], journal_dir: str):
    states = final_states(_read_journal(journal_dir))
    return [(entry, states.get(entry["request_id"])) for entry in plan]


def _log_metrics(result) -> None:
    if result is None:
        return
    try:
        counters = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]
    except Exception:  # noqa: BLE001 - some runners do not report metrics
        return
    values = {c.key.metric.name: c.committed or c.attempted or 0 for c in counters}
    LOG.info("metrics %s: %s", METRICS_NAMESPACE, ", ".join(f"{k}={v}" for k, v in sorted(values.items())))


def _read_journal(journal_dir: str) -> list[dict]:
    try:
        return read_journal(journal_dir)
    except BeamIOError:
        return []


def _write_lines(path: str, lines) -> None:
    if is_local(path):
        import os

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with FileSystems.create(path, mime_type="application/x-ndjson") as handle:
        for line in lines:
            handle.write(line.encode("utf-8") + b"\n")


# A merge that no UpdateProfile followed in any run, with --fix_engagement_preferences on: the run
# stopped between the two, or the merge was done before this run. The union needs the profiles as
# they were before the merge, so it cannot be made afterwards; a person must check the main.
MERGED_OUTCOMES = ("merged", "already_applied")
EP_NOT_SENT = ("not sent: no UpdateProfile followed this merge (a run stopped between the two, or it was merged "
               "before); check the main profile's EngagementPreferences")


def _applied_line(entry: dict, state: dict | None, follow_up: bool = False) -> dict:
    record = (state or {}).get("record") or {}
    outcome = (state or {}).get("outcome")
    line = {
        "line": entry["line"],
        "request_id": entry["request_id"],
        "request": entry["request"],
        "outcome": outcome or "not_applied",
        "reason": record.get("reason", "") if outcome else (
            "no outcome recorded" + (" (it was sent: a re-run checks its state first)" if (state or {}).get("sent") else "")),
        "attempts": (state or {}).get("attempts", 0),
        "error_code": record.get("error_code", ""),
        "error_message": record.get("error_message", ""),
        "time": record.get("time", ""),
        "run": (state or {}).get("run"),
        "sent_at": record.get("sent_at", []),
    }
    if (state or {}).get("engagement_preferences"):
        line["engagement_preferences"] = state["engagement_preferences"]
    elif follow_up and outcome in MERGED_OUTCOMES:
        line["engagement_preferences"] = EP_NOT_SENT
    return line


def _run_outcomes(records: list[dict], run_id: str | None) -> list[dict]:
    return [r for r in records if r.get("event") == "outcome" and run_id and r.get("run") == run_id]


def _apply_section(plan, plan_path, states, records, run_id, config, elapsed, stop_reason, applied_path,
                   journal_dir) -> dict:
    final = collections.Counter(((states.get(e["request_id"]) or {}).get("outcome") or "not_applied") for e in plan)
    merged_away = sum(len(e["request"]["ProfileIdsToBeMerged"]) for e in plan
                      if (states.get(e["request_id"]) or {}).get("outcome") in ("merged", "already_applied"))
    outcomes = _run_outcomes(records, run_id)
    run_counts = collections.Counter(r["outcome"] for r in outcomes)
    stats = collections.Counter()
    for record in records:
        if record.get("event") == "shard_done" and record.get("run") == run_id:
            stats.update(record.get("stats") or {})
    success_times = sorted(r["sent_at"][-1] for r in outcomes if r["outcome"] == "merged" and r.get("sent_at"))
    achieved = None
    if len(success_times) >= 2 and success_times[-1] > success_times[0]:
        achieved = round((len(success_times) - 1) / (success_times[-1] - success_times[0]), 2)
    handled = len(outcomes)
    ep = collections.Counter(s["engagement_preferences"].split(":")[0] for s in states.values()
                             if s.get("engagement_preferences") and s.get("run") == run_id)
    if config.fix_engagement_preferences:
        missing = sum(1 for e in plan if (states.get(e["request_id"]) or {}).get("outcome") in MERGED_OUTCOMES
                      and not states[e["request_id"]].get("engagement_preferences"))
        if missing:
            ep["not sent"] = missing
            LOG.warning("%d merged request(s) had no EngagementPreferences follow-up (see applied.jsonl)", missing)
    if ep.get("failed"):
        LOG.warning("%d EngagementPreferences update(s) failed in this run: those merges stand, their preferences "
                    "were not unioned on the main (applied.jsonl says which and why)", ep["failed"])
    ep_failed = sum(1 for s in states.values() if str(s.get("engagement_preferences") or "").startswith("failed"))
    runs = sorted({r.get("run") for r in records if r.get("run")})
    return {
        "plan": plan_path,
        "domain_name": config.domain_name,
        "requests": len(plan),
        **{name: final.get(name, 0) for name in OUTCOMES},
        "profiles_merged_away": merged_away,
        "engagement_preferences_failed": ep_failed,   # in any run, with --fix_engagement_preferences
        "runs": len(runs),
        "this_run": {
            "run_id": run_id,
            "handled": handled,
            "outcomes": {name: run_counts.get(name, 0) for name in OUTCOMES},
            "merge_requests_sent": stats.get("sent", 0),
            "retries": stats.get("retried", 0),
            "throttled": stats.get("throttled", 0),
            "batch_get_profile_calls": stats.get("batch_get_calls", 0),
            "batch_get_profile_calls_per_request": round(stats.get("batch_get_calls", 0) / handled, 3) if handled else 0,
            "engagement_preferences": dict(ep),
            "configured_merges_per_second": config.rate,
            "achieved_merges_per_second": achieved,
            "elapsed_seconds": round(elapsed, 2),
            "stopped": stop_reason,
        },
        "applied": applied_path,
        "journal": journal_dir,
    }


def _merge_summary(out: str, section: dict) -> dict:
    path = io.output_path(out, "summary.json")
    summary = {}
    if FileSystems.exists(path):
        try:
            summary = io.read_json(path)
        except ValueError:
            LOG.warning("%s is not JSON; writing a new one", path)
    summary["apply"] = section
    text = json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False)
    _write_lines(path, [text])
    return summary


def _log_section(section: dict, wrote: bool = True) -> None:
    run = section["this_run"]
    o = section
    LOG.info("apply: %d requests in the plan: %d merged, %d already applied, %d skipped, %d failed, %d not applied",
             section["requests"], o["merged"], o["already_applied"], o["skipped"], o["failed"], o["not_applied"])
    if run["run_id"]:
        LOG.info("this run (%s): %d handled, %d MergeProfiles sent, %d retries, %d throttled, %d BatchGetProfile "
                 "calls (%.2f per request); %s merges/s achieved of %.4g configured; %.1f s",
                 run["run_id"], run["handled"], run["merge_requests_sent"], run["retries"], run["throttled"],
                 run["batch_get_profile_calls"], run["batch_get_profile_calls_per_request"],
                 run["achieved_merges_per_second"], run["configured_merges_per_second"], run["elapsed_seconds"])
    if wrote:
        print(f"wrote {section['applied']}")
