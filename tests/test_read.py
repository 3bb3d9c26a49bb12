"""Tests for transforms/read.py: line parsing and validation, and the ReadProfiles transform."""
from __future__ import annotations

import gzip
import io
import json

import apache_beam as beam
import orjson
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import collect_to, pid
from transforms import read as read_module
from transforms.read import (
    MAX_RECORD_CHARS,
    ReadProfiles,
    byte_ranges,
    line_offsets,
    delimited_header,
    Document,
    documents_or_lines,
    json_values,
    lines_in_range,
    parse_records,
    profiles_in,
    rejection,
    starts_document,
)

ID = pid(0xABC)


def parse_profile_line(text: str):
    """How the job reads a line that holds one record (``parse_records``): (profile, None) or (None, reason)."""
    [(place, profile, reason, _)] = parse_records(text)
    assert place is None
    return profile, reason


def line(**fields) -> str:
    return json.dumps({"ProfileId": ID, **fields})


def rejected_reason(text: str) -> str:
    profile, reason = parse_profile_line(text)
    assert profile is None, f"expected {text[:80]!r} to be rejected"
    assert isinstance(reason, str) and reason
    return reason


# ------------------------------------------------------------------ parse: shape


def test_valid_line_is_returned_as_a_dict():
    text = line(FirstName="Ann", Address={"City": "Leeds", "Country": "GB"}, Attributes={"src": "crm"},
                Gender="FEMALE", ProfileType="ACCOUNT_PROFILE", PartyType="BUSINESS",
                EngagementPreferences={"Phone": [{"KeyName": "_phone", "KeyValue": "+441130000000",
                                                  "ProfileId": ID, "ContactType": "PhoneNumber"}],
                                       "Email": []},
                FoundByItems=[])
    profile, reason = parse_profile_line(text + "\r\n")
    assert reason is None
    assert profile == json.loads(text)


@pytest.mark.parametrize("text", ["not json", "{", '{"ProfileId": }', "{'ProfileId': 'x'}", '{"a":1} trailing',
                                  "NaN", '{"ProfileId": "%s", "FirstName": NaN}' % ID])
def test_not_json(text):
    assert rejected_reason(text).startswith("not valid JSON")


@pytest.mark.parametrize("text,kind", [("null", "NoneType"), ("5", "int"), ("1.5", "float"),
                                       ('"a string"', "str"), ("true", "bool")])
def test_not_an_object(text, kind):
    reason = rejected_reason(text)
    assert reason.startswith("not a JSON object")
    assert kind in reason


@pytest.mark.parametrize("profile_id", [
    None, 5, "", "abc", ID.upper(), ID[:31], ID + "0", "01234567-89ab-cdef-0123-456789abcdef",
    " " + ID, ID + " ", "g" * 32, ["x"], {"id": ID},
])
def test_missing_or_invalid_profile_id(profile_id):
    text = json.dumps({"ProfileId": profile_id, "FirstName": "Ann"})
    assert "ProfileId" in rejected_reason(text)


def test_profile_id_absent():
    assert "ProfileId" in rejected_reason(json.dumps({"FirstName": "Ann"}))
    assert "ProfileId" in rejected_reason("{}")


def test_profile_id_with_a_trailing_newline_is_not_32_hex_digits():
    # "$" in a Python regex also matches before a final "\n": the id must be exactly [a-f0-9]{32}
    assert "ProfileId" in rejected_reason(json.dumps({"ProfileId": ID + "\n"}))


@pytest.mark.parametrize("fields,expected", [
    ({"FirstName": 5}, "FirstName must be a string, got int"),
    ({"FirstName": True}, "FirstName must be a string, got bool"),
    ({"LastName": ["Smith"]}, "LastName must be a string, got list"),
    ({"Address": "x"}, "Address must be an object, got str"),
    ({"Address": {"City": 5}}, "Address.City must be a string, got int"),
    ({"BillingAddress": []}, "BillingAddress must be an object, got list"),
    ({"Attributes": {"a": 1}}, "Attributes.a must be a string, got int"),
    ({"Attributes": {"a": None}}, "Attributes.a must be a string, got NoneType"),
    ({"Attributes": []}, "Attributes must be an object, got list"),
    ({"EngagementPreferences": []}, "EngagementPreferences must be an object, got list"),
    ({"EngagementPreferences": {"Phone": "x"}}, "EngagementPreferences.Phone must be a list, got str"),
    ({"EngagementPreferences": {"Phone": [{"KeyName": 5}]}}, "EngagementPreferences.Phone[0].KeyName must be a string"),
    ({"EngagementPreferences": {"Email": [{"ContactType": "Fax"}]}}, "EngagementPreferences.Email[0].ContactType must be one of"),
    ({"Gender": "M"}, "Gender must be one of MALE, FEMALE, UNSPECIFIED"),
    ({"Gender": "male"}, "Gender must be one of"),
    ({"PartyType": "PERSON"}, "PartyType must be one of INDIVIDUAL, BUSINESS, OTHER"),
    ({"ProfileType": "ORG"}, "ProfileType must be one of ACCOUNT_PROFILE, PROFILE"),
    ({"FoundByItems": "x"}, "FoundByItems must be a list, got str"),
])
def test_wrong_field_types(fields, expected):
    reason = rejected_reason(line(**fields))
    assert reason.startswith("wrong field types: ")
    assert expected in reason


