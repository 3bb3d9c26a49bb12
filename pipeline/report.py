"""The review report: OUT/report.html, one self-contained page a person reads before
anything irreversible happens.

    python -m pipeline.report OUT_DIR [--redact] [--all] [--sample_size 25] [--seed 7]

It is written from the run's outputs (``summary.json``, ``clusters.jsonl``,
``review.jsonl``, ``rejected.jsonl``, ``model.json``, ``merge_plan.jsonl``), local or
``s3://`` (Beam filesystems). The page stays small at any scale: the JSON Lines files
are streamed once and only what is shown is kept -- the largest clusters, those whose
weakest link is closest to the match threshold, and a seeded random sample. ``--all``
also writes every cluster to ``report_all.html`` (paginated: ``report_all_2.html``, ...),
streamed through the template, never held in memory.

The page is rendered by Jinja2 with autoescaping on; charts are inline SVG drawn by a
template macro from geometry computed in :mod:`pipeline.report_charts`. It needs no
JavaScript and loads nothing from outside (its Content-Security-Policy forbids it).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import heapq
import itertools
import math
import random
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import jinja2
import markupsafe
import orjson
from apache_beam.io.filesystems import FileSystems

from pipeline import report_charts as charts
from pipeline.redact import Redactor, mask_date, mask_email, mask_phone

DEFAULT_THRESHOLDS = {"match": 0.95, "review": 0.5}  # the job's defaults, for outputs that predate summary["thresholds"]
REPORT = "report.html"
REPORT_ALL = "report_all.html"
# How much of one value the page shows; longer values are clipped, with the length said.
MAX_VALUE_CHARS = 300
# Columns (profiles) and edges shown per cluster on the sampled page.
MAX_COLUMNS = 12
MAX_EDGES = 3
# Clusters per page of report_all.html.
ALL_PAGE_SIZE = 300

FIELD_ORDER = [
    "ProfileType", "PartyType", "PartyTypeString", "AccountNumber", "FirstName", "MiddleName", "LastName",
    "BirthDate", "Gender", "GenderString", "BusinessName", "EmailAddress", "PersonalEmailAddress",
    "BusinessEmailAddress", "PhoneNumber", "MobilePhoneNumber", "HomePhoneNumber", "BusinessPhoneNumber",
    "Address", "ShippingAddress", "MailingAddress", "BillingAddress", "AdditionalInformation",
]
ADDRESS_ORDER = ["Address1", "Address2", "Address3", "Address4", "City", "PostalCode", "County", "State",
                 "Province", "Country"]
APPLY_FIRST = ["merged", "already_applied", "skipped", "failed"]

# Characters that reorder or hide text (bidi overrides, isolates, marks) and control
# characters: shown as a visible marker, never passed through to the page.
# control and direction characters, and characters that show nothing: zero-width spaces and joiners,
# the word joiner and invisible operators, the byte order mark, the soft hyphen, line and paragraph
# separators ("Za\u200bra" would look like "Zara")
_INVISIBLE = re.compile("[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
                        "\u2060-\u2064\u2066-\u2069\ufeff]")


def _visible(value):
    """Jinja2 ``finalize``: every ``{{ }}`` value passes here before it is escaped.

    Markup (a macro's output) was built from values that already passed here."""
    if isinstance(value, markupsafe.Markup):
        return value
    if isinstance(value, str):
        return clip(_INVISIBLE.sub(lambda m: f"\u27e8U+{ord(m.group(0)):04X}\u27e9", value), MAX_VALUE_CHARS * 4)
    return "" if value is None else value


def clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\u2026 [{len(text) - limit:,} more characters]"


# ------------------------------------------------------------------ reading


def _path(out_dir: str, name: str) -> str:
    return FileSystems.join(out_dir, name)


def _exists(path: str) -> bool:
    try:
        return FileSystems.exists(path)
    except Exception:  # an unreachable store reads as missing; the page says so
        return False


def _read_json(path: str, default):
    if not _exists(path):
        return default
    with FileSystems.open(path) as handle:
        try:
            return orjson.loads(handle.read())
        except orjson.JSONDecodeError:
            return default


def _read_lines(path: str) -> Iterator[dict]:
    """Stream a JSON Lines file record by record (unparseable lines are skipped)."""
    if not _exists(path):
        return
    with FileSystems.open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def _count_lines(path: str) -> int | None:
    if not _exists(path):
        return None
    with FileSystems.open(path) as handle:
        return sum(1 for line in handle if line.strip())


def weight_of(probability: float) -> float:
    """Match weight (log2 of the odds) of a probability."""
    if probability >= 1:
        return math.inf
    if probability <= 0:
        return -math.inf
    return math.log2(probability / (1 - probability))


def level_weight(level: dict) -> float | None:
    m, u = level.get("m"), level.get("u")
    if isinstance(m, (int, float)) and isinstance(u, (int, float)) and m > 0 and u > 0:
        return math.log2(m / u)
    return 0.0 if level.get("kind") == "null" else None


class _WeightCounts:
    """Counts of match weights in unit-wide bins (keys are the bins' lower edges)."""

    def __init__(self):
        self.counts: Counter = Counter()

    def add(self, weight) -> None:
        if isinstance(weight, (int, float)) and math.isfinite(weight):
            self.counts[math.floor(weight)] += 1


class _Keep:
    """The k records with the largest key, streaming (ties keep the earlier record)."""

    def __init__(self, k: int):
        self.k = k
        self.heap: list = []
        self.n = 0

    def add(self, key, record) -> None:
        self.n += 1
        item = (key, -self.n, record)
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, item)
        elif self.k and item[:2] > self.heap[0][:2]:
            heapq.heapreplace(self.heap, item)

    def best_first(self) -> list:
        return [record for _, _, record in sorted(self.heap, key=lambda item: (item[0], item[1]), reverse=True)]


