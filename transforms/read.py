"""Read exported profiles (JSONL of Customer Profiles ``Profile`` objects) and validate them.

A bad line never stops the job: it goes to the ``rejected`` output with its file,
line number and the reason, so that every line read is accounted for.

Validation is driven by botocore's service model for Customer Profiles (types,
enums and length limits of every ``Profile`` member), plus the id pattern
``[a-f0-9]{32}`` and uniqueness of ``ProfileId`` across all input files.
"""
from __future__ import annotations

import collections
import functools
import json
import math
import re
import typing
from typing import Any, Iterator

import apache_beam as beam
import orjson
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms import progress
from transforms.buckets import FromSideInput, ToBucketsFn, group_bucket
from transforms.packing import Batch

REJECTED = "rejected"
PROFILE_ID_RE = re.compile(r"^[a-f0-9]{32}$")
# How much of a bad line is kept in rejected.jsonl: enough to find and fix it.
MAX_RECORD_CHARS = 2000
# The deepest nesting of objects and lists a profile may have. A Profile itself is at most four
# levels deep (EngagementPreferences.Phone[0].KeyName); fields the model does not know are kept
# as they are, and writing one nested hundreds of levels deep would fail where the profile is
# packed or written out (pickle and orjson stop at a few hundred levels), taking the job with it.
MAX_DEPTH = 64
UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


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
        least = shape.key.metadata.get("min")
        for key, item in value.items():
            yield from _shape_errors(key, shape.key, f"{path} key")
            if least and isinstance(key, str) and len(key) < least:
                # a key is where a merge request names its value's source: an empty one would make
                # every request that names it invalid (a value's own minimum is not enforced: an
                # empty value is read as missing)
                yield f"{path} has an empty key" if not key else f"{path} key {key!r} is shorter than {least}"
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


def _compile_check(shape):
    """A function ``value -> bool``: does ``value`` fit ``shape``? It answers exactly as
    ``not any(_shape_errors(value, shape, ""))`` does, without walking botocore's shape objects or
    building any message (most lines are valid; a failing one is then described in full)."""
    kind = shape.type_name
    if kind == "string":
        enum, limit = frozenset(shape.enum or ()), shape.metadata.get("max")
        return lambda value: (isinstance(value, str) and (not enum or value in enum)
                              and (limit is None or len(value) <= limit))
    if kind == "structure":
        members = {name: _compile_check(member) for name, member in shape.members.items()}

        def structure(value):
            if not isinstance(value, dict):
                return False
            for name, item in value.items():
                check = members.get(name)
                if check is not None and item is not None and not check(item):
                    return False
            return True
        return structure
    if kind == "map":
        key_check, value_check = _compile_check(shape.key), _compile_check(shape.value)
        least = shape.key.metadata.get("min") or 0
        return lambda value: isinstance(value, dict) and all(
            key_check(key) and len(key) >= least and value_check(item) for key, item in value.items())
    if kind == "list":
        member_check = _compile_check(shape.member)
        return lambda value: isinstance(value, list) and all(member_check(item) for item in value)
    if kind in ("integer", "long"):
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return lambda value: isinstance(value, bool)
    return lambda value: True


@functools.lru_cache(maxsize=1)
def profile_check():
    """``_compile_check`` of the ``Profile`` shape."""
    return _compile_check(profile_shape())


def check_profile(value: Any, text: str) -> tuple[dict | None, str | None]:
    """A parsed JSON value (``text`` its JSON) as a Profile: (profile, None) or (None, reason)."""
    if not isinstance(value, dict):
        return None, f"not a JSON object (a {type(value).__name__})"
    # each level opens a bracket, so a line with few brackets needs no walk
    if text.count("{") + text.count("[") > MAX_DEPTH and nesting_depth(value) > MAX_DEPTH:
        return None, f"nested more than {MAX_DEPTH} levels deep"
    profile_id = value.get("ProfileId")
    if not isinstance(profile_id, str) or not PROFILE_ID_RE.fullmatch(profile_id):
        return None, "missing or invalid ProfileId (must match [a-f0-9]{32})"
    # the quick check passes most lines; a line it fails is described (and judged) in full
    errors = [] if profile_check()(value) else list(_shape_errors(value, profile_shape(), ""))
    if errors:
        shown = "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        return None, f"wrong field types: {shown}"
    return value, None


