"""Entry point: build and run the profile-dedup pipeline.

    profile-dedup --input 'exports/*.jsonl' --output out/        # dry run (default)
    python -m pipeline --input ... --output ...                  # the same

The graph reads as the job does::

    ReadProfiles -> NormalizeProfiles -> BlockPairs -> ComparePairs -> EstimateModel
      -> ScorePairs -> ConnectedComponents -> ResolveClusters -> write the plan and summary
"""
from __future__ import annotations

import functools
import gc
import json
from collections import Counter
import logging
import re
import signal
import sys
import threading

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineState

from pipeline import io
from pipeline.memory import return_freed_memory
from pipeline.options import ProfileDedupOptions
from transforms import progress
from transforms.block import BlockPairs, BlockSizes, with_block_keys
from transforms.buckets import CoGroupInBuckets, GroupInBuckets, in_global_window
from transforms.choose import Policy
from transforms.cluster import ConnectedComponents, ResolveClusters, StarComponents
from transforms.compare import ComparePairs, MatchEdges, ReviewPairs, ScorePairs
from transforms.estimate import EstimateModel, comparison_fields, pattern_counts
from transforms.model import check_rule_features, default_model, term_frequency_fields, validate_model
from transforms.normalize import AttachTermFrequencies, NormalizeProfiles
from transforms.packing import Batch, count_records, keeping_shape, pack, pack_compressed, records, unpack
from transforms.read import ReadProfiles

LOG = logging.getLogger("profile_dedup")

# Where each profile ended up; a profile in several places counts once, by this order.
_STATUS_ORDER = {"planned": 2, "review": 1}


def _count(pcoll, label):
    return pcoll | label >> beam.combiners.Count.Globally()


def _count_records(pcoll, label):
    """How many records a PCollection of records or batches of them holds."""
    return pcoll | f"{label}InBatch" >> beam.Map(count_records) | label >> beam.CombineGlobally(sum)


def _profile_statuses(clusters, review_pairs):
    """(profile id, 'planned' | 'review') for every profile that is not a plain singleton."""
    from_clusters = clusters | "ClusterStatuses" >> beam.FlatMap(
        lambda r: [(m, "planned") for m in r["members"]] if r["kind"] == "merge"
        else [(m, "review") for m in r["members"]] if r["kind"] == "held"
        else [(r["profile"], "review")])
    from_pairs = review_pairs | "ReviewPairStatuses" >> beam.FlatMap(lambda r: [(r["a"], "review"), (r["b"], "review")])
    return (
        (from_clusters, from_pairs)
        | "AllStatuses" >> beam.Flatten()
        | "OneStatusPerProfile" >> beam.CombinePerKey(lambda statuses: max(statuses, key=lambda s: _STATUS_ORDER[s]))
        | "StatusOnly" >> beam.Values()
        | "CountStatuses" >> beam.combiners.Count.PerElement()
    )


# Match weights of all scored pairs are counted in bins this wide (log2 odds).
HISTOGRAM_BIN = 2.0
HISTOGRAM_RANGE = (-40.0, 60.0)