class _Reservoir:
    """A uniform random sample of k records from a stream (algorithm R), seeded."""

    def __init__(self, k: int, seed: int):
        self.k = k
        self.rng = random.Random(seed)
        self.items: list = []
        self.seen = 0

    def add(self, record) -> None:
        self.seen += 1
        if len(self.items) < self.k:
            self.items.append(record)
        else:
            j = self.rng.randrange(self.seen)
            if j < self.k:
                self.items[j] = record


def _weakest_main_edge(record: dict) -> float | None:
    main = record.get("main")
    weights = [e.get("weight") for e in record.get("edges") or [] if main in (e.get("a"), e.get("b"))]
    weights = [w for w in weights if isinstance(w, (int, float))]
    return min(weights) if weights else None


class ClusterDigest:
    """One pass over clusters.jsonl: counts, and the few clusters the page shows."""

    def __init__(self, k: int, seed: int, match_weight: float):
        self.match_weight = match_weight
        self.largest = _Keep(k)
        self.closest = _Keep(k)
        self.sample = _Reservoir(k, seed)
        self.sizes: Counter = Counter()
        self.held_sizes: Counter = Counter()
        self.kinds: Counter = Counter()
        self.edge_weights = _WeightCounts()

    def add(self, record: dict) -> None:
        kind = record.get("kind")
        self.kinds[kind] += 1
        if kind == "held":
            self.held_sizes[record.get("size") or len(record.get("members") or [])] += 1
            return
        if kind != "merge":
            return
        size = len(record.get("members") or [])
        self.sizes[size] += 1
        for edge in record.get("edges") or []:
            self.edge_weights.add(edge.get("weight"))
        self.largest.add(size, record)
        weakest = _weakest_main_edge(record)
        if weakest is not None and math.isfinite(self.match_weight):
            self.closest.add(-abs(weakest - self.match_weight), record)
        self.sample.add(record)


class ReviewDigest:
    """One pass over review.jsonl: counts by kind and reason, and a sample to show."""

    def __init__(self, k: int, seed: int):
        self.kinds: Counter = Counter()
        self.reasons: Counter = Counter()
        self.pairs = _Reservoir(k, seed)
        self.held: list = []
        self.split: list = []
        self.k = k
        self.weights = _WeightCounts()

    def add(self, record: dict) -> None:
        kind = record.get("kind")
        self.kinds[kind] += 1
        if kind == "pair":
            self.weights.add(record.get("weight"))
            for reason in record.get("reasons") or ["(no reason given)"]:
                self.reasons[reason_category(str(reason))] += 1
            self.pairs.add(record)
        elif kind == "held_cluster":
            self.reasons["cluster too large to merge (held)"] += 1
            if len(self.held) < self.k:
                self.held.append(record)
        elif kind == "split_off":
            self.reasons["split off its group"] += 1
            if len(self.split) < self.k:
                self.split.append(record)


def reason_category(reason: str) -> str:
    """A reason without the numbers that make every instance different."""
    reason = re.sub(r"^probability [0-9.e-]+ ", "probability ", reason)
    return re.sub(r"\b\d+(?:\.\d+)?\b", "N", reason) if reason.startswith(("wrong", "not valid")) else reason


# ------------------------------------------------------------------ views