# Keys under which the Customer Profiles API answers with a list of Profile objects: SearchProfiles'
# ``Items`` and BatchGetProfile's ``Profiles`` (an answer saved from the AWS CLI or an SDK).
PROFILE_LIST_KEYS = ("Items", "Profiles")


def profiles_in(value: Any) -> list | None:
    """The records a parsed JSON value holds when it is a container of profiles rather than one
    record: a JSON array (each item), or an API answer with an ``Items`` or ``Profiles`` list and no
    ProfileId of its own. None for anything else (one record, to be checked as a profile)."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and "ProfileId" not in value:
        for key in PROFILE_LIST_KEYS:
            if isinstance(value.get(key), list):
                return value[key]
    return None


class _NotJson:
    """What NaN, Infinity and a number too large for a float stand for once read: no JSON text can be
    written for it, so a record holding one is rejected on its own, not its whole document."""

    def __init__(self, text: str):
        self.text = text


def _float_or_not_json(text: str):
    value = float(text)
    return value if math.isfinite(value) else _NotJson(text)


def _between_values(ch: str) -> bool:
    # JSON's whitespace and what tools leave around or after it: RFC 7464's record separator, form
    # feeds, no-break spaces, line separators (str.isspace), NUL padding and a DOS end-of-file mark
    return ch.isspace() or ch in "\x00\x1a\ufeff"


def json_values(text: str, partial: bool = False) -> list:
    """The JSON values written one after another in ``text`` (whitespace, or nothing, between
    them): several pages of an API answer appended to one file, or records concatenated without
    newlines, as some delivery tools write them, each as ``(value, offset of its first character)``.
    Raises ``ValueError`` if ``text`` is not such a sequence; with ``partial``, the values before
    the first that does not read are returned, with ``(error, offset)`` last. NaN, Infinity and
    numbers beyond a float are read as values no JSON can be written for (orjson takes none)."""
    decoder = json.JSONDecoder(parse_constant=_NotJson, parse_float=_float_or_not_json)
    values, at, end = [], 0, len(text)
    while True:
        while at < end and _between_values(text[at]):
            at += 1
        if at >= end:
            return values
        try:
            value, after = decoder.raw_decode(text, at)
        except (ValueError, RecursionError) as error:   # RecursionError: deeper than the stdlib parser goes
            if not partial:
                raise ValueError(str(error) if isinstance(error, ValueError) else "nested too deep to read") from None
            values.append((error if isinstance(error, ValueError) else ValueError("nested too deep to read"), at))
            return values
        values.append((value, at))
        at = after


# Containers of profiles inside containers (a list of saved API answers, a list of lists) are opened
# this many levels deep.
MAX_CONTAINER_DEPTH = 4


def _records_of(value: Any, depth: int = 0) -> list:
    """A value's records: itself, or those of each item of a container (``profiles_in``)."""
    inside = profiles_in(value) if depth < MAX_CONTAINER_DEPTH else None
    return [value] if inside is None else [record for item in inside for record in _records_of(item, depth + 1)]


