"""The review report (OUT/report.html): rendered in a real browser, safe with hostile
content, redacted on request, and small at scale.

Needs Debian's ``chromium`` on PATH: without it these tests fail (CI installs it).
"""
from __future__ import annotations

import html
import json
import random
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.redact import Redactor, mask_date, mask_email, mask_phone, scrub_text
from pipeline.report import write_report, write_report_all

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_profiles.jsonl"
SAMPLE_LINES = 500

HOSTILE = {
    "script": "<script>alert(1)</script>",
    "img": "<img src=x onerror=alert(1)>",
    "svg": '"><svg onload=alert(1)>',
    "js": "javascript:alert(1)",
    "rtl": "abc\u202egnp.exe",
}
LONG = "LONG" + "A" * 19_996

# Personal data that must not survive --redact: (value in the input, other forms of it).
PII = {
    "emails": ["alice.wonder@example.org", "Alice.Wonder@Example.org", "alice.wonder", "bob.rejected@example.net",
               "bob.rejected"],
    "phones": ["+44 20 7946 0958", "020 7946 0958", "+442079460958", "2079460958", "79460958", "7946 0958",
               "+1 415 555 0134", "4155550134", "415 555 0134", "+14155550134"],
    "dates": ["1985-07-14", "14/07/1985", "14 Jul 1985", "19850714", "1979-02-03"],
    "streets": ["12 Rabbit Hole Lane", "12 Rabbit Hole Ln", "Rabbit Hole", "99 Secret Street"],
}


def _pid(n: int) -> str:
    return f"feed{n:028x}"


