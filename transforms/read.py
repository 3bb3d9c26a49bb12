"""Read exported profiles (JSONL of Customer Profiles ``Profile`` objects) and validate them.

A bad line never stops the job: it goes to the ``rejected`` output with its file,
line number and the reason, so that every line read is accounted for.

Validation is driven by botocore's service model for Customer Profiles (types,
enums and length limits of every ``Profile`` member), plus the id pattern
``[a-f0-9]{32}`` and uniqueness of ``ProfileId`` across all input files.
"""
from __future__ import annotations

import functools
import re
import typing
from typing import Any, Iterator

import apache_beam as beam
import orjson
from apache_beam.io import fileio
from apache_beam.metrics import Metrics

from transforms.buckets import ToBucketsFn, group_bucket

REJECTED = "rejected"
PROFILE_ID_RE = re.compile(r"^[a-f0-9]{32}$")
# How much of a bad line is kept in rejected.jsonl: enough to find and fix it.
MAX_RECORD_CHARS = 2000


@functools.lru_cache(maxsize=1)
def profile_shape():
    """The ``Profile`` shape of botocore's Customer Profiles model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("customer-profiles")
    return model.shape_for("Profile")


def _shape_errors(value: Any, shape, path: str) -> Iterator[str]:
    """Yield a message for each way ``value`` breaks ``shape`` (a botocore shape)."""
    kind = shape.type_name
    if kind == "string":
        if not isinstance(value, str):
            yield f"{path} must be a string, got {type(value).__name__}"
            return
        enum = shape.enum
        if enum and value not in enum:
            yield f"{path} must be one of {', '.join(enum)}"
        limit = shape.metadata.get("max")
        if limit is not None and len(value) > limit:
            yield f"{path} is {len(value)} characters, more than the {limit} allowed"
    elif kind == "structure":
        if not isinstance(value, dict):
            yield f"{path} must be an object, got {type(value).__name__}"
            return
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                yield from _shape_errors(value[name], member, f"{path}.{name}" if path else name)
    elif kind == "map":
        if not isinstance(value, dict):
            yield f"{path} must be an object, got {type(value).__name__}"
            return
        for key, item in value.items():
            yield from _shape_errors(key, shape.key, f"{path} key")
            yield from _shape_errors(item, shape.value, f"{path}.{key}")
    elif kind == "list":
        if not isinstance(value, list):
            yield f"{path} must be a list, got {type(value).__name__}"
            return
        for index, item in enumerate(value):
            yield from _shape_errors(item, shape.member, f"{path}[{index}]")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            yield f"{path} must be an integer"
    elif kind == "boolean":
        if not isinstance(value, bool):
            yield f"{path} must be true or false"


def parse_profile_line(text: str) -> tuple[dict | None, str | None]:
    """Parse one JSONL line into a Profile dict: (profile, None) or (None, reason)."""
    stripped = text.strip()
    if not stripped:
        return None, "empty line"
    try:
        value = orjson.loads(stripped)
    except orjson.JSONDecodeError as error:
        return None, f"not valid JSON: {error}"
    if not isinstance(value, dict):
        return None, f"not a JSON object (a {type(value).__name__})"
    profile_id = value.get("ProfileId")
    if not isinstance(profile_id, str) or not PROFILE_ID_RE.fullmatch(profile_id):
        return None, "missing or invalid ProfileId (must match [a-f0-9]{32})"
    errors = list(_shape_errors(value, profile_shape(), ""))
    if errors:
        shown = "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        return None, f"wrong field types: {shown}"
    return value, None


def rejection(source: str, line: int, reason: str, text: str) -> dict:
    """A dead-letter record: where the line came from, why, and the line (clipped)."""
    clipped = text if len(text) <= MAX_RECORD_CHARS else text[:MAX_RECORD_CHARS] + "...[clipped]"
    return {"file": source, "line": line, "reason": reason, "record": clipped}


class _ReadLinesFn(beam.DoFn):
    """A matched file -> (path, line number, text, decode error or None) for each line, 1-based."""

    def __init__(self):
        self._files = Metrics.counter("read", "files_read")

    def process(self, readable):
        path = readable.metadata.path
        self._files.inc()
        with readable.open() as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    yield path, number, raw.decode("utf-8"), None
                except UnicodeDecodeError as error:
                    yield path, number, raw.decode("utf-8", errors="replace"), f"not valid UTF-8: {error}"


@beam.typehints.with_output_types(typing.Tuple[str, typing.Any])
class _ParseFn(beam.DoFn):
    def __init__(self):
        self._read = Metrics.counter("read", "records_read")
        self._bad = Metrics.counter("read", "records_rejected")

    def process(self, element):
        path, number, text, decode_error = element
        if text.strip():  # blank lines (e.g. a trailing newline) are not records
            self._read.inc()
            profile, reason = (None, decode_error) if decode_error else parse_profile_line(text)
            if profile is None:
                self._bad.inc()
                yield beam.pvalue.TaggedOutput(REJECTED, rejection(path, number, reason, text))
            else:
                # The line travels as text (cheaper to shuffle than the dict) and is read again
                # once its id is known to be the first.
                yield profile["ProfileId"], (path, number, text)


def keep_first(profile_id: str, records: list) -> tuple[tuple, list[tuple]]:
    """Of the ``(path, line, text)`` records of one ProfileId, the first by (file, line) and the others."""
    ordered = sorted(records, key=lambda record: (record[0], record[1]))
    return ordered[0], ordered[1:]


def _duplicate(profile_id: str, first: tuple, duplicate: tuple) -> dict:
    path, number, text = duplicate
    return rejection(path, number, f"duplicate ProfileId {profile_id} (first seen at {first[0]}:{first[1]})", text)


# Profiles per batch at most: a bucket of a large input is cut into several (a batch is one
# element, held whole by the worker that reads it).
MAX_BATCH = 5000


class _KeepFirstInBucketFn(beam.DoFn):
    """A bucket of ``(ProfileId, (path, line, text))`` entries -> lists of at most ``MAX_BATCH``
    profiles first seen under each id (batches; see ``transforms.packing.records``); duplicates
    rejected."""

    def __init__(self):
        self._dupes = Metrics.counter("read", "duplicate_profile_ids")

    def process(self, element):
        _, batches = element
        profiles = []
        for profile_id, grouped in sorted(group_bucket(batches).items()):
            first, others = keep_first(profile_id, grouped)
            profiles.append(orjson.loads(first[2]))
            for duplicate in others:
                self._dupes.inc()
                yield beam.pvalue.TaggedOutput(REJECTED, _duplicate(profile_id, first, duplicate))
        for start in range(0, len(profiles), MAX_BATCH):
            yield profiles[start:start + MAX_BATCH]


class ReadProfiles(beam.PTransform):
    """File pattern(s) -> valid Profile dicts, with a ``rejected`` tagged output.

    ``patterns`` is a list of local or ``s3://`` globs (compressed files are read
    by their extension). Returns a dict with keys ``profiles`` and ``rejected``; each
    rejected record is ``{file, line, reason, record}``; ``parsed`` (records that parsed, before
    the shuffle that finds repeated ProfileIds) and ``duplicates`` (the repeats rejected after it)
    let a caller check that the shuffle lost nothing. With ``batches`` the profiles come as lists
    (one or a few per shuffle bucket, each profile in exactly one), which the job's other
    per-profile steps take as they take single profiles.
    """

    def __init__(self, patterns: list[str], batches: bool = False):
        super().__init__()
        self._patterns = list(patterns)
        self._batches = batches

    def expand(self, pbegin):
        lines = (
            pbegin
            | "Patterns" >> beam.Create(self._patterns)
            | "MatchFiles" >> fileio.MatchAll()
            | "OpenFiles" >> fileio.ReadMatches()
            | "ReadLines" >> beam.ParDo(_ReadLinesFn())
        )
        parsed = lines | "Parse" >> beam.ParDo(_ParseFn()).with_outputs(REJECTED, main="valid")
        unique = (
            parsed.valid
            | "BucketById" >> beam.ParDo(ToBucketsFn(_as_entry))
            | "GroupByBucket" >> beam.GroupByKey()
            | "KeepFirstOfEachId" >> beam.ParDo(_KeepFirstInBucketFn()).with_outputs(REJECTED, main="profiles")
        )
        profiles = unique.profiles if self._batches else unique.profiles | "EachProfile" >> beam.FlatMap(list)
        rejected = (parsed[REJECTED], unique[REJECTED]) | "AllRejected" >> beam.Flatten()
        # the records on either side of the shuffle by ProfileId, for the job's hand-over check
        return {"profiles": profiles, "rejected": rejected, "parsed": parsed.valid, "duplicates": unique[REJECTED]}


def _as_entry(element) -> tuple:
    return (element,)