def parse_records(text: str) -> list[tuple[tuple[int, int] | None, dict | None, str | None, str]]:
    """The records one line (or one whole JSON document) holds, each ``(place, profile, reason,
    text)``: a Profile line is one record with ``place`` None (``check_profile``). A JSON array of profiles, an API answer listing them (``profiles_in``, opened down to
    lists inside lists), or several JSON values one after another hold one record per profile, each
    placed by ``(lines before the value that holds it, its number in that value from 1)`` and with its
    own JSON as ``text``. Either way a record is a profile (reason None) or the reason it is not. In
    a text that stops reading as JSON part way (a document cut short, garbage after it), what comes
    before the fault is read, and the rest is one record that says where the fault is."""
    stripped = text.strip()
    if not stripped:
        return [(None, None, "empty line", text)]
    try:
        values = [(orjson.loads(stripped), len(text) - len(text.lstrip()))]
    except orjson.JSONDecodeError as error:
        values = json_values(text, partial=True)
        if len(values) == 1 and not isinstance(values[0][0], ValueError) and profiles_in(values[0][0]) is None:
            values = []   # one record orjson refuses (a lone surrogate, NaN): not valid JSON, whatever the other parser says
        if (not values or isinstance(values[0][0], ValueError)
                or (len(values) == 2 and isinstance(values[1][0], ValueError) and "\n" not in stripped)):
            # nothing read, or one record with more after it on its line: the line is not valid JSON
            return [(None, None, f"not valid JSON: {error}", text)]
    if len(values) == 1 and profiles_in(values[0][0]) is None:
        profile, reason = check_profile(values[0][0], stripped)
        return [(None, profile, reason, stripped if reason is None else text)]
    out, items_on = [], collections.Counter()
    line, counted = 0, 0
    for value, offset in values:
        line, counted = line + text.count("\n", counted, offset), offset
        if isinstance(value, ValueError):
            rest = text[offset:]
            items_on[line] += 1
            unread = len(rest.splitlines())
            out.append(((line, items_on[line]), None, f"not valid JSON from here on ({value}); {unread:,} "
                        f"line{'' if unread == 1 else 's'} from here not read", rest))
            continue
        for record in _records_of(value):
            items_on[line] += 1   # numbered on from the values before it on the same line (records glued together)
            item = items_on[line]
            try:
                item_text = orjson.dumps(record).decode()
            except (orjson.JSONEncodeError, TypeError) as problem:
                # a lone surrogate or a byte not UTF-8 (read past as one), NaN, Infinity, a number too large
                out.append(((line, item), None, f"not valid JSON: {_unwritable(problem)}",
                            json.dumps(record, default=lambda v: getattr(v, "text", repr(v)))))
                continue
            out.append(((line, item), *check_profile(record, item_text), item_text))
    return out


def _unwritable(problem: Exception) -> str:
    text = str(problem)
    if "surrogates not allowed" in text:
        return "a character that is not UTF-8 text (a lone surrogate, or a byte of another encoding)"
    if "not JSON serializable" in text:
        return "NaN, Infinity or a number beyond a float"
    return text


def starts_document(first_line: bytes) -> bool:
    """Whether a file whose first line is ``first_line`` may be one JSON document written over many
    lines (pretty-printed, as the AWS CLI writes an answer) rather than JSON Lines: the line opens
    an object or array and is not a whole JSON value (or sequence of values) itself."""
    stripped = _content(first_line)
    if stripped[:1] not in ("{", "["):
        return False
    try:
        json_values(stripped)
        return False
    except ValueError:
        return True