class Views:
    """Turns records into what the template shows, with values masked when redacting."""

    def __init__(self, redactor: Redactor, model: dict, thresholds: dict, prior: float | None):
        self.r = redactor
        self.match_weight = weight_of(thresholds["match"])
        self.comparison_order = [c.get("name") for c in model.get("comparisons") or []]
        self.rule_fields = {str(r.get("name")): list(r.get("fields") or []) for r in model.get("blocking_rules") or []
                            if isinstance(r, dict)}
        self.prior = prior
        self._anchors = itertools.count(1)

    # values -------------------------------------------------------------

    def value_lines(self, field: str, value) -> list[str]:
        r = self.r
        if value is None or value == "" or value == {} or value == []:
            return []
        if isinstance(value, dict) and field.endswith("Address"):
            keys = [k for k in ADDRESS_ORDER if k in value] + sorted(k for k in value if k not in ADDRESS_ORDER)
            return [clip(str(r.field(k, value[k]))) for k in keys if value[k] not in (None, "")]
        if field == "EngagementPreferences" and isinstance(value, dict):
            lines = []
            for channel, entries in value.items():
                for entry in entries if isinstance(entries, list) else [entries]:
                    if isinstance(entry, dict):
                        target = entry.get("ProfileId")
                        lines.append(clip(
                            f"{r.text(str(channel))}: {r.text(str(entry.get('ContactType', '')))} "
                            f"{r.contact(str(entry.get('KeyValue', '')))}"
                            + (f" ({r.text(str(entry.get('KeyName')))})" if entry.get("KeyName") else "")
                            + (f" \u2192 {short_id(str(target))}" if target else "")))
                    else:
                        lines.append(clip(r.text(orjson.dumps(entry).decode())))
            return lines
        if isinstance(value, str):
            return [clip(str(r.field(field, value)))]
        if isinstance(value, (dict, list)):
            return [clip(r.text(orjson.dumps(value).decode()))]
        return [clip(str(value))]

    # clusters -------------------------------------------------------------

    def cluster(self, record: dict, tags: Iterable[str] = (), max_columns: int | None = MAX_COLUMNS,
                max_edges: int | None = MAX_EDGES) -> dict:
        r = self.r
        main = record.get("main")
        profiles = [p for p in record.get("profiles") or [] if isinstance(p, dict)]
        profiles.sort(key=lambda p: p.get("ProfileId") != main)  # main first, others as listed
        hidden_columns = 0
        by_id = {str(p.get("ProfileId", "")): p for p in profiles}
        if max_columns is not None and len(profiles) > max_columns:
            hidden_columns = len(profiles) - max_columns
            profiles = profiles[:max_columns]
        ids = [str(p.get("ProfileId", "")) for p in profiles]
        choices = record.get("choices") or {}
        columns = [{"id": pid, "short": short_id(pid), "main": pid == main} for pid in ids]

        keys = set()
        attribute_keys = set()
        for p in profiles:
            keys.update(k for k in p if k not in ("ProfileId", "Attributes", "EngagementPreferences"))
            if isinstance(p.get("Attributes"), dict):
                attribute_keys.update(p["Attributes"])
        # a field whose kept value comes from a profile not shown still gets its row (and that value)
        shown = set(ids)
        keys.update(f for f, c in choices.items() if f not in ("Attributes", "EngagementPreferences")
                    and isinstance(c, dict) and c.get("source") not in (None, *shown))
        attribute_choices = choices.get("Attributes") if isinstance(choices.get("Attributes"), dict) else {}
        attribute_keys.update(k for k, c in attribute_choices.items()
                              if isinstance(c, dict) and c.get("source") not in (None, *shown))
        fields = [f for f in FIELD_ORDER if f in keys] + sorted(keys - set(FIELD_ORDER))
        rows = []
        for f in fields:
            choice = choices.get(f) if isinstance(choices.get(f), dict) else {}
            rows.append(self._row(f, [p.get(f) for p in profiles], ids, choice, by_id=by_id))
        for key in sorted(attribute_keys):
            values = [p["Attributes"].get(key) if isinstance(p.get("Attributes"), dict) else None for p in profiles]
            choice = attribute_choices.get(key) if isinstance(attribute_choices.get(key), dict) else {}
            rows.append(self._row(f"Attributes.{key}", values, ids, choice, attribute=True, by_id=by_id))
        ep_choice = choices.get("EngagementPreferences") if isinstance(choices.get("EngagementPreferences"), dict) else {}
        if any(p.get("EngagementPreferences") for p in profiles) or ep_choice.get("source") not in (None, *shown):
            rows.append(self._row("EngagementPreferences", [p.get("EngagementPreferences") for p in profiles], ids,
                                  ep_choice, by_id=by_id))
        rows = [row for row in rows if any(cell["lines"] for cell in row["cells"]) or row["hidden_lines"]]
        empty = sorted(f for f, c in choices.items() if f not in ("Attributes", "EngagementPreferences")
                       and isinstance(c, dict) and "source" in c and c["source"] is None and f not in keys)

        edges = [e for e in record.get("edges") or [] if isinstance(e, dict)]
        to_main = [e for e in edges if main in (e.get("a"), e.get("b"))] or edges
        to_main.sort(key=lambda e: e.get("weight") if isinstance(e.get("weight"), (int, float)) else math.inf)
        shown = to_main if max_edges is None else to_main[:max_edges]
        weakest = _weakest_main_edge(record)
        vouched = {str(v.get("profile")): v for v in record.get("vouched") or [] if isinstance(v, dict)}
        return {
            "anchor": f"c{next(self._anchors)}",
            "kind": "merge",
            "cluster_id": str(record.get("cluster_id", main)),
            "main": str(main),
            "main_short": short_id(str(main)),
            "main_reason": r.text(str(record.get("main_reason", ""))),
            "size": len(record.get("members") or []),
            "tags": list(tags),
            "weakest": weakest,
            "weakest_probability": _probability_of(weakest),
            "columns": columns,
            "hidden_columns": hidden_columns,
            "rows": rows,
            "empty_fields": empty,
            "edges": [self.edge(e, vouched=vouched) for e in shown],
            "edges_total": len(edges),
            "edges_hidden": len(to_main) - len(shown),
            "requests": len(record.get("requests") or []),
            "split_off": [str(s) for s in record.get("split_off") or []],
        }

    def _row(self, field: str, values: list, ids: list[str], choice: dict, attribute: bool = False,
             by_id: dict | None = None) -> dict:
        source = choice.get("source")
        name = field.split(".", 1)[1] if attribute else field

        def lines_of(value) -> list[str]:
            if attribute:
                text = value if isinstance(value, str) else None if value is None else orjson.dumps(value).decode()
                return [clip(self.r.text(text))] if text else []
            return self.value_lines(name, value)

        cells = [{"lines": lines_of(value), "win": source is not None and source == pid} for pid, value in zip(ids, values)]
        hidden = source is not None and source not in ids
        hidden_lines: list[str] = []
        if hidden and by_id and isinstance(by_id.get(source), dict):
            winner = by_id[source]
            attributes = winner.get("Attributes") if isinstance(winner.get("Attributes"), dict) else {}
            hidden_lines = lines_of(attributes.get(name) if attribute else winner.get(name))
        # a field's name is the export's own (an attribute key, a field the model does not know): masked too
        return {"field": self.r.text(field), "cells": cells, "reason": self.r.text(str(choice.get("reason", ""))),
                "source_hidden": hidden, "source_short": short_id(str(source)) if hidden else "",
                "hidden_lines": hidden_lines}

    def edge(self, edge: dict, title: str | None = None, vouched: dict | None = None) -> dict:
        fields = edge.get("fields") if isinstance(edge.get("fields"), dict) else {}
        order = [c for c in self.comparison_order if c in fields] + sorted(c for c in fields if c not in self.comparison_order)
        steps, nodata, notes = [], [], []
        for name in order:
            entry = fields[name] if isinstance(fields[name], dict) else {}
            weight = entry.get("weight") if isinstance(entry.get("weight"), (int, float)) else 0.0
            level = str(entry.get("level", ""))
            if level == "null" and not weight:
                nodata.append(name)
                continue
            steps.append((f"{name} \u00b7 {level}", float(weight)))
            if entry.get("note"):
                notes.append(f"{name}: {entry['note']}")
        total = edge.get("weight") if isinstance(edge.get("weight"), (int, float)) else sum(w for _, w in steps)
        prior = total - sum(w for _, w in steps)
        a, b = str(edge.get("a", "")), str(edge.get("b", ""))
        probability = edge.get("probability")
        heading = title or f"{short_id(a)} \u2194 {short_id(b)}"
        chart = charts.waterfall(steps, ("prior (share of matches)", prior), ("match weight", float(total)),
                                 self.match_weight if math.isfinite(self.match_weight) else None,
                                 f"Field weights for {a} and {b}")
        return {
            "heading": heading, "a": a, "b": b, "weight": total,
            "probability": probability if isinstance(probability, (int, float)) else None,
            "chart": chart, "nodata": nodata, "notes": [self.r.text(n) for n in notes],
            "blocked_by": [self.r.text(str(x)) for x in edge.get("blocked_by") or []],
            **self._settled(edge, vouched or {}),
        }

    def _settled(self, edge: dict, vouched: dict) -> dict:
        """How a guard on this edge was settled by another member (``vouched`` of its group, by profile)."""
        settled_by = edge.get("settled_by")
        if not settled_by:
            return {"settled_by": None}
        about = next((v for v in (vouched.get(str(edge.get("a"))), vouched.get(str(edge.get("b")))) if v), {})
        evidence = about.get("evidence") if isinstance(about.get("evidence"), dict) else {}
        return {"settled_by": str(settled_by), "settled_about": short_id(str(about.get("profile", ""))),
                "settled_evidence": ", ".join(f"{k} \u00b7 {v}" for k, v in sorted(evidence.items())) or "personal evidence"}

    def block_key(self, rule: str, key: str) -> str:
        """A capped block's key (``value + value``, one per field of the rule); contact
        values and birth dates are masked when redacting."""
        if not self.r.enabled:
            return key
        fields = self.rule_fields.get(rule) or []
        parts = key.split(" + ")
        if len(parts) != len(fields):
            fields = [""] * len(parts)
        masked = []
        for name, part in zip(fields, parts):
            if name in ("emails", "email_users") or "@" in part:
                part = mask_email(part) if "@" in part else part[:1] + "***"
            elif name == "phones":
                part = mask_phone(part)
            elif name == "dob":
                part = mask_date(part)
            elif name in ("address", "account"):   # a street line, an account number: shown as the fields are
                part = "***"
            masked.append(self.r.text(part))
        return " + ".join(masked)

    # review queue and rejected ---------------------------------------------

    def review_pair(self, record: dict) -> dict:
        view = self.edge(record)
        view.update({
            "rule": str(record.get("rule", "")),
            "reasons": [self.r.text(str(x)) for x in record.get("reasons") or []],
        })
        profiles = [p for p in record.get("profiles") or [] if isinstance(p, dict)]
        view["side_by_side"] = None
        if profiles:
            side = self.cluster({"main": None, "profiles": profiles, "choices": {}, "edges": []})
            view["side_by_side"] = {"columns": side["columns"], "rows": side["rows"]}
        return view

    def held(self, record: dict) -> dict:
        members = [str(m) for m in record.get("members") or []]
        return {"reason": self.r.text(str(record.get("reason", ""))), "size": record.get("size") or len(members),
                "members": [short_id(m) for m in members[:12]], "more": max(len(members) - 12, 0)}

    def split(self, record: dict) -> dict:
        return {"profile": str(record.get("profile", "")), "reason": self.r.text(str(record.get("reason", ""))),
                "best_match": str(record.get("best_match") or ""), "best_probability": record.get("best_probability")}

    def rejected(self, record: dict) -> dict:
        raw = record.get("record")
        raw = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
        return {"file": str(record.get("file", "")), "line": record.get("line"), "item": record.get("item"),
                "reason": self.r.text(str(record.get("reason", ""))), "record": clip(self.r.raw(raw), 600)}