def test_many_errors_are_summarised():
    fields = {name: 1 for name in ("FirstName", "LastName", "MiddleName", "BirthDate", "PhoneNumber",
                                   "EmailAddress", "AccountNumber")}
    reason = rejected_reason(line(**fields))
    assert reason.count("must be a string") == 5
    assert reason.endswith("; and 2 more")


@pytest.mark.parametrize("field,limit", [("FirstName", 255), ("LastName", 255), ("EmailAddress", 255),
                                         ("AdditionalInformation", 1000)])
def test_strings_longer_than_the_model_allows(field, limit):
    assert parse_profile_line(line(**{field: "a" * limit}))[1] is None
    reason = rejected_reason(line(**{field: "a" * (limit + 1)}))
    assert f"{field} is {limit + 1} characters, more than the {limit} allowed" in reason


def test_long_attribute_value_and_key_and_nested_address_field():
    assert "Attributes.k is 256 characters" in rejected_reason(line(Attributes={"k": "v" * 256}))
    assert "Attributes key is 256 characters" in rejected_reason(line(Attributes={"k" * 256: "v"}))
    assert "Address.City is 256 characters" in rejected_reason(line(Address={"City": "c" * 256}))


def test_an_empty_attribute_key_is_rejected_an_empty_value_is_not():
    # an empty key would name a source in FieldSourceProfileIds.Attributes, which the API refuses
    assert rejected_reason(line(Attributes={"": "x"})) == "wrong field types: Attributes has an empty key"
    profile, reason = parse_profile_line(line(Attributes={"k": ""}, FirstName=""))
    assert reason is None and profile["Attributes"] == {"k": ""}