def nesting_depth(value: Any) -> int:
    """Levels of objects and lists in a parsed JSON value (a scalar is 0, ``{}`` and ``[]`` are 1),
    walked without recursion: the value may be nested deeper than Python's recursion limit."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def rejection(source: str, line: int, reason: str, text: str) -> dict:
    """A dead-letter record: where the line came from, why, and the line (clipped; a character that
    is not text, such as a byte of another encoding read past, written as its escape)."""
    clipped = text if len(text) <= MAX_RECORD_CHARS else text[:MAX_RECORD_CHARS] + "...[clipped]"
    clipped = clipped.encode("utf-8", "backslashreplace").decode("utf-8")
    return {"file": source, "line": line, "reason": reason, "record": clipped}


# A file is read in byte ranges spread over the workers, not by one worker alone: about
# RANGES_PER_FILE ranges, none smaller than MIN_RANGE_BYTES or larger than MAX_RANGE_BYTES. A
# compressed file cannot be entered in the middle and is read whole by one worker.
RANGES_PER_FILE = 16
MIN_RANGE_BYTES = 1 << 20
MAX_RANGE_BYTES = 64 << 20
# The tagged output of the range reader: ``((path, range start), lines in the range)``.
LINE_COUNTS = "line_counts"


def byte_ranges(size: int, compressed: bool, per_file: int = RANGES_PER_FILE, smallest: int = MIN_RANGE_BYTES,
                largest: int = MAX_RANGE_BYTES) -> list[tuple[int, int | None]]:
    """``(start, end)`` ranges that cover a file of ``size`` bytes; the last ends at None (the end
    of the file, however long it has become)."""
    if compressed or size <= smallest:
        return [(0, None)]
    step = min(largest, max(smallest, -(-size // per_file)))
    starts = list(range(0, size, step))
    return [(start, start + step) for start in starts[:-1]] + [(starts[-1], None)]


def lines_in_range(handle, start: int, end: int | None) -> Iterator[bytes]:
    """The lines of a binary file whose first byte lies in ``[start, end)`` (``end`` None: up to the
    end of the file). A line that starts before ``start`` belongs to the range before, so
    consecutive ranges yield every line exactly once."""
    if start:
        handle.seek(start - 1)
        handle.readline()   # the end of the line that began before start (or only its newline)
    while end is None or handle.tell() < end:
        raw = handle.readline()
        if not raw:
            return
        yield raw


class _SplitFilesFn(beam.DoFn):
    """A matched file's metadata -> ``(path, start, end)`` byte ranges that cover it."""

    def __init__(self, per_file: int, smallest: int, largest: int):
        self._sizes = (per_file, smallest, largest)

    def process(self, metadata):
        path = metadata.path
        if path.endswith("/"):   # a directory matched by a pattern is not a file to read
            return
        compressed = CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED
        ranges = byte_ranges(metadata.size_in_bytes, compressed, *self._sizes)
        if len(ranges) > 1 and _read_whole(path):
            ranges = [(0, None)]   # one JSON document over many lines is read whole, or not at all
        for start, end in ranges:
            yield path, start, end


def _read_whole(path: str) -> bool:
    """Whether the first line of a file that has content ``starts_document`` or is a
    ``delimited_header``, or the file is UTF-16: such a file is read whole, not in ranges (False if
    it cannot be read: the reader will say why). Blank lines before the first are read past, however
    many."""
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            for raw in lines_in_range(handle, 0, None):
                if raw.startswith(_UTF16_BOMS):
                    return True
                if _content(raw):
                    return starts_document(raw) or delimited_header(raw)
    except Exception:  # noqa: BLE001  (the file is read again, and a fault reported, by the reader)
        pass
    return False


# The largest JSON document written over many lines that is read whole (as one document is: it
# cannot be cut into ranges). A larger one is read line by line, and its lines are rejected.
MAX_DOCUMENT_BYTES = 256 << 20


def _content(raw: bytes) -> str:
    """A line's text without a byte order mark and the whitespace the parser takes off around it."""
    return raw.removeprefix(UTF8_BOM).decode("utf-8", "replace").strip()


def _opens_json(raw: bytes) -> bool:
    """Whether a line's content opens a JSON object or array."""
    return _content(raw)[:1] in ("{", "[")


def delimited_header(first_line: bytes) -> bool:
    """Whether a file's first line is the header of a delimited text file (CSV, TSV) of profiles: not
    JSON, and it names a ProfileId column beside others."""
    stripped = _content(first_line)
    lowered = stripped.lower()
    if lowered.strip('"[]') == "profileid":   # a file of one column
        return True
    if stripped[:1] == "[" and not lowered.startswith("[profileid]"):   # a JSON array; "[ProfileId],[...]" is SQL Server's
        return False
    return (stripped[:1] != "{" and "profileid" in lowered
            and any(separator in stripped for separator in (",", "\t", ";", "|")))


class Document(typing.NamedTuple):
    """A whole file read as one JSON document (or several, one after another): its bytes (text that
    is not UTF-8 cannot travel between steps; ``_ParseFn`` reads them)."""
    data: bytes


