"""The job's options: one PipelineOptions subclass, Beam-style --snake_case flags."""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

DRY_RUN_DOMAIN = "dry-run"


def _csv(value: str) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class ProfileDedupOptions(PipelineOptions):
    """Options of profile-dedup. Every other Beam option (--runner, ...) works as usual."""

    @classmethod
    def _add_argparse_args(cls, parser):
        io = parser.add_argument_group("input and output")
        io.add_argument("--input", default=None,
                        help="Exported profiles: JSONL of Customer Profiles Profile objects. A local path, "
                             "a glob or s3:// URI; several separated by commas. Gzip/bzip2 by extension.")
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
        match.add_argument("--match_threshold", type=float, default=0.99,
                           help="Match probability at or above which two profiles are linked for merging "
                                "(default 0.99).")
        match.add_argument("--review_threshold", type=float, default=0.5,
                           help="Pairs from this probability up to --match_threshold go to review.jsonl "
                                "(default 0.5).")
        match.add_argument("--cluster_member_threshold", type=float, default=0.5,
                           help="Against strangers chained together: every member of a merge must match the "
                                "main profile itself with at least this probability, or it is split off "
                                "(default 0.5).")
        match.add_argument("--max_block_size", type=int, default=200,
                           help="A blocking key shared by more profiles than this makes no pairs; it is "
                                "counted and reported instead (default 200).")
        match.add_argument("--max_cluster_size", type=int, default=50,
                           help="Linked groups larger than this are never merged, only reported (default 50).")
        match.add_argument("--identifier_fields", default="",
                           help="Comma-separated fields (or Attributes.key) that must never differ between "
                                "merged profiles when both have a value, e.g. AccountNumber (default: none; "
                                "AccountNumber is still compared as evidence).")
        match.add_argument("--default_region", default="US",
                           help="ISO country code for reading national phone numbers and numeric dates when a "
                                "profile's address has no country (default US).")
        match.add_argument("--u_sample_size", type=int, default=3000,
                           help="Profiles sampled (deterministically) to estimate u from random pairs (default 3000).")

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

    # Parsed helpers ------------------------------------------------------

    def input_patterns(self) -> list[str]:
        return _csv(self.input)

    def identifier_list(self) -> tuple[str, ...]:
        return tuple(_csv(self.identifier_fields))

    def source_priority_list(self) -> tuple[str, ...]:
        return tuple(s.lower() for s in _csv(self.source_priority))

    def check(self) -> None:
        """Raise ValueError with a clear message for options that cannot work together."""
        if not self.input:
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
        if self.max_block_size < 2:
            raise ValueError("--max_block_size must be at least 2")
        import re

        if not re.match(r"^[a-zA-Z0-9_-]{1,64}$", self.domain_name or ""):
            raise ValueError("--domain_name must match [a-zA-Z0-9_-]{1,64}")