def _special_profiles() -> list[str]:
    """Two hostile duplicates, one hostile-and-too-long profile, two redaction
    duplicates and one rejected line full of personal data (as JSONL lines)."""
    hostile = {
        "FirstName": HOSTILE["script"], "LastName": HOSTILE["img"], "MiddleName": HOSTILE["rtl"],
        "EmailAddress": HOSTILE["svg"] + "@example.com", "PersonalEmailAddress": "hostile.person@example.com",
        "PhoneNumber": "+1 212 555 0147", "BirthDate": "1970-01-01", "ProfileType": "PROFILE",
        "AdditionalInformation": HOSTILE["js"],
        "Address": {"Address1": HOSTILE["svg"], "City": HOSTILE["script"], "Country": "US"},
        "Attributes": {HOSTILE["img"]: HOSTILE["js"], "homepage": HOSTILE["js"], "note": HOSTILE["rtl"]},
    }
    alice = {
        "FirstName": "Alice", "LastName": "Wonderland", "EmailAddress": "alice.wonder@example.org",
        "PhoneNumber": "+44 20 7946 0958", "BirthDate": "1985-07-14", "ProfileType": "PROFILE",
        "Address": {"Address1": "12 Rabbit Hole Lane", "City": "London", "PostalCode": "SW1A 1AA", "Country": "GB"},
        "Attributes": {"contact": "alice.wonder@example.org / +44 20 7946 0958"},
    }
    alice2 = {
        "FirstName": "Alice", "LastName": "Wonderland", "PersonalEmailAddress": "Alice.Wonder@Example.org",
        "MobilePhoneNumber": "020 7946 0958", "BirthDate": "14/07/1985", "ProfileType": "PROFILE",
        "ShippingAddress": {"Address1": "12 Rabbit Hole Ln", "City": "London", "PostalCode": "SW1A 1AA", "Country": "GB"},
        "EngagementPreferences": {
            "Phone": [{"KeyValue": "+442079460958", "ContactType": "PhoneNumber", "KeyName": "_phone",
                       "ProfileId": _pid(4)}],
            "Email": [{"KeyValue": "alice.wonder@example.org", "ContactType": "EmailAddress", "KeyName": "_email",
                       "ProfileId": _pid(4)}]},
    }
    records = [
        dict(hostile, ProfileId=_pid(1)),
        dict(hostile, ProfileId=_pid(2), Attributes={"note": HOSTILE["svg"], "homepage": HOSTILE["js"]}),
        dict(hostile, ProfileId=_pid(3), FirstName=LONG),
        dict(alice, ProfileId=_pid(5)),
        dict(alice2, ProfileId=_pid(4)),
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    # Rejected (Gender must be a string): its raw line carries personal data.
    lines.append(json.dumps({"ProfileId": _pid(6), "FirstName": "Bob", "EmailAddress": "bob.rejected@example.net",
                             "PhoneNumber": "+1 415 555 0134", "BirthDate": "1979-02-03", "Gender": 5,
                             "Address": {"Address1": "99 Secret Street", "City": "Boston"}}))
    lines.append("this is not json " + HOSTILE["script"] + " bob.rejected@example.net +1 415 555 0134 1979-02-03")
    return lines


# ------------------------------------------------------------------ browser and DOM


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed: `apt-get install -y chromium` (the report tests need a real browser)")


def _dump_dom(page: Path, tmp_path: Path) -> str:
    profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<body" in result.stdout, result.stderr[-2000:]
    return result.stdout


class Dom(HTMLParser):
    """Every element (tag, attributes) and the text of the rendered page."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.texts: list[str] = []
        self.feed(markup)
        self.close()
        self.text = "".join(self.texts)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.texts.append(data)

    def tags(self, name: str) -> list[dict]:
        return [attrs for tag, attrs in self.elements if tag == name]


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def run_out(tmp_path_factory) -> Path:
    """One real pipeline run (FnApiRunner) on part of the bundled sample plus the
    hostile and personal-data profiles; the launcher writes report.html."""
    from pipeline.run import run

    base = tmp_path_factory.mktemp("report_run")
    source = base / "profiles.jsonl"
    with SAMPLE.open(encoding="utf-8") as handle:
        lines = [next(handle).rstrip("\n") for _ in range(SAMPLE_LINES)]
    source.write_text("\n".join(lines + _special_profiles()) + "\n", encoding="utf-8")
    out = base / "out"
    run(["--input", str(source), "--output", str(out), "--runner", "FnApiRunner"])
    assert (out / "report.html").exists(), "the launcher writes report.html at the end of every run"
    return out


@pytest.fixture
def out(run_out, tmp_path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(run_out, copy)
    return copy


# ------------------------------------------------------------------ tests


def test_report_renders_in_chromium(out, tmp_path):
    summary = json.loads((out / "summary.json").read_text())
    page = Path(write_report(str(out)))
    dom_text = _dump_dom(page, tmp_path)
    dom = Dom(dom_text)

    # The ten-second summary shows the run's numbers.
    for key in ("records_read", "records_rejected", "clusters", "profiles_merged_away", "merge_requests",
                "clusters_held", "profiles_under_review"):
        match = re.search(rf'data-key="{key}"[^>]*>\s*<div class="value">([^<]*)</div>', dom_text)
        assert match, key
        assert match.group(1) == f"{summary[key]:,}", key
    assert summary["records_rejected"] >= 3  # the long, the wrongly typed and the non-JSON line

    # At least one cluster table: one column per profile, the main marked, kept values marked.
    tables = dom.tags("table")
    assert any("cluster-table" in t.get("class", "") for t in tables)
    cluster = re.search(r'<table class="cluster-table">.*?</table>', dom_text, re.S).group(0)
    assert "\u2605 main" in html.unescape(cluster)
    assert re.search(r'<td class="[^"]*win', cluster)
    for field in ("FirstName", "LastName", "ProfileType"):
        assert f'<th class="field">{field}</th>' in cluster

    # Charts: inline SVG with bars, the thresholds drawn, the model's weights, the waterfalls.
    svgs = dom.tags("svg")
    assert len(svgs) >= 10
    assert any(a.get("class") == "threshold-match" for a in dom.tags("line"))
    assert any(a.get("class") == "threshold-review" for a in dom.tags("line"))
    assert len(dom.tags("rect")) > 50
    assert any("waterfall" in a.get("class", "") for a in svgs)
    for heading in ("Pair scores", "Cluster sizes", "Candidate pairs per blocking rule", "The estimated model",
                    "Review queue", "Rejected records"):
        assert heading in dom.text
    # Self-contained: nothing is loaded from anywhere.
    source = page.read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", source)
    assert "@import" not in source and "url(" not in source


def test_hostile_content_is_only_text(out, tmp_path):
    """report.html (sampled clusters, review queue, rejected lines) and report_all.html
    (every cluster) render hostile values as text and nothing else."""
    pages = {"report": Path(write_report(str(out))), "all": Path(write_report_all(str(out)))}
    doms = {}
    for key, page in pages.items():
        source = page.read_text(encoding="utf-8")
        assert "<script" not in source.lower()
        dom = doms[key] = Dom(_dump_dom(page, tmp_path))
        names = {tag for tag, _ in dom.elements}
        assert not names & {"script", "img", "iframe", "object", "embed", "form", "base", "link", "foreignobject"}
        for tag, attrs in dom.elements:
            for name, value in attrs.items():
                assert not name.lower().startswith("on"), (key, tag, name, value)
                assert "javascript:" not in (value or "").lower(), (key, tag, name, value)
            if tag == "svg":
                assert "chart" in attrs.get("class", ""), attrs  # only the report's own charts
        # Bidi overrides are shown as a marker, never applied.
        assert "\u202e" not in dom.text
    # Every hostile string is on the full page, as text; the hostile profiles were
    # merged, so they are in a side-by-side table.
    for value in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '"><svg onload=alert(1)>',
                  "javascript:alert(1)", "abc\u27e8U+202E\u27e9gnp.exe"):
        assert value in doms["all"].text, value
    source = pages["all"].read_text(encoding="utf-8")
    assert re.search(r'<table class="cluster-table">(?:(?!</table>).)*alert\(1\)', source, re.S), \
        "the hostile profiles are shown side by side"
    # Rejected lines: the 20,000-character value's start, clipped; a script tag as text.
    assert "LONGAAAAAAAAAA" in doms["report"].text
    assert LONG not in doms["report"].text
    assert "this is not json <script>alert(1)</script>" in doms["report"].text


def _normalised(text: str) -> str:
    return html.unescape(text).lower()


def test_redact_hides_personal_data(out, tmp_path):
    pages = [Path(write_report(str(out), redact=True)), Path(write_report_all(str(out), redact=True, page_size=10_000))]
    for page in pages:
        text = _normalised(page.read_text(encoding="utf-8"))
        compact = re.sub(r"[\s().\-/]", "", text)
        for kind, values in PII.items():
            for value in values:
                assert value.lower() not in text, (page.name, kind, value)
        for number in ("442079460958", "2079460958", "14155550134", "4155550134", "19850714", "14071985"):
            assert number not in compact, (page.name, number)
        assert "redacted" in text
    # Masked, but still comparable: Alice's cluster (report_all.html shows every
    # cluster) and Bob's rejected lines (report.html).
    text = _normalised(pages[1].read_text(encoding="utf-8"))
    for masked in ("a***@example.org", "+44 **** **0958", "**** **0958", "1985-**-**", "***"):
        assert masked in text, masked
    text = _normalised(pages[0].read_text(encoding="utf-8"))
    for masked in ("b***@example.net", "+1 **** **0134", "1979-**-**"):
        assert masked in text, masked
    # The rendered page says so too.
    dom = Dom(_dump_dom(pages[0], tmp_path))
    assert "Redacted." in dom.text
    # Without --redact the values are there (the test data is really in the report).
    plain = _normalised(Path(write_report_all(str(out))).read_text(encoding="utf-8"))
    assert "alice.wonder@example.org" in plain and "12 rabbit hole lane" in plain


def test_redacted_capped_block_keys_hide_street_lines_and_account_numbers():
    from pipeline.report import Views
    from transforms.model import default_model

    model = default_model()
    views = Views(Redactor(True), model, {"match": 0.95, "review": 0.5}, None)
    key = views.block_key("postcode+street+first_initial", "NW16XE + flat 1 221b baker street + a")
    assert "baker" not in key and key.endswith("*** + a")
    assert "ACC-77" not in views.block_key("account_number", "ACC-7788")
    assert views.block_key("phone", "+442079460958") == "+44 **** **0958"
    plain = Views(Redactor(False), model, {"match": 0.95, "review": 0.5}, None)
    assert plain.block_key("postcode+street+first_initial", "NW16XE + 1 baker st + a") == "NW16XE + 1 baker st + a"


def test_a_field_kept_from_a_profile_not_shown_keeps_its_row_and_value():
    from pipeline.report import Views
    from transforms.model import default_model

    ids = [f"{n:032x}" for n in range(1, 16)]
    profiles = [{"ProfileId": i, "FirstName": "Desmond"} for i in ids]
    profiles[-1].update(MiddleName="Quincy", Attributes={"tier": "gold"})
    record = {"main": ids[0], "members": ids, "profiles": profiles, "edges": [], "requests": [{}],
              "choices": {"FirstName": {"source": ids[0], "reason": "main"},
                          "MiddleName": {"source": ids[-1], "reason": "main has none"},
                          "Attributes": {"tier": {"source": ids[-1], "reason": "main has none"}}}}
    for redact, shown in ((False, "Quincy"), (True, "Quincy")):
        view = Views(Redactor(redact), default_model(), {"match": 0.95, "review": 0.5}, None).cluster(record, max_columns=12)
        rows = {row["field"]: row for row in view["rows"]}
        assert view["hidden_columns"] == 3
        assert rows["MiddleName"]["source_hidden"] and rows["MiddleName"]["hidden_lines"] == [shown]
        assert rows["Attributes.tier"]["hidden_lines"] == ["gold"]
        assert not rows["FirstName"]["source_hidden"]


def test_masks():
    assert mask_email("julia.braun@gmail.com") == "j***@gmail.com"
    assert mask_phone("+44 20 7946 1346") == "+44 **** **1346"
    assert mask_phone("0044 20 7946 1346 ext. 12") == "+44 **** **1346"
    assert mask_phone("020 7946 1346") == "**** **1346"
    assert mask_date("23/04/1980") == "1980-**-**"
    assert mask_date("19800423") == "1980-**-**"
    assert mask_date("n/a") == "****-**-**"
    scrubbed = scrub_text("mail a.b@c.de or +1 (415) 555-0134, born 23 Apr 1980; seen 2020-03-27T20:49:20Z "
                          "id 0510d798b431da1d80c3e7c25e2488de")
    assert "a.b@c.de" not in scrubbed and "555-0134" not in scrubbed and "23 Apr" not in scrubbed
    assert "2020-03-27T20:49:20Z" in scrubbed and "0510d798b431da1d80c3e7c25e2488de" in scrubbed
    raw = Redactor(True).raw('{"Address": {"Address1": "1 Main St"}, "BirthDate": "1980-04-23T00:00:00Z"}')
    assert "Main St" not in raw and "04-23" not in raw
    assert Redactor(False).field("EmailAddress", "x@y.z") == "x@y.z"


def test_scrub_text_reads_a_long_unbroken_value_in_one_pass():
    """A value of a field the model does not know may be megabytes with no space or "@". Trying an
    address from each of its positions took time in the square of its length (a day for 5 MB); the
    alarm only stops a regression from hanging the tests."""
    import signal

    def too_long(*_):
        raise TimeoutError("scrub_text did not finish a 4 MB value in 60 s")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(60)
    try:
        assert scrub_text("x" * 4_000_000) == "x" * 4_000_000
        masked = scrub_text("y" * 500_000 + "@example.com and a.b@c.de")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert masked == f"{mask_email('y' * 500_000 + '@example.com')} and {mask_email('a.b@c.de')}"
    assert "yy" not in masked and "a.b@" not in masked
    assert scrub_text("foo@bar@baz.com, <x@y.z>") == f"{mask_email('foo@bar')}@baz.com, <{mask_email('x@y.z')}>"


def _synthetic_out(directory: Path, clusters: int, seed: int = 1) -> int:
    """A run's outputs at the scale of ~100k profiles, written directly."""
    rng = random.Random(seed)
    directory.mkdir(parents=True)
    comparisons = ["first_name", "last_name", "birth_date", "email", "phone", "location", "gender"]
    profiles_total = 0
    with (directory / "clusters.jsonl").open("w", encoding="utf-8") as handle:
        for c in range(clusters):
            size = 50 if c % 5000 == 0 else rng.choice([2, 2, 2, 2, 3, 3, 4, 5])
            ids = [f"{c:016x}{i:016x}" for i in range(size)]
            profiles_total += size
            profiles = [{"ProfileId": pid, "FirstName": f"First{c}", "LastName": f"Last{c}",
                         "EmailAddress": f"person{c}.{i}@example.com", "PhoneNumber": f"+1 212 555 {c % 10000:04d}",
                         "BirthDate": "1980-01-01", "ProfileType": "PROFILE",
                         "Address": {"Address1": f"{c} Main Street", "City": "Springfield", "Country": "US"},
                         "Attributes": {"source": "crm", "note": "x" * 200}} for i, pid in enumerate(ids)]
            edges = [{"a": ids[0], "b": other, "weight": rng.uniform(5, 40), "probability": 0.999,
                      "blocked_by": [], "fields": {name: {"level": "exact", "weight": rng.uniform(-3, 10)}
                                                   for name in comparisons}} for other in ids[1:]]
            edges += [{"a": a, "b": b, "weight": 1.0, "probability": 0.6, "blocked_by": [], "fields": {}}
                      for a, b in zip(ids[1:], ids[2:])]
            choices = {f: {"source": ids[0], "reason": "main profile's value kept (present)"}
                       for f in ("FirstName", "LastName", "EmailAddress", "PhoneNumber", "BirthDate", "Address")}
            handle.write(json.dumps({"kind": "merge", "cluster_id": ids[0], "main": ids[0], "main_reason": "most complete",
                                     "members": ids, "profiles": profiles, "edges": edges, "choices": choices,
                                     "requests": [{"MainProfileId": ids[0]}], "split_off": []}) + "\n")
    with (directory / "review.jsonl").open("w", encoding="utf-8") as handle:
        for n in range(20_000):
            handle.write(json.dumps({"kind": "pair", "a": f"{n:032x}", "b": f"{n + 1:032x}", "rule": "phone",
                                     "weight": rng.uniform(0, 6), "probability": rng.uniform(0.5, 0.99),
                                     "reasons": ["guard: different first names"],
                                     "fields": {name: {"level": "else", "weight": -1.0} for name in comparisons}}) + "\n")
    with (directory / "rejected.jsonl").open("w", encoding="utf-8") as handle:
        for n in range(2_000):
            handle.write(json.dumps({"file": "in.jsonl", "line": n, "reason": "not valid JSON: unexpected character",
                                     "record": "{" + "z" * 1999}) + "\n")
    summary = {"records_read": profiles_total + 2_000, "records_rejected": 2_000, "profiles_valid": profiles_total,
               "clusters": clusters, "clusters_held": 0, "merge_requests": clusters,
               "profiles_merged_away": profiles_total - clusters, "profiles_under_review": 20_000,
               "candidate_pairs_per_rule": {"phone": 50_000, "email": 40_000},
               "capped_blocks_largest": [{"rule": "phone", "key": "+18005550199", "size": 400, "pairs_not_made": 79_000}] * 50}
    (directory / "summary.json").write_text(json.dumps(summary))
    return profiles_total


def test_report_stays_small_at_scale(tmp_path):
    out = tmp_path / "big"
    profiles = _synthetic_out(out, clusters=30_000)
    assert profiles > 80_000
    started = time.monotonic()
    page = Path(write_report(str(out)))
    elapsed = time.monotonic() - started
    size = page.stat().st_size
    print(f"report of {profiles:,} profiles in 30,000 clusters: {size / 1e6:.2f} MB in {elapsed:.1f} s")
    assert size < 5_000_000
    text = page.read_text(encoding="utf-8")
    assert "30,000 merge groups" in text
    assert text.count('<article class="cluster"') <= 75
    assert "report_all.html" in text  # the way to see every cluster


def test_apply_run_and_missing_files(tmp_path):
    """Only summary.json (an apply run with a score histogram): the page still renders."""
    out = tmp_path / "apply"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps({
        "records_read": 12, "records_rejected": 0, "clusters": 3, "profiles_merged_away": 4, "merge_requests": 3,
        "thresholds": {"match": 0.95, "review": 0.6},
        "score_histogram": {"bins": list(range(-10, 31, 5)), "counts": [5, 9, 20, 4, 3, 2, 6, 8]},
        "apply": {"merged": 2, "already_applied": 1, "skipped": 0, "failed": 0, "seconds": 1.5}}))
    text = Path(write_report(str(out))).read_text(encoding="utf-8")
    assert "apply run" in text and "already applied" in text
    assert "match threshold 0.95" in text and "review threshold 0.6" in text
    assert "all scored pairs" in text
    assert "model.json is missing" in text