def test_nesting_deeper_than_the_limit_is_rejected_at_any_place():
    limit = read_module.MAX_DEPTH

    def nested(levels):   # JSON text of a value ``levels`` deep: lists, with an object in the middle
        inner = levels - levels // 2 - 1
        return "[" * (levels // 2) + '{"a":' + "[" * inner + "1" + "]" * inner + "}" + "]" * (levels // 2)

    def with_extra(text):
        return '{"ProfileId": "%s", "Extra": %s}' % (ID, text)

    assert read_module.nesting_depth(orjson.loads(nested(10))) == 10
    assert parse_profile_line(with_extra(nested(limit - 1)))[1] is None         # the profile is a level itself
    assert rejected_reason(with_extra(nested(limit))) == f"nested more than {limit} levels deep"
    # deeper than pickle (about 500) and orjson.dumps (255) can take, inside a known field
    deep = '{"ProfileId": "%s", "Address": {"City": "x", "Extra": %s}}' % (ID, nested(1000))
    assert rejected_reason(deep) == f"nested more than {limit} levels deep"
    # brackets inside strings are not nesting
    assert parse_profile_line(line(FirstName="[" * 200, Attributes={"k": "{" * 200}))[1] is None


def test_huge_line_is_rejected_not_crashing():
    reason = rejected_reason(line(FirstName="x" * 1_000_000))
    assert "1000000 characters" in reason


@pytest.mark.parametrize("value", [
    "Zoë Müller", "李小龍", "Ōtsuka", "محمد", "‮evil", "a\u200bb", "e\u0301", "🎉🎉",
    "Ærøskøbing", "😀" * 255, "a\u0000b", "\ufeffAnn",
])
def test_odd_but_valid_unicode_is_accepted(value):
    profile, reason = parse_profile_line(line(FirstName=value, Attributes={"note": value}))
    assert reason is None
    assert profile["FirstName"] == value


def test_null_fields_and_unknown_fields_are_accepted():
    profile, reason = parse_profile_line(line(FirstName=None, Address=None, SomethingNew={"x": 1}))
    assert reason is None and profile["SomethingNew"] == {"x": 1}


def test_lone_surrogate_is_not_valid_json():
    line = '{"ProfileId": "%s", "FirstName": "\\ud800"}' % ID
    assert rejected_reason(line).startswith("not valid JSON")
    # read as records, a line or an item orjson refuses is rejected too: it could not be read again later
    [(item, profile, reason, _)] = parse_records(line)
    assert (item, profile) == (None, None) and reason.startswith("not valid JSON")
    records = parse_records("[" + line + ', {"ProfileId": "%s"}]' % pid(2))   # the stdlib parser reads the list
    assert [(place, profile is None) for place, profile, _, _ in records] == [((0, 1), True), ((0, 2), False)]
    assert records[0][2] == "not valid JSON: a character that is not UTF-8 text (a lone surrogate, or a byte of another encoding)"


def test_empty_line():
    assert parse_profile_line("   \n") == (None, "empty line")


def _random_value(shape, rng, depth=0):
    """A value for ``shape``: usually of the right kind, sometimes not (a wrong type, a value outside
    an enum, a string just over its limit, null)."""
    roll = rng.random()
    if roll < 0.06:
        return rng.choice([5, 1.5, True, None, "text", [], {}, [1], {"k": 1}])
    kind = shape.type_name
    if kind == "string":
        if shape.enum:
            return rng.choice(list(shape.enum) + ["NOT_AN_ENUM"]) if roll < 0.2 else rng.choice(list(shape.enum))
        limit = shape.metadata.get("max")
        if limit and roll < 0.1:
            return "x" * (limit + rng.choice([0, 1]))
        return rng.choice(["", "ann", "José", "+44 20 7946 0958", "x" * 40])
    if kind == "structure":
        names = list(shape.members)
        chosen = rng.sample(names, k=rng.randint(0, min(len(names), 6 if depth == 0 else 3)))
        value = {name: _random_value(shape.members[name], rng, depth + 1) for name in chosen}
        if rng.random() < 0.1:
            value["UnknownField"] = 5    # not a member: never checked
        return value
    if kind == "map":
        # JSON keys are always strings; some are longer than the key shape allows
        long_key = "k" * ((shape.key.metadata.get("max") or 10) + 1)
        return {(long_key if rng.random() < 0.1 else f"k{i}"): _random_value(shape.value, rng, depth + 1)
                for i in range(rng.randint(0, 3))}
    if kind == "list":
        return [_random_value(shape.member, rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return None


def test_quick_shape_check_agrees_with_the_full_walk_on_random_profiles():
    import random

    rng = random.Random(11)
    shape, check = read_module.profile_shape(), read_module.profile_check()
    verdicts = {True: 0, False: 0}
    for _ in range(3000):
        value = _random_value(shape, rng)
        if not isinstance(value, dict):
            continue
        full = not list(read_module._shape_errors(value, shape, ""))
        assert check(value) is full, value
        verdicts[full] += 1
    assert min(verdicts.values()) > 300, verdicts   # both answers were put to the test


def test_rejection_record_is_clipped():
    record = rejection("f.jsonl", 3, "why", "x" * (MAX_RECORD_CHARS + 10))
    assert record["file"] == "f.jsonl" and record["line"] == 3 and record["reason"] == "why"
    assert record["record"] == "x" * MAX_RECORD_CHARS + "...[clipped]"
    assert rejection("f", 1, "r", "short")["record"] == "short"


# ------------------------------------------------------------------ byte ranges


def test_byte_ranges_cover_a_file_in_about_sixteen_contiguous_ranges():
    ranges = byte_ranges(450_000_000, compressed=False)
    assert 15 <= len(ranges) <= 17
    assert ranges[0][0] == 0 and ranges[-1][1] is None
    assert all(end == nxt for (_, end), (nxt, _) in zip(ranges, ranges[1:]))
    assert max(end - start for start, end in ranges[:-1]) <= 64 << 20


def test_byte_ranges_small_or_compressed_files_are_read_whole():
    assert byte_ranges(1_000, compressed=False) == [(0, None)]
    assert byte_ranges(10 ** 9, compressed=True) == [(0, None)]
    # no range is smaller than the smallest allowed, however many are asked for
    assert byte_ranges(100, False, per_file=50, smallest=30, largest=1000) == [(0, 30), (30, 60), (60, 90), (90, None)]


CONTENT = b"".join([b"first\n", b"\n", b"third line, longer than the others\r\n", b"x\n", b"\n", b"\n",
                    b"a line exactly at a boundary?\n", b"no newline at the end"])


@pytest.mark.parametrize("step", [1, 2, 3, 5, 6, 7, 13, 40, 1000])
def test_consecutive_ranges_yield_every_line_once_in_order(step):
    lines = []
    for start in range(0, len(CONTENT), step):
        end = start + step if start + step < len(CONTENT) else None
        lines.extend(lines_in_range(io.BytesIO(CONTENT), start, end))
    assert lines == CONTENT.splitlines(keepends=True)


def test_line_offsets_number_lines_across_ranges_of_each_file():
    offsets = line_offsets([(("b", 0), 4), (("a", 100), 3), (("a", 0), 2), (("a", 50), 0), (("b", 9), 1)])
    assert offsets == {("a", 0): 0, ("a", 50): 2, ("a", 100): 2, ("b", 0): 0, ("b", 9): 4}


# ------------------------------------------------------------------------- Beam


def run_read(patterns, out_dir):
    """Run ReadProfiles; return (profiles, rejected) as lists (collected through assert_that matchers)."""
    with beam.Pipeline(runner="FnApiRunner") as p:
        read = p | ReadProfiles(patterns)
        assert_that(read["profiles"], collect_to(out_dir / "profiles.json"), label="CollectProfiles")
        assert_that(read["rejected"], collect_to(out_dir / "rejected.json"), label="CollectRejected")
    return (json.loads((out_dir / "profiles.json").read_text()),
            json.loads((out_dir / "rejected.json").read_text()))


@pytest.fixture(params=["whole files", "ranges of 7 bytes"])
def range_size(request, monkeypatch):
    """Read each file whole, or in ranges of 7 bytes (most ranges start inside a line, many hold none)."""
    if request.param != "whole files":
        monkeypatch.setattr(read_module, "MIN_RANGE_BYTES", 7)
        monkeypatch.setattr(read_module, "RANGES_PER_FILE", 10_000)
    return request.param


def test_read_profiles_two_files_duplicates_blank_lines_and_bad_lines(tmp_path, range_size):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    p1, p2, p4 = {"ProfileId": pid(1), "FirstName": "Ann"}, {"ProfileId": pid(2), "FirstName": "Bea"}, {"ProfileId": pid(4)}
    a.write_bytes(b"\n".join([
        orjson.dumps(p1),                                   # 1 valid
        orjson.dumps(p2),                                   # 2 valid, first of pid(2)
        b"",                                                # 3 blank: not a record
        b"not json",                                        # 4 rejected
        b"\xff\xfe{\"ProfileId\": \"" + pid(3).encode() + b"\"}",   # 5 invalid UTF-8 outside a string
        b"   \t",                                           # 6 blank
        orjson.dumps({"ProfileId": pid(5), "Gender": "M"}),  # 7 wrong enum
    ]) + b"\n")
    b.write_bytes(b"\r\n".join([
        orjson.dumps({"ProfileId": pid(2), "FirstName": "Other"}),  # 1 duplicate of a.jsonl:2
        orjson.dumps(p4),                                   # 2 valid
        orjson.dumps({"ProfileId": pid(4), "LastName": "Again"}),   # 3 duplicate of b.jsonl:2 (same file)
        b'"a string"',                                      # 4 not an object
        b"",                                                # 5 blank
    ]))  # no trailing newline on the last line
    profiles, rejected = run_read([str(tmp_path / "*.jsonl")], tmp_path)

    assert sorted(profiles, key=lambda p: p["ProfileId"]) == [p1, p2, p4]
    where = {(r["file"].rsplit("/", 1)[-1], r["line"]): r for r in rejected}
    assert sorted(where) == [("a.jsonl", 4), ("a.jsonl", 5), ("a.jsonl", 7), ("b.jsonl", 1), ("b.jsonl", 3), ("b.jsonl", 4)]
    assert where[("a.jsonl", 4)]["reason"].startswith("not valid JSON")
    assert where[("a.jsonl", 4)]["record"].strip() == "not json"
    assert "utf-8" in where[("a.jsonl", 5)]["reason"].lower()
    assert "Gender must be one of" in where[("a.jsonl", 7)]["reason"]
    dup = where[("b.jsonl", 1)]
    assert dup["reason"] == f"duplicate ProfileId {pid(2)} (first seen at {a}:2)"
    assert json.loads(dup["record"])["FirstName"] == "Other"
    assert dup["file"] == str(b)
    assert where[("b.jsonl", 3)]["reason"] == f"duplicate ProfileId {pid(4)} (first seen at {b}:2)"
    assert where[("b.jsonl", 4)]["reason"].startswith("not a JSON object")
    for record in rejected:
        assert set(record) == {"file", "line", "reason", "record"}


def test_read_profiles_list_of_patterns_and_first_by_file_then_line(tmp_path, range_size):
    # the "first" copy is decided by (file, line), not by the order of the patterns or of reading
    z, y = tmp_path / "z.jsonl", tmp_path / "y.jsonl"
    z.write_text(json.dumps({"ProfileId": pid(9), "FirstName": "FromZ"}) + "\n")
    y.write_text("\n\n" + json.dumps({"ProfileId": pid(9), "FirstName": "FromY"}) + "\n")
    profiles, rejected = run_read([str(z), str(y)], tmp_path)
    assert profiles == [{"ProfileId": pid(9), "FirstName": "FromY"}]
    assert len(rejected) == 1
    assert (rejected[0]["file"], rejected[0]["line"]) == (str(z), 1)
    assert rejected[0]["reason"] == f"duplicate ProfileId {pid(9)} (first seen at {y}:3)"


def test_read_profiles_invalid_utf8_inside_a_value_is_rejected_not_mangled(tmp_path):
    # Latin-1 "José" in a UTF-8 export: not valid JSON text (RFC 8259 requires UTF-8).
    # It must go to rejected with its location, not become "Jos\ufffd" silently.
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"ProfileId": "' + pid(3).encode() + b'", "FirstName": "Jos\xe9"}\n'
                     + orjson.dumps({"ProfileId": pid(6)}) + b"\n")
    profiles, rejected = run_read([str(path)], tmp_path)
    assert [p["ProfileId"] for p in profiles] == [pid(6)]
    assert [(r["file"], r["line"]) for r in rejected] == [(str(path), 1)]
    assert "utf-8" in rejected[0]["reason"].lower()


def test_read_profiles_with_assert_that(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"ProfileId": pid(1)}) + "\n" + "null\n")
    with beam.Pipeline(runner="FnApiRunner") as p:
        read = p | ReadProfiles([str(path)])
        assert_that(read["profiles"], equal_to([{"ProfileId": pid(1)}]), label="Profiles")
        assert_that(read["rejected"] | beam.Map(lambda r: (r["line"], r["reason"])),
                    equal_to([(2, "not a JSON object (a NoneType)")]), label="Rejected")


