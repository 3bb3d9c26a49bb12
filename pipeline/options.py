"""The job's options: one PipelineOptions subclass, Beam-style --snake_case flags."""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

DRY_RUN_DOMAIN = "dry-run"


def _flag(value) -> bool:
    """An on/off option that also takes a value: --apply, --apply=true, --apply=false.

    Dataflow Flex Templates pass every parameter as name=value."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _csv(value: str) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class ProfileDedupOptions(PipelineOptions):
    """Options of profile-dedup. Every other Beam option (--runner, ...) works as usual."""

    @classmethod
    def _add_argparse_args(cls, parser):
        io = parser.add_argument_group("input and output")
        io.add_argument("--input", default=None,
                        help="Exported profiles: JSONL of Customer Profiles Profile objects (a JSON array of them, or a "
                             "SearchProfiles or BatchGetProfile answer listing them, is read too). A local path, "
                             "a glob, a directory (its files) or s3:// URI; several separated by commas, each "
                             "matching at least one file. Compressed files (.gz, .bz2, .xz, .zst, .deflate) are read by their extension.")
        io.add_argument("--output", default=None,
                        help="Directory (local or s3://) for merge_plan.jsonl, clusters.jsonl, review.jsonl, "
                             "rejected.jsonl, model.json, summary.json and report.html.")
        io.add_argument("--domain_name", default=DRY_RUN_DOMAIN,
                        help="Customer Profiles domain written into every MergeProfiles request "
                             f"(default {DRY_RUN_DOMAIN!r}, a placeholder for dry runs).")

        match = parser.add_argument_group("matching")
        match.add_argument("--model", default=None,
                           help="A model.json from an earlier run to score with, instead of estimating m and u "
                                "from this data.")
        match.add_argument("--match_threshold", type=float, default=0.95,
                           help="Match probability at or above which two profiles are linked for merging "
                                "(default 0.95). Guards block household members, namesakes and business "
                                "accounts whatever the score.")
        match.add_argument("--review_threshold", type=float, default=0.5,
                           help="Pairs from this probability up to --match_threshold go to review.jsonl "
                                "(default 0.5).")
        match.add_argument("--cluster_member_threshold", type=float, default=0.5,
                           help="Against strangers chained together: every member of a merge must match the "
                                "main profile itself with at least this probability, or it is split off "
                                "(default 0.5).")
        match.add_argument("--max_block_size", type=int, default=50,
                           help="A blocking key shared by more profiles than this makes no pairs; it is "
                                "counted and reported instead (default 50, like --max_cluster_size: more "
                                "profiles than that could never merge as one customer anyway). Rules with a "
                                "window (names, places, birth years) pair neighbours only and have their own "
                                "limit in the model.")
        match.add_argument("--max_cluster_size", type=int, default=50,
                           help="Linked groups larger than this are never merged, only reported (default 50).")
        match.add_argument("--components", choices=("union_find", "star"), default="union_find",
                           help="How linked profiles are gathered into groups: union_find (default) combines "
                                "every match edge in one worker (about 284 MiB per million linked profiles); "
                                "star contracts the groups in --component_rounds rounds of two shuffles each, "
                                "so no worker holds them all (for domains whose linked profiles outgrow one "
                                "worker). Both give the same groups.")
        match.add_argument("--component_rounds", type=int, default=16,
                           help="Rounds of --components star (default 16: enough for a chain of 100,000 "
                                "linked profiles in random order; groups not settled by then are finished "
                                "by the union-find, so the groups are always the same).")
        match.add_argument("--identifier_fields", default="",
                           help="Comma-separated fields (or Attributes.key) that must never differ between "
                                "merged profiles when both have a value, e.g. AccountNumber (default: none; "
                                "AccountNumber is still compared as evidence).")
        match.add_argument("--default_region", default="US", type=lambda value: value.strip().upper(),
                           help="ISO country code for reading national phone numbers and numeric dates when a "
                                "profile's address has no country (default US).")
        match.add_argument("--u_sample_size", type=int, default=3000,
                           help="Profiles sampled (deterministically) to estimate u from random pairs (default 3000; "
                                "at least 2).")

        choose = parser.add_argument_group("choosing the surviving values")
        choose.add_argument("--main_policy", default="most_complete",
                            choices=["most_complete", "most_recent", "source_priority"],
                            help="How the main profile is picked and ties between values are broken "
                                 "(default most_complete).")
        choose.add_argument("--recency_attribute", default="",
                            help="Where a profile's last-update time is, e.g. Attributes.last_updated "
                                 "(profiles have no timestamp of their own). Needed by most_recent; "
                                 "breaks ties otherwise.")
        choose.add_argument("--source_attribute", default="",
                            help="Where a profile's source system is, e.g. Attributes.source (source_priority).")
        choose.add_argument("--source_priority", default="",
                            help="Comma-separated source names, most trusted first (source_priority).")

        report = parser.add_argument_group("report")
        report.add_argument("--redact", type=_flag, nargs="?", const=True, default=False,
                            help="Mask emails, phones, birth dates and street lines in report.html, for sharing "
                                 "beyond the data owners.")

        apply = parser.add_argument_group("apply (sends MergeProfiles; without --apply nothing is sent)")
        apply.add_argument("--apply", type=_flag, nargs="?", const=True, default=False,
                           help="Send the merge plan to Customer Profiles. Without it the job is a dry run.")
        apply.add_argument("--from_plan", default=None,
                           help="Apply exactly this reviewed merge_plan.jsonl instead of computing a plan "
                                "(needs --apply; --input is then not used).")
        apply.add_argument("--max_merges_per_second", type=float, default=50.0,
                           help="Global MergeProfiles rate for the whole job, all workers together (default 50: "
                                "half the default quota of 100/s, leaving room for other callers).")
        apply.add_argument("--merge_concurrency", type=int, default=4,
                           help="Requests in flight at once per shard, so API latency does not cut the rate "
                                "(default 4).")
        apply.add_argument("--merge_shards", type=int, default=8,
                           help="Fixed number of shards the requests are spread over; each gets "
                                "rate/shards (default 8).")
        apply.add_argument("--max_merges", type=int, default=0,
                           help="Safety cap: send at most this many MergeProfiles requests in this run "
                                "(default 0: no cap).")
        apply.add_argument("--endpoint_url", default=None,
                           help="Customer Profiles endpoint, e.g. a local emulator (default: the AWS endpoint "
                                "of --aws_region).")
        apply.add_argument("--aws_region", default=None,
                           help="AWS Region of the domain (default: boto3's standard chain, e.g. AWS_REGION). "
                                "Not --region: Beam already uses that for Dataflow's Region.")
        apply.add_argument("--aws_profile", default=None,
                           help="Named profile from the shared AWS config files (default: boto3's standard "
                                "credential chain).")
        apply.add_argument("--fix_engagement_preferences", type=_flag, nargs="?", const=True, default=False,
                           help="After each merge, one UpdateProfile call unions the merged profiles' "
                                "EngagementPreferences and points them at the main profile.")
        apply.add_argument("--merge_retry_deadline", type=float, default=300.0,
                           help="Seconds one request may keep being retried (429, 5xx, connection errors) "
                                "before it is recorded as failed (default 300).")
        apply.add_argument("--merge_error_rate_threshold", type=float, default=0.5,
                           help="Circuit breaker: stop sending when more than this share of a worker's last 50 "
                                "MergeProfiles attempts failed, for 5 seconds on end (throttling not counted; retries ride out a "
                                "shorter outage; default 0.5).")
        apply.add_argument("--merge_rate_headroom", type=float, default=0.05,
                           help="Requests are spaced 1/(rate x (1 - headroom)) apart, so that jitter never brings "
                                "two closer than 1/rate at the service (default 0.05).")

    # Parsed helpers ------------------------------------------------------

    def input_patterns(self) -> list[str]:
        return _csv(self.input)

    def identifier_list(self) -> tuple[str, ...]:
        return tuple(_csv(self.identifier_fields))

    def source_priority_list(self) -> tuple[str, ...]:
        return tuple(s.lower() for s in _csv(self.source_priority))

    def check(self) -> None:
        """Raise ValueError with a clear message for options that cannot work together."""
        if self.from_plan and not self.apply:
            raise ValueError("--from_plan applies a reviewed plan and needs --apply")
        if not self.input and not self.from_plan:
            raise ValueError("--input is required")
        if not self.output:
            raise ValueError("--output is required")
        if not 0 < self.match_threshold < 1:
            raise ValueError("--match_threshold must be between 0 and 1")
        if not 0 < self.review_threshold <= self.match_threshold:
            raise ValueError("--review_threshold must be above 0 and at most --match_threshold")
        if not 0 < self.cluster_member_threshold <= self.match_threshold:
            raise ValueError("--cluster_member_threshold must be above 0 and at most --match_threshold")
        if self.max_cluster_size < 2:
            raise ValueError("--max_cluster_size must be at least 2")
        if self.component_rounds < 1:
            raise ValueError("--component_rounds must be at least 1")
        if self.max_block_size < 2:
            raise ValueError("--max_block_size must be at least 2")
        if self.u_sample_size < 2:
            raise ValueError("--u_sample_size must be at least 2 (u is estimated from pairs of the sample)")
        import phonenumbers

        if self.default_region not in phonenumbers.SUPPORTED_REGIONS:   # read in capitals
            raise ValueError(f"--default_region {self.default_region!r} is not a region phone numbers can be read "
                             "in: an ISO 3166-1 alpha-2 code such as US, GB or DE")
        import re

        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", self.domain_name or ""):   # "$" would let "demo\n" by
            raise ValueError("--domain_name must match [a-zA-Z0-9_-]{1,64}")
        if self.apply and self.domain_name == DRY_RUN_DOMAIN:
            raise ValueError("--apply needs --domain_name: the Customer Profiles domain to merge in")
        for field in self.identifier_list():
            problem = identifier_field_problem(field)
            if problem:
                raise ValueError(f"--identifier_fields {field!r}: {problem}")
        # a misspelt attribute ("last_updated" for Attributes.last_updated) is missing on every profile,
        # and every main would silently be the most complete one
        for flag, field in (("--recency_attribute", self.recency_attribute), ("--source_attribute", self.source_attribute)):
            problem = identifier_field_problem(field) if field else None
            if problem:
                raise ValueError(f"{flag} {field!r}: {problem}")
        if self.max_merges_per_second <= 0:
            raise ValueError("--max_merges_per_second must be positive")
        if self.merge_concurrency < 1 or self.merge_shards < 1:
            raise ValueError("--merge_concurrency and --merge_shards must be at least 1")
        if self.max_merges < 0:
            raise ValueError("--max_merges must be 0 (no cap) or more")


def identifier_field_problem(field: str) -> str | None:
    """Why ``field`` cannot be an identifier that merged profiles must not differ on, or None.

    It is a safety rule, so a name that would silently never fire is refused: a field of the
    ``Profile`` shape whose value is text (AccountNumber, PartyType, a phone or an email field...),
    or ``Attributes.<key>``. An object (an address, EngagementPreferences) has no one value to
    compare, and a misspelt name no value at all."""
    if field.startswith("Attributes."):
        return None if field.split(".", 1)[1] else "an attribute needs its key: Attributes.<key>"
    from transforms.read import profile_shape

    members = profile_shape().members
    if field == "ProfileId":
        return "every profile's own id, which always differs"
    if field not in members:
        close = [name for name in members if name.lower() == field.lower()]
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"not a field of a Profile{hint}; name a Profile field such as AccountNumber, or Attributes.<key>"
    if members[field].type_name != "string":
        return (f"a {members[field].type_name}, not a text value; name a text field such as AccountNumber, "
                "or Attributes.<key>")
    return None