class WholeFileRejected(typing.NamedTuple):
    """A file not read as records: one rejected record stands for it (``text``: its first line)."""
    reason: str
    text: bytes


def documents_or_lines(lines: Iterator[bytes], limit: int = MAX_DOCUMENT_BYTES) -> Iterator[bytes | Document | WholeFileRejected]:
    """The lines of a whole file as they are, or, for a file that is one JSON document (or a few, one
    after another) written over many lines, that text as one element. It is one document when its
    first line with content ``starts_document`` and its text, at most ``limit`` bytes, starts with a
    JSON value (``json_values``; what follows a fault is one rejected record, see ``parse_records``),
    given as a ``Document``; otherwise the lines are given one by one, as read. A CSV or TSV file
    of profiles (``delimited_header``), or a UTF-16 file, is one ``WholeFileRejected`` that says
    what to do, not a rejected record per line."""
    held = []
    for raw in lines:
        held.append(raw)
        if _content(raw):
            break
    if held and held[0].startswith(_UTF16_BOMS):
        unread = len(held) + sum(1 for _ in lines)
        yield WholeFileRejected(f"a UTF-16 text file; its {unread:,} lines were not read. This job reads UTF-8: "
                                "save or convert the export as UTF-8", held[0][:200])
        return
    if held and delimited_header(held[-1]):
        before, header, after = held[:-1], held[-1], []
        for raw in lines:   # a JSON Lines file whose first line is broken has records after it
            after.append(raw)
            if _content(raw):
                break
        if after and _opens_json(after[-1]):
            yield from held
            yield from after
            yield from lines
            return
        unread = 1 + len(after) + sum(1 for _ in lines)
        yield from before
        yield WholeFileRejected(
            f"a delimited text file (CSV or TSV: its first line is a header naming ProfileId), not JSON Lines; its "
            f"{unread:,} lines were not read. This job reads JSON Lines of Customer Profiles Profile objects: export "
            "them as JSONL (for a segment snapshot, DataFormat JSONL)", header)
        return
    if not held or not starts_document(held[-1]):
        yield from held
        yield from lines
        return
    size = sum(map(len, held))
    for raw in lines:
        held.append(raw)
        size += len(raw)
        if size > limit:
            yield from held
            yield from lines
            return
    whole = b"".join(held).removeprefix(UTF8_BOM)
    values = json_values(whole.decode("utf-8", "surrogateescape"), partial=True)
    if not values or isinstance(values[0][0], ValueError):
        # not a document after all: JSON Lines whose first line is broken, read line by line
        yield from held
        return
    yield Document(whole)


class _EachRangeOnceFn(beam.DoFn):
    """A range's key and its copies -> the range, once: a file matched by two of the input patterns
    is still read once (its ranges are the same, so they meet under the same key)."""

    def __init__(self):
        self._files = Metrics.counter("read", "files_read")

    def process(self, element):
        _, copies = element
        byte_range = next(iter(copies))
        if byte_range[1] == 0:
            self._files.inc()
        yield byte_range


class _ReadRangeFn(beam.DoFn):
    """A byte range ``(path, start, end)`` -> ``(path, (start, n), text, decode error or None)`` for
    its n-th line (1-based); and, tagged ``LINE_COUNTS``, how many lines the range held, from which
    the lines are numbered in their file (``_NumberLinesFn``)."""

    def process(self, byte_range):
        path, start, end = byte_range
        # a whole file may be compressed (read by its extension); a range of one is not
        compression = CompressionTypes.AUTO if (start, end) == (0, None) else CompressionTypes.UNCOMPRESSED
        count = 0
        try:
            with FileSystems.open(path, compression_type=compression) as handle:
                lines = lines_in_range(handle, start, end)
                if (start, end) == (0, None):
                    lines = documents_or_lines(lines)
                for count, raw in enumerate(lines, start=1):
                    if isinstance(raw, Document):
                        yield path, (start, count), raw.data, None
                        continue
                    if isinstance(raw, WholeFileRejected):
                        yield path, (start, count), raw.text.removeprefix(UTF8_BOM).decode("utf-8", "replace"), raw.reason
                        continue
                    if count == 1 and start == 0 and raw.startswith(UTF8_BOM):
                        raw = raw[len(UTF8_BOM):]   # a byte order mark, as some tools write, is not data
                    try:
                        yield path, (start, count), raw.decode("utf-8"), None
                    except UnicodeDecodeError as error:
                        yield path, (start, count), raw.decode("utf-8", errors="replace"), f"not valid UTF-8: {error}"
                if not compressed_stream_ended(handle):
                    raise EOFError("the compressed file ended before its end-of-stream marker (truncated?)")
        except Exception as error:  # noqa: BLE001  (a file that cannot be read is reported, not fatal)
            # e.g. a ".gz" that is not gzip, a truncated archive, a file gone or unreadable: what was
            # read stays, and the rest of the range is one rejected record that says why
            count += 1
            reason = f"could not read the file from here on: {type(error).__name__}: {error}"
            yield path, (start, count), "", reason
        yield beam.pvalue.TaggedOutput(LINE_COUNTS, ((path, start), count))