def _several_non_empty_lists(flags):
    assert all(flags) and 1 < len(flags) <= 300, flags


def test_read_profiles_in_batches_holds_each_profile_once(tmp_path, range_size):
    path = tmp_path / "many.jsonl"
    rows = [{"ProfileId": pid(n), "FirstName": f"N{n}"} for n in range(1, 301)]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows + [rows[5]]) + b"\nnull\n")
    with beam.Pipeline(runner="FnApiRunner") as p:
        read = p | ReadProfiles([str(path)], batches=True)
        assert_that(read["profiles"] | beam.Map(lambda batch: isinstance(batch, list) and len(batch) > 0),
                    _several_non_empty_lists, label="Batches")
        assert_that(read["profiles"] | beam.FlatMap(lambda batch: batch), equal_to(rows), label="Profiles")
        assert_that(read["rejected"] | beam.Map(lambda r: (r["line"], r["reason"][:22])),
                    equal_to([(301, "duplicate ProfileId " + pid(6)[:2]), (302, "not a JSON object (a N")]),
                    label="Rejected")


def _at_most_three(sizes):
    assert sizes and max(sizes) <= 3 and sum(sizes) == 40, sizes


def test_read_profiles_cuts_a_large_bucket_into_batches_of_at_most_max_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(read_module, "MAX_BATCH", 3)
    path = tmp_path / "few.jsonl"
    rows = [{"ProfileId": pid(n)} for n in range(1, 41)]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    with beam.Pipeline(runner="FnApiRunner") as p:
        read = p | ReadProfiles([str(path)], batches=True)
        assert_that(read["profiles"] | beam.Map(len), _at_most_three, label="Sizes")
        assert_that(read["profiles"] | beam.FlatMap(lambda batch: batch), equal_to(rows), label="Profiles")


