"""Write the Flex Template's metadata.json from the job's own option parser.

    python deploy/dataflow/make_metadata.py > deploy/dataflow/metadata.json

Every option of ``ProfileDedupOptions`` becomes one parameter with its help text and a
validation regex (tests/test_deploy.py checks the file against the parser: run this again
whenever an option is added or changed). Flags (``--redact``, ``--apply``...) take
``true``/``false``.
"""
from __future__ import annotations

import argparse
import json
import sys

from pipeline.options import ProfileDedupOptions

URI = r"(s3|gs)://[^,\s]+"
PROBABILITY = r"^(0(\.[0-9]+)?|1(\.0+)?)$"
POSITIVE_FLOAT = r"^[0-9]+(\.[0-9]+)?$"
INTEGER = r"^[0-9]+$"
FIELD = r"([A-Za-z][A-Za-z0-9]*|Attributes\.[A-Za-z0-9_.:-]+)"
REGEXES = {
    "input": rf"^{URI}(,{URI})*$",
    "output": rf"^{URI}$",
    "domain_name": r"^[a-zA-Z0-9_-]{1,64}$",
    "model": rf"^{URI}\.json$",
    "match_threshold": PROBABILITY,
    "review_threshold": PROBABILITY,
    "cluster_member_threshold": PROBABILITY,
    "identifier_fields": rf"^({FIELD}(,{FIELD})*)?$",
    "default_region": r"^[A-Z]{2}$",
    "recency_attribute": rf"^{FIELD}?$",
    "source_attribute": rf"^{FIELD}?$",
    "source_priority": r"^([A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*)?$",
    "from_plan": rf"^{URI}\.jsonl$",
    "endpoint_url": r"^https?://[^\s]+$",
    "aws_region": r"^[a-z]{2}(-[a-z]+)+-[0-9]+$",
    "aws_profile": r"^[A-Za-z0-9_.-]+$",
    "merge_error_rate_threshold": PROBABILITY,
    "merge_rate_headroom": PROBABILITY,
}
REQUIRED = {"output"}


def option_actions() -> list[argparse.Action]:
    parser = argparse.ArgumentParser(add_help=False)
    ProfileDedupOptions._add_argparse_args(parser)
    return list(parser._actions)


def regex_for(action: argparse.Action) -> str:
    if action.dest in REGEXES:
        return REGEXES[action.dest]
    if isinstance(action, argparse._StoreTrueAction) or (action.nargs == "?" and action.const is True):
        return r"^(true|false)$"
    if action.choices:
        return "^(" + "|".join(action.choices) + ")$"
    if action.type is int:
        return INTEGER
    if action.type is float:
        return POSITIVE_FLOAT
    return r"^\S*$"


def label(dest: str) -> str:
    return dest.replace("_", " ").capitalize()


def build_metadata() -> dict:
    parameters = [{
        "name": action.dest,
        "label": label(action.dest),
        "helpText": action.help,
        "isOptional": action.dest not in REQUIRED,
        "regexes": [regex_for(action)],
    } for action in option_actions()]
    return {
        "name": "profile-dedup",
        "description": "Find duplicate Amazon Connect Customer Profiles and write a merge plan (dry run), "
                       "or apply a reviewed plan with --from_plan and --apply.",
        "parameters": parameters,
    }


if __name__ == "__main__":
    json.dump(build_metadata(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