def short_id(profile_id: str) -> str:
    return profile_id if len(profile_id) <= 14 else profile_id[:6] + "\u2026" + profile_id[-4:]


def _probability_of(weight):
    if weight is None:
        return None
    return 1.0 / (1.0 + 2.0 ** (-weight)) if weight > -1000 else 0.0


# ------------------------------------------------------------------ charts


def _merge_bins(counters: list[Counter], max_bins: int = 70) -> tuple[list[float], list[list[int]]]:
    """Unit-bin counters -> common bin edges and counts, wider bins when the range is large."""
    keys = [k for c in counters for k in c]
    if not keys:
        return [], []
    low, high = min(keys), max(keys) + 1
    width = 1
    while (high - low) / width > max_bins:
        width *= 2
    low = math.floor(low / width) * width
    high = math.ceil(high / width) * width
    edges = list(range(low, high + 1, width))
    series = []
    for counter in counters:
        counts = [0] * (len(edges) - 1)
        for key, n in counter.items():
            counts[(key - low) // width] += n
        series.append(counts)
    return edges, series


def score_chart(summary: dict, clusters: ClusterDigest, review: ReviewDigest, thresholds: dict):
    match_w, review_w = weight_of(thresholds["match"]), weight_of(thresholds["review"])
    markers = [(match_w, f"match threshold {thresholds['match']:g} (weight {match_w:.1f})", "threshold-match"),
               (review_w, f"review threshold {thresholds['review']:g} (weight {review_w:.1f})", "threshold-review")]
    histogram = summary.get("score_histogram")
    if isinstance(histogram, dict) and isinstance(histogram.get("bins"), list) and isinstance(histogram.get("counts"), list) \
            and len(histogram["bins"]) == len(histogram["counts"]) + 1 and histogram["counts"]:
        edges = [float(x) for x in histogram["bins"]]
        counts = [int(x) for x in histogram["counts"]]
        if histogram.get("unit") == "probability":
            markers = [(thresholds["match"], f"match threshold {thresholds['match']:g}", "threshold-match"),
                       (thresholds["review"], f"review threshold {thresholds['review']:g}", "threshold-review")]
            x_label = "match probability"
        else:
            x_label = "match weight (log2 odds that the pair is one customer)"
        chart = charts.histogram(edges, [("all scored pairs", "s-all", counts)], markers,
                                 "Distribution of pair scores", x_label)
        return chart, "Every scored candidate pair."
    edges, series = _merge_bins([clusters.edge_weights.counts, review.weights.counts])
    if not edges:
        return None, "No scored pairs were recorded in this run's outputs."
    merged, reviewed = series
    chart = charts.histogram(edges, [("pairs inside merge groups", "s-merged", merged), ("pairs for review", "s-review", reviewed)],
                             markers, "Distribution of pair scores",
                             "match weight (log2 odds that the pair is one customer)")
    return chart, ("Pairs inside the planned merge groups (every pair of members) and the pairs sent for review. "
                   "Pairs that scored below the review threshold are not listed in this run's outputs, so they are "
                   "not drawn.")


def size_chart(clusters: ClusterDigest):
    if not clusters.sizes and not clusters.held_sizes:
        return None
    sizes = sorted(clusters.sizes)
    if sizes and sizes[-1] - sizes[0] <= 60:
        categories = list(range(sizes[0], sizes[-1] + 1))
    else:
        categories = sizes
    labels = [str(s) for s in categories]
    values = [clusters.sizes.get(s, 0) for s in categories]
    classes = ["bar"] * len(values)
    if clusters.held_sizes:
        labels.append("held")
        values.append(sum(clusters.held_sizes.values()))
        classes.append("held")
    return charts.column_chart(labels, values, "Cluster sizes", "profiles per cluster (held: too large to merge)", classes)


def rules_chart(summary: dict):
    per_rule = summary.get("candidate_pairs_per_rule")
    if not isinstance(per_rule, dict) or not per_rule:
        return None
    items = sorted(((str(k), v) for k, v in per_rule.items() if isinstance(v, (int, float))), key=lambda kv: -kv[1])
    return charts.bar_list([k for k, _ in items], [v for _, v in items], "Candidate pairs per blocking rule")


def model_view(model: dict) -> dict:
    comparisons = []
    weights = [level_weight(level) for c in model.get("comparisons") or [] for level in c.get("levels") or []]
    scale = min(max([abs(w) for w in weights if w is not None] + [1.0]), 25.0)
    for comparison in model.get("comparisons") or []:
        tf = comparison.get("term_frequency") or {}
        levels = []
        for level in comparison.get("levels") or []:
            weight = level_weight(level)
            levels.append({
                "label": str(level.get("label", "")), "kind": str(level.get("kind", "")),
                "m": level.get("m"), "u": level.get("u"), "weight": weight,
                "bar": charts.weight_bar(weight, scale),
                "tf": str(level.get("label")) in (tf.get("levels") or []),
            })
        comparisons.append({"name": str(comparison.get("name", "")), "description": str(comparison.get("description", "")),
                            "levels": levels})
    guards = []
    for guard in model.get("guards") or []:
        guards.append({"name": str(guard.get("name", "")), "description": str(guard.get("description", "")),
                       "when": _conditions(guard.get("when")), "unless": _conditions(guard.get("unless"))})
    estimation = model.get("estimation") if isinstance(model.get("estimation"), dict) else {}
    per_rule = estimation.get("per_blocking_rule") if isinstance(estimation.get("per_blocking_rule"), dict) else {}
    scalars = [(k, v) for k, v in estimation.items() if not isinstance(v, (dict, list)) and v not in ("", None)]
    prior = model.get("prior")
    return {
        "comparisons": comparisons, "guards": guards, "prior": prior if isinstance(prior, (int, float)) else None,
        "prior_weight": weight_of(prior) if isinstance(prior, (int, float)) else None,
        "estimation": scalars,
        "per_rule": [{"rule": str(k), **{f: v.get(f) for f in ("pairs", "match_share", "iterations", "converged")},
                      "left_out": ", ".join(str(x) for x in v.get("left_out") or [])}
                     for k, v in per_rule.items() if isinstance(v, dict)],
    }


def _conditions(conditions) -> str:
    if not isinstance(conditions, dict):
        return ""
    return "; ".join(f"{name} is {' or '.join(str(x) for x in levels)}" for name, levels in conditions.items())


# ------------------------------------------------------------------ the page


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_visible,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt_count
    env.filters["prob"] = lambda p: "" if not isinstance(p, (int, float)) else f"{p:.6f}".rstrip("0").rstrip(".") if p < 1 else "1"
    env.filters["w"] = lambda w: "" if not isinstance(w, (int, float)) or not math.isfinite(w) else f"{w:+.2f}"
    env.filters["sci"] = lambda x: "" if not isinstance(x, (int, float)) else f"{x:.3g}"
    env.filters["px"] = lambda x: f"{x:.1f}".rstrip("0").rstrip(".")
    return env


def _fmt_count(value) -> str:
    if isinstance(value, bool) or value is None:
        return "\u2013" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value == int(value) else f"{value:,.4g}"
    return str(value)


def _thresholds(summary: dict) -> dict:
    given = summary.get("thresholds") if isinstance(summary.get("thresholds"), dict) else {}
    out = {}
    for key, default in DEFAULT_THRESHOLDS.items():
        value = given.get(key)
        out[key] = float(value) if isinstance(value, (int, float)) and 0 < value < 1 else default
    return out


def _summary_cards(summary: dict) -> list[dict]:
    def card(key, label, note="", warn=False):
        value = summary.get(key)
        return {"key": key, "label": label, "value": value, "note": note,
                "cls": "warn" if warn and isinstance(value, (int, float)) and value > 0 else ""}

    in_merges = summary.get("profiles_in_merges")
    return [
        card("records_read", "records read"),
        card("records_rejected", "rejected", "see Rejected records", warn=True),
        card("clusters", "duplicate groups found",
             f"{_fmt_count(in_merges)} profiles in them" if in_merges is not None else ""),
        card("profiles_merged_away", "profiles merged away"),
        card("merge_requests", "MergeProfiles requests"),
        card("clusters_held", "clusters held for review", "too large to merge", warn=True),
        card("profiles_under_review", "profiles under review", "see Review queue", warn=True),
    ]


def _summary_details(summary: dict) -> list[tuple[str, object]]:
    names = [("profiles_valid", "valid profiles"), ("profiles_in_merges", "profiles in merge groups"),
             ("profiles_left_alone", "profiles left alone"), ("profiles_split_off", "profiles split off a group"),
             ("candidate_pairs", "candidate pairs"), ("pairs_scored", "pairs scored"),
             ("pairs_matched", "pairs matched"), ("pairs_for_review", "pairs for review"),
             ("capped_blocks", "capped blocks"), ("model_prior", "prior (share of candidate pairs that match)")]
    return [(label, summary[key]) for key, label in names if key in summary]


def _apply_cards(summary: dict) -> list[tuple[str, object]] | None:
    applied = summary.get("apply")
    if not isinstance(applied, dict):
        return None
    keys = [k for k in APPLY_FIRST if k in applied] + [k for k in applied if k not in APPLY_FIRST]
    return [(k.replace("_", " "), applied[k] if not isinstance(applied[k], (dict, list)) else orjson.dumps(applied[k]).decode())
            for k in keys]


def _sentence(summary: dict) -> str:
    g = summary.get
    if g("records_read") is None:
        return "This run's summary.json is missing; the counts below come from the other files."
    parts = [f"Read {_fmt_count(g('records_read'))} records ({_fmt_count(g('records_rejected', 0))} rejected)."]
    if g("clusters") is not None:
        parts.append(f"Found {_fmt_count(g('clusters'))} groups of duplicates holding {_fmt_count(g('profiles_in_merges'))} "
                     f"profiles: merging them removes {_fmt_count(g('profiles_merged_away'))} profiles with "
                     f"{_fmt_count(g('merge_requests'))} MergeProfiles requests.")
    if g("clusters_held") is not None or g("profiles_under_review") is not None:
        parts.append(f"{_fmt_count(g('clusters_held', 0))} groups were too large to merge and "
                     f"{_fmt_count(g('profiles_under_review', 0))} profiles need a person's review.")
    return " ".join(parts)


def _render(template: str, context: dict, path: str) -> str:
    env = _environment()
    buffer: list[str] = []
    size = 0
    with FileSystems.create(path, mime_type="text/html") as handle:
        for chunk in env.get_template(template).generate(**context):
            buffer.append(chunk)
            size += len(chunk)
            if size > 1 << 16:
                handle.write("".join(buffer).encode("utf-8"))
                buffer, size = [], 0
        handle.write("".join(buffer).encode("utf-8"))
    return path


def _common(out_dir: str, redact: bool) -> tuple[dict, dict, dict, Views]:
    summary = _read_json(_path(out_dir, "summary.json"), {})
    summary = summary if isinstance(summary, dict) else {}
    model = _read_json(_path(out_dir, "model.json"), {})
    model = model if isinstance(model, dict) else {}
    thresholds = _thresholds(summary)
    prior = model.get("prior") if isinstance(model.get("prior"), (int, float)) else summary.get("model_prior")
    return summary, model, thresholds, Views(Redactor(redact), model, thresholds, prior)


def _header(out_dir: str, summary: dict, thresholds: dict, redact: bool) -> dict:
    return {
        "out_dir": out_dir,
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "redacted": redact,
        "apply_run": isinstance(summary.get("apply"), dict),
        "thresholds": thresholds,
    }


def write_report(out_dir: str, redact: bool = False, sample_size: int = 25, seed: int = 7) -> str:
    """Write OUT_DIR/report.html from the run's outputs; return its path."""
    summary, model, thresholds, views = _common(out_dir, redact)
    match_weight = weight_of(thresholds["match"])

    clusters = ClusterDigest(sample_size, seed, match_weight)
    for record in _read_lines(_path(out_dir, "clusters.jsonl")):
        clusters.add(record)
    review = ReviewDigest(sample_size * 2, seed)
    for record in _read_lines(_path(out_dir, "review.jsonl")):
        review.add(record)
    rejected_total, rejected_reasons, rejected_shown = 0, Counter(), []
    for record in _read_lines(_path(out_dir, "rejected.jsonl")):
        rejected_total += 1
        rejected_reasons[views.r.text(reason_category(str(record.get("reason", ""))))] += 1
        if len(rejected_shown) < sample_size * 2:
            rejected_shown.append(views.rejected(record))

    # Each chosen cluster is drawn once; a later section links to it.
    drawn: dict[int, str] = {}
    sections = []
    chosen = [
        ("largest", "Largest clusters", "The biggest merge groups: where a wrong link would do the most harm.",
         clusters.largest.best_first()),
        ("closest", "Closest to the match threshold",
         "Groups whose weakest link to the main profile scores nearest the match threshold.",
         clusters.closest.best_first()),
        ("random", "A random sample", f"Chosen at random (seed {seed}) from all {clusters.kinds['merge']:,} merge groups.",
         sorted(clusters.sample.items, key=lambda r: str(r.get("cluster_id", "")))),
    ]
    for key, title, note, records in chosen:
        items = []
        for record in records:
            if id(record) in drawn:
                items.append({"kind": "ref", "anchor": drawn[id(record)], "main_short": short_id(str(record.get("main", "")))})
                continue
            view = views.cluster(record, tags=[key])
            drawn[id(record)] = view["anchor"]
            items.append(view)
        sections.append({"key": key, "title": title, "note": note, "entries": items})

    capped = []
    for block in summary.get("capped_blocks_largest") or []:
        if isinstance(block, dict):
            capped.append({"rule": str(block.get("rule", "")),
                           "key": views.block_key(str(block.get("rule", "")), str(block.get("key", ""))),
                           "size": block.get("size"), "pairs_not_made": block.get("pairs_not_made")})
    scores, scores_note = score_chart(summary, clusters, review, thresholds)
    context = {
        **_header(out_dir, summary, thresholds, redact),
        "all_page": False,
        "all_exists": _exists(_path(out_dir, REPORT_ALL)),
        "summary_present": bool(summary),
        "sentence": _sentence(summary),
        "cards": _summary_cards(summary),
        "details": _summary_details(summary),
        "apply_cards": _apply_cards(summary),
        "counts_add_up": summary.get("counts_add_up"),
        "model_warnings": [w for w in summary.get("model_warnings") or [] if isinstance(w, str)],
        "input_warnings": [w for w in summary.get("input_warnings") or [] if isinstance(w, str)],
        "score_chart": scores, "score_note": scores_note,
        "size_chart": size_chart(clusters),
        "rules_chart": rules_chart(summary),
        "capped": capped, "capped_total": summary.get("capped_blocks", len(capped)),
        "model": model_view(model),
        "kinds": {"merge": clusters.kinds["merge"], "held": clusters.kinds["held"], "split": clusters.kinds["split"]},
        "sections": sections,
        "review_kinds": {"pair": review.kinds["pair"], "held_cluster": review.kinds["held_cluster"],
                         "split_off": review.kinds["split_off"]},
        "review_reasons": review.reasons.most_common(15),
        "review_pairs": [views.review_pair(p) for p in sorted(review.pairs.items, key=lambda p: -(p.get("probability") or 0))],
        "held": [views.held(h) for h in review.held],
        "split": [views.split(s) for s in review.split],
        "rejected_total": rejected_total,
        "rejected_reasons": rejected_reasons.most_common(15),
        "rejected": rejected_shown,
        "plan_lines": _count_lines(_path(out_dir, "merge_plan.jsonl")),
        "files": [name for name in ("summary.json", "clusters.jsonl", "review.jsonl", "rejected.jsonl", "model.json",
                                    "merge_plan.jsonl") if _exists(_path(out_dir, name))],
    }
    return _render("report.html.j2", context, _path(out_dir, REPORT))


def all_page_name(page: int) -> str:
    """report_all.html, report_all_2.html, ..."""
    return REPORT_ALL if page == 1 else REPORT_ALL.replace(".html", f"_{page}.html")


def write_report_all(out_dir: str, redact: bool = False, page_size: int = ALL_PAGE_SIZE) -> str:
    """Write every cluster of clusters.jsonl (merge groups in full, held groups and
    split-off profiles) to OUT_DIR/report_all.html and, past ``page_size`` clusters
    per page, report_all_2.html, report_all_3.html, ... Streamed from the file
    through the template; returns the first page's path."""
    summary, model, thresholds, views = _common(out_dir, redact)
    source = _path(out_dir, "clusters.jsonl")
    pages = max(1, math.ceil((_count_lines(source) or 0) / page_size))

    def clusters():
        for record in _read_lines(source):
            kind = record.get("kind")
            if kind == "merge":
                yield views.cluster(record, max_columns=None, max_edges=None)
            elif kind == "held":
                yield {"kind": "held", **views.held(record)}
            elif kind == "split":
                yield {"kind": "split", **views.split(record)}

    stream = clusters()
    header = _header(out_dir, summary, thresholds, redact)
    for page in range(1, pages + 1):
        context = {
            **header,
            "sentence": _sentence(summary),
            "page": page, "pages": pages, "page_size": page_size,
            "first": all_page_name(1), "last": all_page_name(pages),
            "previous": all_page_name(page - 1) if page > 1 else None,
            "next": all_page_name(page + 1) if page < pages else None,
            "clusters": itertools.islice(stream, page_size),
        }
        _render("report_all.html.j2", context, _path(out_dir, all_page_name(page)))
    _remove_stale_pages(out_dir, pages)
    return _path(out_dir, REPORT_ALL)


def _remove_stale_pages(out_dir: str, pages: int) -> None:
    """Pages left over from an earlier, larger run of --all."""
    try:
        matched = FileSystems.match([_path(out_dir, REPORT_ALL.replace(".html", "_*.html"))])[0].metadata_list
    except Exception:  # nothing matched (or the store cannot list): nothing to remove
        return
    stale = []
    for metadata in matched:
        number = re.search(r"_(\d+)\.html$", metadata.path)
        if number and int(number.group(1)) > pages:
            stale.append(metadata.path)
    if stale:
        FileSystems.delete(stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report",
                                     description="Write OUT_DIR/report.html from a finished run's outputs.")
    parser.add_argument("out_dir", help="the run's --output directory (local or s3://)")
    parser.add_argument("--redact", action="store_true",
                        help="mask emails, phones, birth dates and street lines, for sharing beyond the data owners")
    parser.add_argument("--all", action="store_true",
                        help=f"also write every cluster to report_all.html (report_all_2.html, ... past "
                             f"{ALL_PAGE_SIZE} clusters per page)")
    parser.add_argument("--sample_size", "--sample-size", type=int, default=25,
                        help="clusters shown per section: largest, closest to the threshold, random (default 25)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the random sample (default 7)")
    args = parser.parse_args(argv)
    if not _exists(args.out_dir) and not _exists(_path(args.out_dir, "summary.json")):
        print(f"pipeline.report: {args.out_dir} has no run outputs", file=sys.stderr)
        return 2
    if args.all:
        print(f"wrote {write_report_all(args.out_dir, redact=args.redact)}")
    print(f"wrote {write_report(args.out_dir, redact=args.redact, sample_size=args.sample_size, seed=args.seed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