def test_read_profiles_reads_a_compressed_file_whole_with_line_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(read_module, "MIN_RANGE_BYTES", 7)   # would cut an uncompressed file of this size
    path = tmp_path / "export.jsonl.gz"
    rows = [{"ProfileId": pid(n), "FirstName": f"N{n}"} for n in range(1, 40)]
    path.write_bytes(gzip.compress(b"\n".join(orjson.dumps(r) for r in rows) + b'\n"x"\n' + orjson.dumps(rows[0]) + b"\n"))
    profiles, rejected = run_read([str(path)], tmp_path)
    assert sorted(profiles, key=lambda p: p["ProfileId"]) == rows
    assert [(r["line"], r["reason"]) for r in sorted(rejected, key=lambda r: r["line"])] == [
        (40, "not a JSON object (a str)"), (41, f"duplicate ProfileId {pid(1)} (first seen at {path}:1)")]


def test_read_profiles_a_file_matched_by_two_patterns_is_read_once(tmp_path, range_size):
    path = tmp_path / "export.jsonl"
    rows = [{"ProfileId": pid(n)} for n in range(1, 30)]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows[:5]) + b"\nnot json\n"
                     + b"\n".join(orjson.dumps(r) for r in rows[5:]) + b"\n")
    profiles, rejected = run_read([str(path), str(tmp_path / "exp*.jsonl")], tmp_path)
    assert sorted(profiles, key=lambda p: p["ProfileId"]) == rows
    assert [(r["line"], r["reason"][:14]) for r in rejected] == [(6, "not valid JSON")]


def test_read_profiles_a_byte_order_mark_at_the_start_of_a_file_is_not_data(tmp_path, range_size):
    path = tmp_path / "excel.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps({"ProfileId": pid(1), "FirstName": "Ann"}) + b"\n"
                     + b"\xef\xbb\xbf" + orjson.dumps({"ProfileId": pid(2)}) + b"\n")   # not at the start: data
    profiles, rejected = run_read([str(path)], tmp_path)
    assert profiles == [{"ProfileId": pid(1), "FirstName": "Ann"}]
    assert [r["line"] for r in rejected] == [2]