def weight_bin(weight: float) -> float:
    low, high = HISTOGRAM_RANGE
    return min(max(HISTOGRAM_BIN * (weight // HISTOGRAM_BIN), low), high - HISTOGRAM_BIN)


def _kinds_of_cluster(record: dict) -> list[str]:
    """A cluster record's kind, and "vouched" once per member a guard kept from the main
    that another member vouched for (``transforms.cluster``)."""
    return [record["kind"]] + ["vouched"] * len(record.get("vouched") or ())


def build_summary(_, counts, rules, capped, statuses, clusters_by_kind, model, histogram, thresholds, input_warnings=()):
    """Assemble summary.json from the counts (all small side inputs)."""
    statuses = dict(statuses)
    kinds = dict(clusters_by_kind)
    valid = counts["valid"]
    planned = statuses.get("planned", 0)
    review = statuses.get("review", 0)
    capped = sorted(capped, key=lambda c: (-c["size"], c["rule"], c["key"]))  # ties in a fixed order
    summary = {
        "records_read": counts["valid"] + counts["rejected"],
        "records_rejected": counts["rejected"],
        "profiles_valid": valid,
        "profiles_in_merges": planned,
        "profiles_merged_away": planned - kinds.get("merge", 0),
        "profiles_under_review": review,
        "profiles_left_alone": valid - planned - review,
        "merge_requests": counts["requests"],
        "clusters": kinds.get("merge", 0),
        "clusters_held": kinds.get("held", 0),
        "profiles_split_off": kinds.get("split", 0),
        "profiles_vouched_for_by_a_member": kinds.get("vouched", 0),
        "candidate_pairs": counts["pairs"],
        "candidate_pairs_per_rule": dict(sorted(rules)),
        "capped_blocks": len(capped),
        "capped_blocks_largest": capped[:50],
        "pairs_scored": counts["pairs"],
        "pairs_matched": counts["matched"],
        "pairs_for_review": counts["review_pairs"],
        "model_prior": model.get("prior"),
        "thresholds": thresholds,
        "score_histogram": _histogram(histogram),
    }
    summary["input_warnings"] = list(input_warnings)
    summary["model_warnings"] = model_warnings(model)
    problems = handover_problems(counts)
    summary["handover_problems"] = problems
    summary["counts_add_up"] = (
        summary["records_read"] == summary["records_rejected"] + valid
        and valid == summary["profiles_in_merges"] + summary["profiles_under_review"] + summary["profiles_left_alone"]
        and not problems
    )
    return summary


# Fewer profiles than this in the estimate and the model's u (from random pairs of them) and m (from
# their few candidate pairs) say little: the job still runs, and says so.
FEW_PROFILES_TO_ESTIMATE = 500


def model_warnings(model: dict) -> list[str]:
    """What a person should know before trusting the model (estimated on this run's data, or given
    with --model: its ``estimation`` says what it was estimated on)."""
    estimation = model.get("estimation") or {}
    if "profiles" not in estimation:
        return []
    n = int(estimation["profiles"])
    if n >= FEW_PROFILES_TO_ESTIMATE:
        return []
    return [f"the model was estimated from only {n} profiles (fewer than {FEW_PROFILES_TO_ESTIMATE}): how often "
            "strangers agree is guessed from pairs of so few that scores may be far off, and true duplicates "
            "may score too low to merge or to review; estimate a model on a larger export and pass it "
            "with --model"]


# Counts taken on both sides of a hand-over between steps (a shuffle, or a stage boundary where a
# runner stores and re-reads a collection): (what, counts summed before, counts summed after, what
# a difference means).
_HANDOVERS = (
    ("records that parsed", ("parsed",), ("valid", "duplicates"),
     "records were lost in the shuffle by ProfileId (after it: valid profiles + repeated ids)"),
    ("profiles that reached matching", ("valid",), ("features",),
     "valid profiles were lost before matching"),
    ("blocking entries", ("block_entries_sent",), ("block_entries_grouped",),
     "(blocking key, profile) entries were lost in the blocking shuffle"),
    ("members of linked groups", ("component_members",), ("members_resolved",),
     "profiles were lost between clustering and resolving their groups"),
)


def handover_problems(counts: dict) -> list[str]:
    """Where a count taken before a hand-over between steps differs from the count after it.

    Every record the job reads is accounted for, so a difference means the runner lost (or
    repeated) data between steps: the plan would silently leave out merges. A hand-over whose
    counts are not all in ``counts`` is not checked."""
    problems = []
    for name, before_keys, after_keys, meaning in _HANDOVERS:
        if all(key in counts for key in before_keys + after_keys):
            before, after = (sum(counts[key] for key in keys) for keys in (before_keys, after_keys))
            if before != after:
                problems.append(f"{name}: {before} before, {after} after; {meaning}")
    return problems


def _pair_stats(batch: dict):
    """A compared batch -> ``(what, key, count)``: its pairs (``"pairs"``), its pairs per
    comparison pattern and blocking rule (``"pattern"``, for estimation) and per rule (``"rule"``)."""
    yield "pairs", None, len(batch["a"])
    for key, n in pattern_counts(batch).items():
        yield "pattern", key, n
    for rule, n in Counter(rule for rules in batch["rules"] for rule in rules).items():
        yield "rule", rule, n


_STATS = "stats"


class _PackWithStatsFn(beam.DoFn):
    """A compared batch -> the batch packed to wait for the model; and, tagged ``_STATS``, the
    ``_pair_stats`` of the bundle's batches, summed over the bundle (counted while each batch is at
    hand rather than unpacked again for them, and sent once a bundle: a batch of 2,000 pairs
    holds a few hundred patterns, mostly the same ones as the next batch)."""

    def start_bundle(self):
        self._stats: Counter = Counter()

    def process(self, batch: dict):
        yield pack_compressed(batch)
        for what, key, n in _pair_stats(batch):
            self._stats[(what, key)] += n

    def finish_bundle(self):
        for (what, key), n in self._stats.items():
            yield beam.pvalue.TaggedOutput(_STATS, in_global_window((what, key, n)))
        self._stats = Counter()


class _CompareAndPack(beam.PTransform):
    """Candidate pair batches -> ``{"pairs": packed compared batches, "stats": their _pair_stats}``."""

    def __init__(self, model: dict):
        super().__init__()
        self._model = model

    def expand(self, pairs):
        packed = (pairs | "ComparePairs" >> ComparePairs(self._model)
                  | "PackCompared" >> beam.ParDo(_PackWithStatsFn()).with_outputs(_STATS, main="pairs"))
        return {"pairs": packed.pairs, _STATS: packed[_STATS]}


def _pair_key(a: str, b: str) -> str:
    """A review pair's key in the join that hands it its profiles (ProfileIds hold no space)."""
    return f"{a} {b}"


def _with_profiles(element):
    """A review pair with its two profiles (a first), in the order of its ids."""
    key, grouped = element
    a, b = key.split(" ")
    by_id = {p["ProfileId"]: p for p in map(unpack, grouped["profile"])}
    for pair in grouped["pair"]:
        yield dict(pair, profiles=[by_id[i] for i in (a, b) if i in by_id])


def _component_member(joined) -> list:
    """A profile's joined record -> ``[(component, (profile, features))]``, or ``[]`` outside components."""
    _, tagged = joined
    return [(tagged["component"][0], (tagged["profile"][0], tagged["features"][0]))] if tagged["component"] else []


def _histogram(counted) -> dict:
    """Bucketed counts of pair match weights: bin edges and counts (unit: match weight)."""
    low, high = HISTOGRAM_RANGE
    edges = [low + HISTOGRAM_BIN * i for i in range(int((high - low) / HISTOGRAM_BIN) + 1)]
    by_bin = dict(counted)
    return {"unit": "weight", "bins": edges, "counts": [by_bin.get(edge, 0) for edge in edges[:-1]]}


def build_pipeline(p: beam.Pipeline, options: ProfileDedupOptions, base_model: dict, fixed_model: dict | None,
                   input_warnings: list[str] = ()) -> None:
    """Add the whole dry-run graph to ``p`` (``input_warnings``: what reading the inputs will leave out, for
    summary.json)."""
    out = options.output
    policy = Policy(options.main_policy, options.recency_attribute, options.source_attribute,
                    options.source_priority_list(), options.default_region)

    # Profiles travel in batches (one list per shuffle bucket) through every per-profile step: the
    # runner's work per element would cost more than normalising a profile.
    read = p | "ReadProfiles" >> ReadProfiles(options.input_patterns(), batches=True)
    profiles, rejected = read["profiles"], read["rejected"]
    normalized = profiles | "NormalizeProfiles" >> NormalizeProfiles(options.default_region, options.identifier_list())
    # made once here for counting block sizes and for blocking
    normalized = normalized | "BlockingKeys" >> keeping_shape(
        normalized, beam.Map(functools.partial(with_block_keys, base_model["blocking_rules"])))
    # block sizes are counted from the keys as profiles leave normalising, before term frequencies
    sizes = normalized | "BlockSizes" >> BlockSizes(base_model["blocking_rules"], options.max_block_size)
    features = normalized | "TermFrequencies" >> AttachTermFrequencies(term_frequency_fields(base_model))

    keep = frozenset({"id", "type", "identifiers", "tf"}).union(
        *(comparison_fields(c, raw=True) for c in base_model["comparisons"]))
    # Every compared pair waits in the runner for the model (estimated from all of them): packed and
    # compressed, a pair takes about 30 bytes instead of 150 while it waits. Pairs are compared and
    # packed in the step that makes them (BlockPairs' ``then``), before they are gathered; their counts
    # (pairs per pattern and rule) are taken there too, so the packed pairs are read once, by scoring.
    blocked = features | "BlockPairs" >> BlockPairs(
        base_model["blocking_rules"], options.max_block_size, keep, sizes=sizes,
        then=lambda: _CompareAndPack(base_model))
    waiting, stats = blocked["pairs"], blocked[_STATS]
    if fixed_model is not None:
        model = p | "GivenModel" >> beam.Create([fixed_model])
    else:
        patterns = stats | "RuleAndPattern" >> beam.FlatMap(lambda s: [(s[1], s[2])] if s[0] == "pattern" else [])
        model = (features, patterns) | "EstimateModel" >> EstimateModel(base_model, options.u_sample_size)
    model_view = beam.pvalue.AsSingleton(model)

    scored = waiting | "ScorePairs" >> ScorePairs(model_view)
    threshold, review_threshold = options.match_threshold, options.review_threshold

    edges = scored | "MatchEdges" >> MatchEdges(threshold)
    review_pairs = scored | "ReviewPairs" >> ReviewPairs(model_view, threshold, review_threshold)

    assignment = edges | "ConnectedComponents" >> (
        StarComponents(options.component_rounds) if options.components == "star" else ConnectedComponents())
    review_ends = review_pairs | "ReviewPairEnds" >> beam.FlatMap(
        lambda r: [(r["a"], (r["a"], r["b"])), (r["b"], (r["a"], r["b"]))])
    resolve_keep = keep | {"invalid"}   # choosing fields reads which values normalising could not
    joined = (
        # Packed once here and unpacked only where used: most profiles are in no component.
        {"profile": profiles | "KeyProfiles" >> beam.Map(
            lambda batch: Batch((pr["ProfileId"], pack(pr)) for pr in records(batch))).with_output_types(Batch),
         "features": features | "KeyFeatures" >> beam.Map(
             lambda batch: Batch((f["id"], pack({k: v for k, v in f.items() if k in resolve_keep}))
                                 for f in records(batch))).with_output_types(Batch),
         "component": assignment,
         "review": review_ends}
        | "JoinComponents" >> CoGroupInBuckets()
    )
    members = (
        joined
        # members travel to their component packed in buckets, as the join's inputs did
        | "GroupComponents" >> GroupInBuckets(_component_member)
    )
    # The same join hands each review pair its two profiles, so a person sees them side by side.
    review_pairs_with_profiles = (
        {"pair": review_pairs | "KeyReviewPairs" >> beam.Map(lambda r: (_pair_key(r["a"], r["b"]), r)),
         "profile": joined | "ProfilesOfReviewPairs" >> beam.FlatMap(
             lambda kv: [(_pair_key(*pair), kv[1]["profile"][0]) for pair in kv[1]["review"]] if kv[1]["profile"] else [])}
        | "JoinReviewProfiles" >> CoGroupInBuckets()
        | "AttachReviewProfiles" >> beam.FlatMap(_with_profiles)
    )
    resolved = members | "ResolveClusters" >> ResolveClusters(
        model_view, policy, threshold, options.cluster_member_threshold, options.max_cluster_size, options.domain_name)
    clusters, plan = resolved.clusters, resolved.plan
    review = (resolved.review, review_pairs_with_profiles) | "AllReview" >> beam.Flatten()

    plan | "WriteMergePlan" >> io.WriteJsonLines(io.output_path(out, "merge_plan.jsonl"))
    clusters | "WriteClusters" >> io.WriteJsonLines(io.output_path(out, "clusters.jsonl"))
    review | "WriteReview" >> io.WriteJsonLines(io.output_path(out, "review.jsonl"))
    rejected | "WriteRejected" >> io.WriteJsonLines(io.output_path(out, "rejected.jsonl"))
    model | "WriteModel" >> io.WriteJson(io.output_path(out, "model.json"))

    counts = {
        "valid": _count_records(profiles, "CountValid"),
        # What each hand-over between steps carried, counted on both sides (see handover_problems).
        "parsed": _count(read["parsed"], "CountParsed"),
        "duplicates": _count(read["duplicates"], "CountDuplicates"),
        "features": _count_records(features, "CountFeatures"),
        "block_entries_sent": blocked["entries_sent"],
        "block_entries_grouped": blocked["entries_grouped"],
        "component_members": _count(assignment, "CountComponentMembers"),
        "members_resolved": members | "MembersInComponent" >> beam.Map(lambda kv: len(kv[1]))
                                    | "CountMembersResolved" >> beam.CombineGlobally(sum),
        "rejected": _count(rejected, "CountRejected"),
        "pairs": stats | "PairsInBatch" >> beam.FlatMap(lambda s: [s[2]] if s[0] == "pairs" else [])
                       | "CountPairs" >> beam.CombineGlobally(sum),
        "matched": _count(edges, "CountMatched"),
        "review_pairs": _count(review_pairs, "CountReviewPairs"),
        "requests": _count(plan, "CountRequests"),
    }
    counts_dict = (
        [c | f"Tag{name}" >> beam.Map(lambda v, n=name: (n, v)) for name, c in counts.items()]
        | "AllCounts" >> beam.Flatten()
        | "CountsDict" >> beam.combiners.ToDict()
    )
    rules = (
        stats
        | "RulesOfBatch" >> beam.FlatMap(lambda s: [(s[1], s[2])] if s[0] == "rule" else [])
        | "PairsPerRule" >> beam.CombinePerKey(sum)
    )
    kinds = (clusters | "KindOfCluster" >> beam.FlatMap(_kinds_of_cluster)
             | "ClustersPerKind" >> beam.combiners.Count.PerElement())
    statuses = _profile_statuses(clusters, review_pairs)
    histogram = (
        scored
        | "WeightBins" >> beam.FlatMap(lambda batch: Counter(map(weight_bin, batch["weights"].tolist())).items())
        | "PairsPerBin" >> beam.CombinePerKey(sum)
    )
    thresholds = {"match": threshold, "review": review_threshold,
                  "cluster_member": options.cluster_member_threshold}
    summary = (
        p
        | "SummaryOnce" >> beam.Create([None])
        | "BuildSummary" >> beam.Map(
            build_summary,
            counts=beam.pvalue.AsSingleton(counts_dict),
            rules=beam.pvalue.AsList(rules),
            capped=beam.pvalue.AsList(blocked["capped"]),
            statuses=beam.pvalue.AsList(statuses),
            clusters_by_kind=beam.pvalue.AsList(kinds),
            model=model_view,
            histogram=beam.pvalue.AsList(histogram),
            thresholds=thresholds,
            input_warnings=list(input_warnings))
    )
    summary | "WriteSummary" >> io.WriteJson(io.output_path(out, "summary.json"))


def _load_model(path: str) -> tuple[dict, bool]:
    """A model file: (model, fitted). A fitted model (with a prior) is used as it is;
    one without parameters is a specification (comparisons, blocking rules, guards)
    whose m and u are estimated from this data."""
    try:
        model = io.read_json(path)
    except OSError as error:   # missing, a directory, not readable
        raise ValueError(f"--model {path}: cannot be read ({error})") from error
    except ValueError as error:   # not UTF-8, not JSON
        raise ValueError(f"--model {path}: not valid JSON ({error})") from error
    fitted = isinstance(model, dict) and model.get("prior") is not None
    try:
        validate_model(model, fitted=fitted)
        check_rule_features(model)
    except ValueError as error:
        raise ValueError(f"--model {path}: {error}") from error
    except (KeyError, TypeError, AttributeError, IndexError) as error:
        # a part of the model of the wrong shape, e.g. a list where an object belongs
        raise ValueError(f"--model {path}: not a model this job can use ({type(error).__name__}: {error}); "
                         "start from an earlier run's model.json") from error
    return model, fitted


def flush_runner_data_by_size() -> None:
    """Make the FnApiRunner send data to its worker processes in buffers flushed by size only.

    Beam 2.77's FnApiRunner talks to workers over gRPC (the DirectRunner's multi_processing and
    multi_threading modes, and the job service that PortableRunner jobs run on) through
    ``TimeBasedBufferingClosableOutputStream`` (``worker_handlers.DATA_BUFFER_TIME_LIMIT_MS``, 1000 ms):
    a timer thread flushes the buffer every second by copying it, handing the copy on, then clearing
    it, while the runner's own thread goes on writing into it with no lock. A write that lands
    between the copy and the clearing is lost. A bundle's input is written whole (hundreds of MB at a
    million profiles), so on a busy machine the timer fires mid-write, and whole batches of profiles
    never reach the worker. At 0 the runner's data channels buffer by size and flush only from the
    thread that writes; a batch job loses nothing by not flushing on a timer. Runners in other
    processes (a job service, Flink, Spark, Dataflow) are not touched by this."""
    from apache_beam.runners.portability.fn_api_runner import worker_handlers  # noqa: PLC0415

    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = 0


def run(argv: list[str] | None = None) -> dict:
    """Run the job; return the summary (also written to OUTPUT/summary.json)."""
    options = PipelineOptions(argv)
    job = options.view_as(ProfileDedupOptions)
    job.check()
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        # The DirectRunner first tries to download the Prism runner; its in-process
        # engine (FnApiRunner) is what it falls back to, and what we use by default.
        standard.runner = "FnApiRunner"
    flush_runner_data_by_size()
    # This process lists the inputs, checks the output and reads and writes the summary and report
    # through Beam's filesystems: an s3:// path needs the job's S3 options (--s3_endpoint_url,
    # --s3_region_name) here too, not only in the pipeline's workers.
    FileSystems.set_options(options)
    if job.from_plan:
        summary = {}
        plan_path = job.from_plan
    else:
        summary = run_dry_run(options, job, standard.runner)
        plan_path = io.output_path(job.output, "merge_plan.jsonl")
    if not summary and not job.from_plan:
        return summary
    from pipeline.report import write_report  # noqa: PLC0415

    if job.apply:
        from pipeline.apply import ApplyStopped, run_apply  # noqa: PLC0415 (only apply runs need boto3)

        try:
            summary = run_apply(options, job, plan_path)
        except ApplyStopped:
            try:
                print(f"wrote {write_report(job.output, redact=job.redact)}")
            except OSError as error:   # a full disk: the stop's own message says what to do
                LOG.error("the report could not be written: %s", error)
            raise
    report_path = write_report(job.output, redact=job.redact)
    print(f"wrote {report_path}")
    return summary


def run_dry_run(options: PipelineOptions, job: ProfileDedupOptions, runner: str) -> dict:
    """Compute the merge plan and its evidence; send nothing. Returns the summary."""
    fixed_model = None
    base_model = default_model()
    input_warnings: list[str] = []
    job.input = ",".join(io.resolve_inputs(job.input_patterns(), input_warnings))
    io.check_output(job.output)
    if job.model:
        loaded, fitted = _load_model(job.model)
        base_model = loaded
        fixed_model = loaded if fitted else None
    LOG.info("profile-dedup: reading %s, writing to %s (runner %s)", job.input, job.output, runner)
    with beam.Pipeline(options=options) as p:
        build_pipeline(p, job, base_model, fixed_model, input_warnings)
    result = p.result if hasattr(p, "result") else None
    state = getattr(result, "state", PipelineState.DONE)
    if state != PipelineState.DONE:
        # A template launch or a detached submission returns before the job has run.
        LOG.info("job state %s: the summary and report are written when it is done "
                 "(then: python -m pipeline.report %s)", state, job.output)
        return {}
    counters = _log_metrics(result)
    summary = io.read_json(io.output_path(job.output, "summary.json"))
    if counters:
        with FileSystems.create(io.output_path(job.output, "metrics.json")) as handle:
            handle.write(json.dumps(counters, indent=2, sort_keys=True).encode())
    _log_summary(summary, job.output)
    if summary.get("handover_problems"):
        raise DataLossError(
            "the runner lost data between steps, so this plan is incomplete: "
            + "; ".join(summary["handover_problems"])
            + f". Nothing was applied. Run the job again (see {io.output_path(job.output, 'summary.json')}).")
    return summary


class DataLossError(RuntimeError):
    """A count taken before a hand-over between steps differs from the count after it."""


def _log_metrics(result) -> dict:
    """Log every counter by stage; return them as {"stage.name": value} (for metrics.json)."""
    if result is None:
        return {}
    try:
        counters = result.metrics().query()["counters"]
    except Exception:  # noqa: BLE001  (some runners do not report metrics)
        return {}
    totals: dict = {}
    for counter in counters:
        name = f"{counter.key.metric.namespace}.{counter.key.metric.name}"
        totals[name] = totals.get(name, 0) + (counter.committed or counter.attempted or 0)
    for name, value in sorted(totals.items()):
        LOG.info("stage %-36s %d", name, value)
    return totals


def _log_summary(summary: dict, out: str) -> None:
    LOG.info("read %d records: %d rejected, %d valid profiles", summary["records_read"], summary["records_rejected"], summary["profiles_valid"])
    for warning in summary.get("input_warnings", []) + summary.get("model_warnings", []):
        LOG.warning("%s", warning)
    LOG.info("blocking made %d candidate pairs; %d blocks capped", summary["candidate_pairs"], summary["capped_blocks"])
    LOG.info("%d pairs matched, %d for review", summary["pairs_matched"], summary["pairs_for_review"])
    LOG.info("%d clusters to merge (%d profiles, %d merged away) in %d requests; %d clusters held, %d profiles under review",
             summary["clusters"], summary["profiles_in_merges"], summary["profiles_merged_away"], summary["merge_requests"],
             summary["clusters_held"], summary["profiles_under_review"])
    for name in ("merge_plan.jsonl", "clusters.jsonl", "review.jsonl", "rejected.jsonl", "model.json", "summary.json"):
        print(f"wrote {io.output_path(out, name)}")


def _print_help() -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="profile-dedup",
        description="Find duplicate Amazon Connect Customer Profiles and plan (or apply) MergeProfiles calls. "
                    "Any Apache Beam option (--runner, --direct_num_workers, ...) is accepted too.")
    ProfileDedupOptions._add_argparse_args(parser)
    parser.print_help()


# What a worker's data plane logs, at INFO, when it drops data for a bundle it has already closed
# (Beam 2.77's apache_beam/runners/worker/data_plane.py); its failures are logged as errors.
_WORKER_DATA_LINES = ("Discard inputs for cleaned up instruction",)


# A forwarded worker line is "Worker: " and the log entry in protobuf text form; its message field:
_ENTRY_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


def keep_worker_line(record: logging.LogRecord) -> bool:
    """Whether a log line forwarded from a Beam worker is worth showing: warnings and above, the
    data plane's lines about dropped data (logged by the worker at INFO), and the job's own progress
    lines (transforms.progress), which are shown as the worker wrote them, without the log entry
    around them."""
    if record.levelno >= logging.WARNING:
        return True
    message = record.getMessage()
    found = _ENTRY_MESSAGE.search(message)
    if found and found.group(1).startswith(progress.PREFIX + " ("):
        record.name, record.msg, record.args = progress.LOG.name, found.group(1).replace('\\"', '"'), ()
        return True
    return any(line in message for line in _WORKER_DATA_LINES)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Millions of small dicts make Python's cyclic collector run constantly; fewer,
    # larger collections cut about a tenth of the wall time of an in-memory run.
    gc.set_threshold(200_000, 50, 100)
    return_freed_memory()
    if "-h" in argv or "--help" in argv:
        _print_help()
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    # Beam's own INFO logs are noisy; keep ours. The data plane's stay: the only sign a runner gives
    # when it drops the data of a finished bundle is an INFO line ("Discard inputs for cleaned up
    # instruction"), which the hand-over counts' error message can then be read against.
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    logging.getLogger("apache_beam.runners.worker.data_plane").setLevel(logging.INFO)
    # botocore says where it found credentials at INFO, once per S3 client Beam makes (dozens a run)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # The worker processes of the DirectRunner's multi_processing mode log through Beam's job service
    # logger in this process: keep their warnings and their data-plane lines about dropped data,
    # which say which side of a hand-over lost it; not the rest of their INFO.
    workers = logging.getLogger("apache_beam.runners.portability.local_job_service")
    workers.setLevel(logging.INFO)
    workers.addFilter(keep_worker_line)
    from pipeline.apply import ApplyStopped  # noqa: PLC0415

    # SIGTERM (a scheduler stopping the job, `kill`) stops it as Ctrl-C does (exit status 130). While an
    # apply run sends, both stop the sending instead and the run ends with its outputs written
    # (pipeline.apply._stop_on_signals, exit status 3). Signal handlers belong to the main thread.
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if in_main else None
    try:
        run(argv)
    except ValueError as error:
        print(f"profile-dedup: {error}", file=sys.stderr)
        return 2
    except ApplyStopped as stopped:
        print(f"profile-dedup: {stopped}", file=sys.stderr)
        return 3
    except DataLossError as lost:
        print(f"profile-dedup: {lost}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("profile-dedup: interrupted; nothing after this point was written (an apply run's journal "
              "keeps a rerun safe)", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