def compressed_stream_ended(handle) -> bool:
    """Whether a file opened through Beam's ``FileSystems`` and read to its end was whole: False
    for a compressed file whose stream stopped before its end-of-stream marker.

    Beam's decompressing reader stops quietly at the end of the bytes it is given, so an archive
    cut short (an interrupted upload or copy) would read as a shorter export, and the profiles
    after the cut would be lost without a word. Its decompressor (zlib, bz2, lzma, zstandard)
    says whether it saw the end of its stream (``eof``). An empty file is an empty export; a file
    Beam reads uncompressed has no decompressor and is always whole.
    """
    decompressor = getattr(handle, "_decompressor", None)
    if decompressor is None or getattr(decompressor, "eof", True):
        return True
    raw = getattr(handle, "_file", None)
    try:
        return raw is not None and raw.tell() == 0
    except (OSError, ValueError):
        return False


def line_offsets(counts) -> dict[tuple[str, int], int]:
    """``{(path, range start): lines of that file before the range}`` from ``((path, start), lines)`` counts."""
    by_path: dict[str, list[tuple[int, int]]] = {}
    for (path, start), lines in counts:
        by_path.setdefault(path, []).append((start, lines))
    offsets = {}
    for path, ranges in by_path.items():
        before = 0
        for start, lines in sorted(ranges):
            offsets[(path, start)] = before
            before += lines
    return offsets


def number_line(offsets: dict, path: str, where: tuple) -> int:
    """The 1-based line number in its file of the ``where = (range start, n)`` line of ``path`` (or
    of the line an item of a list starts on: ``where = (range start, n, item)``)."""
    return offsets[(path, where[0])] + where[1]


def place(offsets: dict, path: str, where: tuple) -> str:
    """Where a record is, for a person: ``file:line``, and ``item i`` for an item of a list."""
    text = f"{path}:{number_line(offsets, path, where)}"
    return text + (f" item {where[2]}" if len(where) > 2 else "")


class _NumberLinesFn(beam.DoFn):
    """A rejection located by ``(range start, n)`` -> the same with its line number in the file
    (and, for a repeated ProfileId, where the first copy is)."""

    def __init__(self):
        self._offsets = FromSideInput(line_offsets)

    def process(self, pending, counts):
        offsets = self._offsets(counts)
        record = dict(pending)
        where = record["line"]
        record["line"] = number_line(offsets, record["file"], where)
        if len(where) > 2:
            record["item"] = where[2]
        first = record.pop("first", None)
        if first is not None:
            record["reason"] += f" (first seen at {place(offsets, *first)})"
        yield record