def test_cli_writes_every_cluster(out):
    result = subprocess.run([sys.executable, "-m", "pipeline.report", str(out), "--all"], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    merges = sum(1 for line in (out / "clusters.jsonl").open() if json.loads(line)["kind"] == "merge")
    everything = (out / "report_all.html").read_text(encoding="utf-8")
    assert everything.count('<table class="cluster-table">') == merges
    assert 'href="report_all.html"' in (out / "report.html").read_text(encoding="utf-8")


def test_all_pages(out):
    records = sum(1 for _ in (out / "clusters.jsonl").open())
    write_report_all(str(out), page_size=10)
    pages = sorted(out.glob("report_all*.html"))
    assert len(pages) == -(-records // 10)
    merges = sum(1 for line in (out / "clusters.jsonl").open() if json.loads(line)["kind"] == "merge")
    assert sum(p.read_text(encoding="utf-8").count('<table class="cluster-table">') for p in pages) == merges
    assert 'href="report_all_2.html"' in (out / "report_all.html").read_text(encoding="utf-8")
    write_report_all(str(out), page_size=records)  # fewer pages: the old ones go
    assert [p.name for p in out.glob("report_all*.html")] == ["report_all.html"]


def test_a_guard_settled_by_a_member_reads_as_settled(tmp_path):
    """A member kept in spite of a guard with the main (another member vouched for it): its edge
    to the main says which member settled the guard and on what, not "blocked"."""
    from pipeline.report import short_id
    from tests.test_cluster import _household, _resolve_default
    from tests.helpers import fitted_model
    from transforms.compare import Scorer

    records = _resolve_default(list(_household()), Scorer(fitted_model(default_guards=True)))
    [group] = [r for r in records if r["kind"] == "merge"]
    [vouched] = group["vouched"]
    out = tmp_path / "vouched"
    out.mkdir()
    with (out / "clusters.jsonl").open("w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    text = Path(write_report_all(str(out))).read_text(encoding="utf-8")
    caption = re.search(r"guard: a family name and a household: settled by member <code>(\w+)</code>, "
                        r"which matches (\S+) on ([^<]+)</span>", text)
    assert caption, "the settled edge is not explained"
    assert caption.group(1) == vouched["by"]
    assert html.unescape(caption.group(2)) == short_id(vouched["profile"])
    assert html.unescape(caption.group(3)) == "birth_date \u00b7 exact, email \u00b7 same address"
    assert "blocked: guard" not in text


@pytest.mark.parametrize("kind, value, hidden", [
    ("phone field", "see second.annabel@example.com", ["second.annabel"]),                # no digits: all of it
    ("email field", "a.person@example.com, 217-555-0143", ["a.person", "555-0143"]),      # a number beside it
    ("text", "DOB 08-Jul-1991, cell 217\u2013555\u20130166", ["08-Jul", "555\u20130166"]),  # dashes of every kind
    ("text", "born 23rd April 1980", ["23rd April"]),
    ("text", "23-Apr-1980", ["23-Apr"]),
    ("raw", '{"ProfileId": "x", "Address": "221B Baker Street, London", "ShippingAddress": ["17 Cherry Tree Lane"]}',
     ["Baker", "Cherry"]),                                   # an address written as a string or a list
    ("raw", "{'Address1': '10 Downing Street', 'BirthDate': '1980-01-02'}", ["Downing", "01-02"]),  # not JSON
    ("raw", '{"Address1": "12 Main St", "BirthDate":"23-Apr-1980", "Fir', ["Main St", "23-Apr"]),   # clipped
])
def test_redaction_leaves_no_contact_data_in_odd_places(kind, value, hidden):
    r = Redactor(True)
    shown = {"phone field": lambda v: r.field("PhoneNumber", v), "email field": lambda v: r.field("EmailAddress", v),
             "text": r.text, "raw": r.raw}[kind](value)
    assert not [part for part in hidden if part in shown], shown
    # timestamps (record times a reviewer needs) stay in free text
    assert r.text("last_updated 2024-01-02T10:00:00Z") == "last_updated 2024-01-02T10:00:00Z"


def test_redacted_report_masks_attribute_keys(tmp_path):
    """An attribute key is the export's own text: an email in it is masked like one in a value."""
    from pipeline.report import Views
    views = Views(Redactor(True), {}, {"match": 0.95}, None)
    profiles = [{"ProfileId": _pid(1), "Attributes": {"optin john.doe@example.com": "yes"}},
                {"ProfileId": _pid(2), "Attributes": {"optin john.doe@example.com": "yes"}}]
    shown = views.cluster({"main": _pid(1), "profiles": profiles, "choices": {}, "edges": []})
    assert "john.doe" not in json.dumps(shown) and any("j***@example.com" in row["field"] for row in shown["rows"])


@pytest.mark.parametrize("hidden", ["\u200b", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u2028"])
def test_characters_that_show_nothing_are_marked(hidden):
    """"Za\\u200bra" would look like "Zara" on the page: a reviewer comparing two profiles must see it."""
    from pipeline.report import _visible
    assert _visible(f"Za{hidden}ra") == f"Za\u27e8U+{ord(hidden):04X}\u27e9ra"


def test_a_rejected_profile_in_a_list_is_placed_by_line_and_item_and_input_warnings_are_shown(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps({"records_read": 3, "records_rejected": 2, "input_warnings": [
        "--input 'exports' reads the files directly in it; 2 file(s) in its sub-folders are not read <b>"]}))
    (out / "rejected.jsonl").write_text(
        json.dumps({"file": "a.json", "line": 4, "item": 17, "reason": "not a JSON object (a int)", "record": "5"}) + "\n"
        + json.dumps({"file": "b.jsonl", "line": 9, "reason": "not valid JSON: x", "record": "{"}) + "\n")
    text = Path(write_report(str(out))).read_text(encoding="utf-8")
    assert '<td class="num">4 item 17</td>' in text
    assert '<td class="num">9</td>' in text
    assert "<b>Input:</b> --input &#39;exports&#39; reads the files directly in it; 2 file(s) in its sub-folders are not read &lt;b&gt;." in text