def test_read_profiles_a_file_that_cannot_be_read_is_rejected_and_the_others_are_read(tmp_path):
    good, fake = tmp_path / "good.jsonl", tmp_path / "plain.jsonl.gz"
    good.write_bytes(orjson.dumps({"ProfileId": pid(1)}) + b"\n")
    fake.write_bytes(orjson.dumps({"ProfileId": pid(2)}) + b"\n")   # named .gz, not gzip
    truncated = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(b"\n".join(orjson.dumps({"ProfileId": pid(n)}) for n in range(10, 400)) + b"\n")
    truncated.write_bytes(whole[: len(whole) // 2])
    profiles, rejected = run_read([str(tmp_path / "*")], tmp_path)
    ids = {p["ProfileId"] for p in profiles}
    assert pid(1) in ids and pid(2) not in ids
    by_file = {}
    for r in sorted(rejected, key=lambda r: r["line"]):
        by_file.setdefault(r["file"].rsplit("/", 1)[-1], []).append(r)
    assert set(by_file) == {"plain.jsonl.gz", "cut.jsonl.gz"}
    assert [r["line"] for r in by_file["plain.jsonl.gz"]] == [1]
    assert by_file["plain.jsonl.gz"][0]["reason"].startswith("could not read the file from here on")
    # what the truncated archive held before the cut is read; the line the cut broke is rejected as
    # what it is, and the end of the archive as one more rejection that says it was cut short
    read_from_cut = sorted(int(i, 16) for i in ids if int(i, 16) >= 10)
    assert read_from_cut and read_from_cut == list(range(10, 10 + len(read_from_cut)))
    cut = by_file["cut.jsonl.gz"]
    assert [r["line"] for r in cut] == [len(read_from_cut) + 1, len(read_from_cut) + 2]
    assert cut[0]["reason"].startswith("not valid JSON")
    assert cut[1]["reason"].startswith("could not read the file from here on: EOFError")


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
def test_read_profiles_an_archive_cut_at_a_line_end_is_reported_not_read_as_a_shorter_export(tmp_path, suffix):
    import bz2
    import lzma

    import zstandard
    compress = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
                ".zst": lambda data: zstandard.ZstdCompressor().compress(data)}[suffix]
    rows = [{"ProfileId": pid(n)} for n in range(1, 11)]
    text = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    whole, cut = tmp_path / f"whole.jsonl{suffix}", tmp_path / f"cut.jsonl{suffix}"
    whole.write_bytes(compress(text))
    cut.write_bytes(compress(text)[:-4])   # the stream's last bytes (its end marker, a checksum) are missing
    profiles, rejected = run_read([str(whole)], tmp_path)
    assert sorted(p["ProfileId"] for p in profiles) == [r["ProfileId"] for r in rows] and rejected == []
    profiles, rejected = run_read([str(cut)], tmp_path)
    assert len(rejected) == 1
    assert rejected[0]["reason"].startswith("could not read the file from here on: EOFError")
    assert "end-of-stream" in rejected[0]["reason"]
    # what came before the cut is read, numbered; the rejection comes after it
    assert rejected[0]["line"] == len(profiles) + 1


def test_read_profiles_an_empty_compressed_file_is_an_empty_export(tmp_path):
    (tmp_path / "empty.jsonl.gz").write_bytes(b"")
    (tmp_path / "nothing.jsonl.gz").write_bytes(gzip.compress(b""))
    profiles, rejected = run_read([str(tmp_path / "*.gz")], tmp_path)
    assert profiles == [] and rejected == []


@pytest.mark.parametrize("around", [("", "\u00a0"), ("", "\x0c"), ("\x1e", ""), ("\u2003", "\u3000")],
                         ids=["no-break space after", "form feed after", "record separator before", "wide spaces"])
def test_read_profiles_whitespace_beyond_json_s_own_around_a_line_is_not_data(tmp_path, around, range_size):
    # Python's str.strip takes these off, JSON's own whitespace does not include them: the line must
    # be read as it was validated (it once crashed the step after the shuffle by ProfileId)
    before, after = around
    path = tmp_path / "odd.jsonl"
    rows = [{"ProfileId": pid(n), "FirstName": f"N{n}"} for n in range(1, 6)]
    path.write_text("".join(before + json.dumps(r) + after + "\n" for r in rows), encoding="utf-8")
    profiles, rejected = run_read([str(path)], tmp_path)
    assert sorted(profiles, key=lambda p: p["ProfileId"]) == rows and rejected == []


# ------------------------------------------------------------------ profiles in lists and documents


def test_a_list_or_an_api_answer_holds_one_record_per_profile():
    p1, p2 = {"ProfileId": pid(1), "FirstName": "Ann"}, {"ProfileId": pid(2)}
    assert profiles_in([p1, p2]) == [p1, p2]
    assert profiles_in({"Items": [p1], "NextToken": "t"}) == [p1]              # SearchProfiles
    assert profiles_in({"Profiles": [p2], "Errors": []}) == [p2]               # BatchGetProfile
    assert profiles_in(p1) is None                                            # one record
    # a profile is a profile even with a field named like a list of them, and a non-list is no list
    assert profiles_in({**p1, "Items": [p2]}) is None
    assert profiles_in({"Items": "none"}) is None
    assert profiles_in({"Other": [p1]}) is None


def test_records_of_a_line_are_numbered_items_each_checked_as_a_profile():
    good = {"ProfileId": pid(1), "FirstName": "Ann"}
    records = parse_records(json.dumps([good, {"ProfileId": "x"}, 5, {"ProfileId": pid(2), "Gender": "M"}]))
    assert [(place, profile) for place, profile, _, _ in records] == [((0, 1), good), ((0, 2), None), ((0, 3), None),
                                                                     ((0, 4), None)]
    reasons = [reason for _, _, reason, _ in records]
    assert reasons[0] is None and reasons[1].startswith("missing or invalid ProfileId")
    assert reasons[2] == "not a JSON object (a int)" and "Gender must be one of" in reasons[3]
    # each record's text is its own JSON, which reads back as the record
    assert [json.loads(text) for _, _, _, text in records][1:3] == [{"ProfileId": "x"}, 5]
    # a plain line is one record without an item number, as parse_profile_line reads it
    assert parse_records(json.dumps(good)) == [(None, good, None, json.dumps(good))]
    assert parse_records(" [] ") == []


def test_values_written_one_after_another_are_read_in_order():
    p1, p2, p3 = ({"ProfileId": pid(i)} for i in (1, 2, 3))
    glued = json.dumps(p1) + json.dumps(p2) + "\x1e" + json.dumps({"Items": [p3]})
    assert [value for value, _ in json_values(glued)] == [p1, p2, {"Items": [p3]}]
    # glued on one line, they are numbered on along it
    assert [(place, profile) for place, profile, _, _ in parse_records(glued)] == [((0, 1), p1), ((0, 2), p2), ((0, 3), p3)]
    for broken in (json.dumps(p1) + "{", json.dumps(p1) + " x", "[" * 100_000):
        with pytest.raises(ValueError):
            json_values(broken)
    # NaN, Infinity and numbers beyond a float fail their own record, not the list that holds them
    records = parse_records('[{"ProfileId": "%s", "X": NaN}, {"ProfileId": "%s", "Y": 1e400}, %s]' % (pid(1), pid(2), json.dumps(p3)))
    assert [(place, profile) for place, profile, _, _ in records] == [((0, 1), None), ((0, 2), None), ((0, 3), p3)]
    assert records[0][2] == records[1][2] == "not valid JSON: NaN, Infinity or a number beyond a float"
    # what follows a fault is one record that says where reading stopped; what came before is read
    [(first, p, _, _), (rest, none, reason, text)] = parse_records(json.dumps(p1) + "\n\n" + '{"ProfileId": "x", ')
    assert (first, p, rest, none, text) == ((0, 1), p1, (2, 1), None, '{"ProfileId": "x", ')
    assert reason.startswith("not valid JSON from here on") and reason.endswith("; 1 line from here not read")
    # not JSON at all, or one record with more after it on its line, keeps orjson's reason and the line as read
    [(item, profile, reason, text)] = parse_records(json.dumps(p1) + "} ")
    assert (item, profile, text) == (None, None, json.dumps(p1) + "} ") and reason.startswith("not valid JSON")


def test_a_document_starts_with_a_line_that_opens_it_without_closing_it():
    assert starts_document(b"{\n") and starts_document(b"\xef\xbb\xbf[\n") and starts_document(b'  { "Items": [\n')
    assert not starts_document(b'{"ProfileId": "a"}\n')          # a whole record: JSON Lines
    assert not starts_document(b'[{"ProfileId": "a"}]\n')        # a whole list on one line
    assert not starts_document(b"ProfileId,FirstName\n")         # not JSON at all


def test_documents_or_lines_gives_a_document_whole_and_anything_else_line_by_line():
    pretty = json.dumps({"Items": [{"ProfileId": pid(1)}]}, indent=2).encode()
    lines = [raw + b"\n" for raw in pretty.split(b"\n")]
    assert list(documents_or_lines(iter([b"\xef\xbb\xbf\n"] + lines))) == [Document(b"\n" + pretty + b"\n")]
    broken = lines[:-1]                                           # never closed
    assert list(documents_or_lines(iter(broken))) == broken
    assert list(documents_or_lines(iter(lines), limit=len(pretty) // 2)) == lines   # too large to hold
    jsonl = [b'{"ProfileId": "a"}\n', b"{\n"]
    assert list(documents_or_lines(iter(jsonl))) == jsonl


def test_read_profiles_pretty_printed_answers_arrays_and_concatenated_records(tmp_path, range_size):
    """What a person exports with the AWS CLI or a delivery stream: SearchProfiles answers pretty-printed
    and appended to one file, a JSON array of profiles, records concatenated without newlines, and
    JSON Lines whose lines are lists. Every profile is read once, item numbers place the bad ones,
    and a repeat names the item it repeats."""
    ps = [{"ProfileId": pid(i), "FirstName": f"N{i}"} for i in range(1, 9)]
    cli = tmp_path / "search.json"
    cli.write_text("\ufeff" + json.dumps({"Items": ps[:2], "NextToken": "t"}, indent=4) + "\n"
                   + json.dumps({"Items": [ps[2], {"ProfileId": pid(3), "FirstName": 7}]}, indent=4) + "\n")
    array = tmp_path / "array.json"
    array.write_text(json.dumps([ps[3], ps[4]], indent=2))
    glued = tmp_path / "stream.json"
    glued.write_text(json.dumps(ps[5]) + json.dumps(ps[6]))
    lines = tmp_path / "z_lines.jsonl"
    lines.write_text(json.dumps(ps[7]) + "\n" + json.dumps([ps[0], "x"]) + "\n")
    profiles, rejected = run_read([str(tmp_path / "*.json*")], tmp_path)

    assert sorted(profiles, key=lambda p: p["ProfileId"]) == ps
    where = {(r["file"].rsplit("/", 1)[-1], r["line"], r.get("item")): r["reason"] for r in rejected}
    second_page = len(json.dumps({"Items": ps[:2], "NextToken": "t"}, indent=4).splitlines()) + 1   # the line it starts on
    assert where == {
        ("search.json", second_page, 2): "wrong field types: FirstName must be a string, got int",
        ("z_lines.jsonl", 2, 1): f"duplicate ProfileId {pid(1)} (first seen at {cli}:1 item 1)",
        ("z_lines.jsonl", 2, 2): "not a JSON object (a str)",
    }


def test_a_csv_of_profiles_is_one_rejected_record_that_says_what_to_do(tmp_path, range_size):
    rows = "\n".join(f"{pid(n)},N{n},Lee" for n in range(1, 40))
    (tmp_path / "snapshot.csv").write_text("\ufeffProfileId,FirstName,LastName\n" + rows + "\n")
    # a JSON Lines file whose first line is broken (and happens to look like a header) is still read
    (tmp_path / "export.jsonl").write_text("ProfileId,broken\n\n" + json.dumps({"ProfileId": pid(50)}) + "\n")
    profiles, rejected = run_read([str(tmp_path / "*")], tmp_path)
    assert profiles == [{"ProfileId": pid(50)}]
    by_file = {r["file"].rsplit("/", 1)[-1]: r for r in rejected}
    assert set(by_file) == {"snapshot.csv", "export.jsonl"} and len(rejected) == 2
    csv_record = by_file["snapshot.csv"]
    assert csv_record["line"] == 1 and csv_record["record"].strip() == "ProfileId,FirstName,LastName"
    assert "not JSON Lines; its 40 lines were not read" in csv_record["reason"]
    assert "DataFormat JSONL" in csv_record["reason"]
    assert by_file["export.jsonl"]["line"] == 1 and by_file["export.jsonl"]["reason"].startswith("not valid JSON")


def test_a_delimited_header_names_profile_id_beside_other_columns():
    assert delimited_header(b"ProfileId,FirstName\n") and delimited_header(b'"profileId"\t"Email"\r\n')
    assert not delimited_header(b'{"ProfileId": "a", "x": 1}\n') and not delimited_header(b"FirstName,LastName\n")
    assert delimited_header(b"ProfileId\n") and delimited_header(b"[ProfileId],[FirstName]\r\n")   # one column; SQL Server's


def test_read_profiles_one_bad_value_in_a_document_fails_its_record_not_the_document(tmp_path, range_size):
    """A pretty-printed export with one NaN, one byte of another encoding, garbage or padding after it,
    or cut short: the profiles that read are read, and each fault is one record that says where."""
    ps = [{"ProfileId": pid(i), "FirstName": f"N{i}"} for i in range(1, 13)]
    nan = json.dumps(ps[:3], indent=2).replace('"N2"', "NaN").encode()
    latin = json.dumps({"Items": ps[3:6]}, indent=2).encode().replace(b'"N5"', b'"Ren\xe9e"')
    padded = json.dumps(ps[6:8], indent=2).encode() + b"\x0c\xc2\xa0\n" + b"\x00" * 64 + b"\x1a"
    cut = (json.dumps(ps[8:10], indent=2) + "\ngarbage\n").encode()
    (tmp_path / "nan.json").write_bytes(nan)
    (tmp_path / "latin.json").write_bytes(latin)
    (tmp_path / "padded.json").write_bytes(padded)
    (tmp_path / "cut.json").write_bytes(cut)
    profiles, rejected = run_read([str(tmp_path / "*.json")], tmp_path)
    assert sorted(p["ProfileId"] for p in profiles) == [pid(i) for i in (1, 3, 4, 6, 7, 8, 9, 10)]
    where = {(r["file"].rsplit("/", 1)[-1], r["line"], r.get("item")): r for r in rejected}
    assert set(where) == {("nan.json", 1, 2), ("latin.json", 1, 2), ("cut.json", cut.count(b"\n"), 1)}
    assert where[("nan.json", 1, 2)]["reason"] == "not valid JSON: NaN, Infinity or a number beyond a float"
    assert "not UTF-8 text" in where[("latin.json", 1, 2)]["reason"]
    assert "\\udce9" in where[("latin.json", 1, 2)]["record"]   # the byte, shown as its escape
    assert where[("cut.json", cut.count(b"\n"), 1)]["reason"].startswith("not valid JSON from here on")
    assert where[("cut.json", cut.count(b"\n"), 1)]["record"] == "garbage\n"


def test_read_profiles_lists_inside_lists_are_opened(tmp_path):
    ps = [{"ProfileId": pid(i)} for i in range(1, 6)]
    (tmp_path / "pages.json").write_text(json.dumps([{"Items": ps[:2]}, {"Items": ps[2:4]}, [ps[4]]], indent=1))
    profiles, rejected = run_read([str(tmp_path / "pages.json")], tmp_path)
    assert sorted(profiles, key=lambda p: p["ProfileId"]) == ps and rejected == []


def test_read_profiles_a_large_document_or_utf16_file_is_read_whole_whatever_comes_first(tmp_path, monkeypatch):
    # ranges of 7 bytes from the CLI's point of view: a document after many blank lines, and a UTF-16
    # file, must not be cut into ranges (each range's lines would be rejected one by one)
    monkeypatch.setattr(read_module, "MIN_RANGE_BYTES", 7)
    monkeypatch.setattr(read_module, "RANGES_PER_FILE", 10_000)
    ps = [{"ProfileId": pid(i)} for i in range(1, 4)]
    (tmp_path / "late.json").write_text("\n" * 50 + json.dumps(ps, indent=2))
    (tmp_path / "wide.jsonl").write_bytes("\n".join(json.dumps(p) for p in ps).encode("utf-16"))
    profiles, rejected = run_read([str(tmp_path / "*")], tmp_path)
    assert sorted(profiles, key=lambda p: p["ProfileId"]) == ps
    assert len(rejected) == 1 and rejected[0]["reason"].startswith("a UTF-16 text file; its 3 lines were not read")