@beam.typehints.with_output_types(typing.Tuple[str, typing.Any])
class _ParseFn(beam.DoFn):
    def __init__(self):
        self._read = progress.counter("read", "records_read")
        self._bad = Metrics.counter("read", "records_rejected")

    def process(self, element):
        path, where, text, decode_error = element
        if isinstance(text, bytes):   # a whole document: a byte of another encoding fails its record, not the file
            text = text.decode("utf-8", "surrogateescape")
        if not (decode_error or text.strip()):   # blank lines (e.g. a trailing newline) are not records
            return
        records = [(None, None, decode_error, text)] if decode_error else parse_records(text)
        for place, profile, reason, record_text in records:
            self._read.inc()
            # a record of a list or of a document: the line its value starts on, and its number there
            at = where if place is None else (where[0], where[1] + place[0], place[1])
            if profile is None:
                self._bad.inc()
                yield beam.pvalue.TaggedOutput(REJECTED, rejection(path, at, reason, record_text))
            else:
                # The record travels as text (cheaper to shuffle than the dict) and is read again
                # once its id is known to be the first. ``at`` places it in its file. It travels
                # as it was parsed: without the whitespace around it, which may be more than JSON's
                # own (a no-break space, a form feed, RFC 7464's record separator).
                yield profile["ProfileId"], (path, at, record_text)


def keep_first(profile_id: str, records: list) -> tuple[tuple, list[tuple]]:
    """Of the ``(path, where, text)`` records of one ProfileId, the first by (file, place in the file)
    and the others (``where`` is a line number, or anything that sorts in file order)."""
    ordered = sorted(records, key=lambda record: (record[0], record[1]))
    return ordered[0], ordered[1:]


def _duplicate(profile_id: str, first: tuple, duplicate: tuple) -> dict:
    """A rejection of a repeated ProfileId, located by ``(range start, n)`` until ``_NumberLinesFn``
    gives it (and ``first``, the first copy's place) line numbers."""
    path, where, text = duplicate
    return dict(rejection(path, where, f"duplicate ProfileId {profile_id}", text), first=(first[0], first[1]))


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
            yield Batch(profiles[start:start + MAX_BATCH])


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
        ranges = (
            pbegin
            | "Patterns" >> beam.Create(self._patterns)
            | "MatchFiles" >> fileio.MatchAll()
            | "SplitFiles" >> beam.ParDo(_SplitFilesFn(RANGES_PER_FILE, MIN_RANGE_BYTES, MAX_RANGE_BYTES))
            # a plain GroupByKey spreads the ranges over the workers (the runner would otherwise read
            # them all where the one file name was matched); not beam.Reshuffle, whose window and
            # timestamp steps this batch job has no use for, and GroupByKey runs on every runner
            # the job supports
            | "KeyRanges" >> beam.Map(lambda byte_range: (f"{byte_range[0]}@{byte_range[1]}", byte_range))
            | "SpreadRanges" >> beam.GroupByKey()
            | "EachRange" >> beam.ParDo(_EachRangeOnceFn())
        )
        read = ranges | "ReadRanges" >> beam.ParDo(_ReadRangeFn()).with_outputs(LINE_COUNTS, main="lines")
        parsed = read.lines | "Parse" >> beam.ParDo(_ParseFn()).with_outputs(REJECTED, main="valid")
        unique = (
            parsed.valid
            | "BucketById" >> beam.ParDo(ToBucketsFn(_as_entry))
            | "GroupByBucket" >> beam.GroupByKey()
            | "KeepFirstOfEachId" >> beam.ParDo(_KeepFirstInBucketFn()).with_output_types(Batch).with_outputs(
                REJECTED, main="profiles")
        )
        profiles = unique.profiles if self._batches else unique.profiles | "EachProfile" >> beam.FlatMap(list)
        # rejections are located within their byte range until every range's lines are counted
        rejected = (
            (parsed[REJECTED], unique[REJECTED])
            | "AllRejected" >> beam.Flatten()
            | "NumberLines" >> beam.ParDo(_NumberLinesFn(), counts=beam.pvalue.AsList(read[LINE_COUNTS]))
        )
        # the records on either side of the shuffle by ProfileId, for the job's hand-over check
        return {"profiles": profiles, "rejected": rejected, "parsed": parsed.valid, "duplicates": unique[REJECTED]}


def _as_entry(element) -> tuple:
    return (element,)
