"""Choose the main profile of a cluster and, field by field, whose value wins.

MergeProfiles keeps the main profile's value on a conflict unless
``FieldSourceProfileIds`` names another profile for that field, and a named
profile wins *even if its value is empty*. So for each of the fields the API
accepts (read from botocore's model: 23 of them, ``ProfileType`` and
``EngagementPreferences`` included, and ``Attributes`` per key) we pick the
profile whose value should survive and name it only when it is not the main.

Order of preference for a field: a valid value over an invalid one (a phone that
parses over one that does not), a non-empty value over an empty one, then the
profile ranking of ``--main_policy`` (recency or source priority), the main
first among equals. Every choice carries its reason, for the report.

Pure functions; the Beam wiring lives in ``transforms.cluster``.
"""
from __future__ import annotations

import datetime as _dt
import functools
import math
import re
from dataclasses import dataclass, field

from transforms.normalize import (
    ADDRESS_FIELDS,
    EMAIL_FIELDS,
    PHONE_FIELDS,
    fold_name,
    normalize_birth_date,
    normalize_email,
    normalize_phone,
    profile_region,
)

POLICIES = ("most_complete", "most_recent", "source_priority")
CONTACT_FIELDS = PHONE_FIELDS + EMAIL_FIELDS
MAX_IDS_PER_REQUEST = 20


@functools.lru_cache(maxsize=1)
def merge_fields() -> tuple[str, ...]:
    """The FieldSourceProfileIds members of botocore's model, in model order."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("customer-profiles")
    return tuple(model.shape_for("FieldSourceProfileIds").members)


@dataclass(frozen=True)
class Policy:
    """How profiles are ranked: which becomes the main, who wins ties on a field."""

    name: str = "most_complete"
    recency_attribute: str = ""          # e.g. "Attributes.last_updated"
    source_attribute: str = ""           # e.g. "Attributes.source"
    source_priority: tuple[str, ...] = field(default_factory=tuple)  # best first
    default_region: str = "US"

    def __post_init__(self):
        if self.name not in POLICIES:
            raise ValueError(f"unknown main policy {self.name!r}; choose one of {', '.join(POLICIES)}")
        if self.name == "most_recent" and not self.recency_attribute:
            raise ValueError("--main_policy most_recent needs --recency_attribute (profiles carry no timestamps)")
        if self.name == "source_priority" and not (self.source_attribute and self.source_priority):
            raise ValueError("--main_policy source_priority needs --source_attribute and --source_priority")


# ------------------------------------------------------------------------ values


def attribute_path(profile: dict, path: str):
    """Value at ``Field`` or ``Attributes.key`` of a profile."""
    if not path:
        return None
    if path.startswith("Attributes."):
        return (profile.get("Attributes") or {}).get(path.split(".", 1)[1])
    return profile.get(path)


def is_empty(value) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, dict):
        return not any(not is_empty(v) for v in value.values())
    if isinstance(value, list):
        return not value
    return False


def completeness(profile: dict) -> int:
    """How many fields (address parts and attributes counted one by one) hold a value."""
    count = 0
    for name, value in profile.items():
        if name in ("ProfileId", "FoundByItems"):
            continue
        if isinstance(value, dict):
            count += sum(1 for v in value.values() if not is_empty(v))
        elif not is_empty(value):
            count += 1
    return count


# Above this, a number of the epoch is in milliseconds (JavaScript, Java, many exports): as seconds,
# 10^11 is the year 5138.
_MILLISECONDS_ABOVE = 1e11


# A date as people write it with a time after it: "2024/06/01 18:00", "06/01/2024 10:00 PM",
# "2024-06-01 10:00:00 UTC" (a date alone, or an ISO date and time, is read without it)
_DATE_AND_TIME = re.compile(
    r"^(?P<date>.+?)[T ,]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,]\d+)?)?"
    r"\s*(?P<ampm>[ap]\.?m\.?)?\s*(?P<zone>z|utc|gmt|[+-]\d{2}:?\d{2})?$", re.IGNORECASE)


def _date_and_time(found: re.Match, region: str) -> float | None:
    iso = normalize_birth_date(found["date"], region)
    hour, minute, second = int(found["hour"]), int(found["minute"]), int(found["second"] or 0)
    if found["ampm"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if found["ampm"][0].lower() == "p" else 0)
    if not iso or hour > 23 or minute > 59 or second > 59:
        return None
    zone = (found["zone"] or "").upper()
    offset = 0
    if zone and zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        offset = (int(digits[:2]) * 60 + int(digits[2:])) * (1 if zone[0] == "+" else -1)
    moment = _dt.datetime.fromisoformat(iso).replace(hour=hour, minute=minute, second=second,
                                                     tzinfo=_dt.timezone(_dt.timedelta(minutes=offset)))
    return moment.timestamp()


def _timestamp(value, region: str = "") -> float | None:
    """Seconds since the epoch from an ISO date/time, a date as people write it (read in ``region``:
    06/01/2024 is 1 June in the US, 6 January elsewhere), or a number of seconds or milliseconds
    since the epoch; None if unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        parsed = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        timed = _DATE_AND_TIME.match(text)
        if timed:
            return _date_and_time(timed, region)
        iso = normalize_birth_date(text, region)
        if not iso:
            try:
                seconds = float(text)  # seconds since the epoch
            except ValueError:
                return None
            # "NaN" (a spreadsheet's or pandas' empty cell) and "inf" are no time: ranked as missing,
            # not first (a NaN sort key would also make the order depend on the input's)
            if not math.isfinite(seconds):
                return None
            return seconds / 1000.0 if abs(seconds) > _MILLISECONDS_ABOVE else seconds
        parsed = _dt.datetime.fromisoformat(iso)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.timestamp()


# What each part of a rank key ranks by, per policy, in the order they are compared.
_RANKED_BY = {"source_priority": ("source", "recency", "completeness", "id"),
              "most_recent": ("recency", "completeness", "id"),
              "most_complete": ("completeness", "recency", "id")}


def rank_key(profile: dict, policy: Policy) -> tuple:
    """Sort key, best first when sorted ascending: the policy's order (``_RANKED_BY``), then ProfileId."""
    recency = _timestamp(attribute_path(profile, policy.recency_attribute),
                         profile_region(profile, policy.default_region)) if policy.recency_attribute else None
    parts = {"recency": -recency if recency is not None else float("inf"),
             "completeness": -completeness(profile), "id": profile["ProfileId"]}
    if policy.name == "source_priority":
        source = str(attribute_path(profile, policy.source_attribute)).strip().lower()
        parts["source"] = (policy.source_priority.index(source) if source in policy.source_priority
                           else len(policy.source_priority))
    return tuple(parts[part] for part in _RANKED_BY[policy.name])


def rank_reason(profile: dict, policy: Policy, runner_up: tuple | None = None) -> str:
    """Why ``profile`` ranks first, given the rank key (``rank_key``) of the best of the others: the
    first part of the policy's order that tells the two apart (the policy's own criterion when that
    decides; else what did, and that the policy's criterion tied or was missing)."""
    parts = _RANKED_BY[policy.name]
    mine = rank_key(profile, policy)
    decided = parts[0] if runner_up is None else next(
        (part for part, a, b in zip(parts, mine, runner_up) if a != b), "id")
    if decided == "source":
        return f"source {attribute_path(profile, policy.source_attribute)!s} ranks first in --source_priority"
    if decided == "recency":
        return f"most recent {policy.recency_attribute} ({attribute_path(profile, policy.recency_attribute)})"
    if decided == "completeness":
        why = f"most complete ({completeness(profile)} fields filled)"
    else:
        why = "the first ProfileId of profiles alike in every other way"
    if parts[0] == "source" and decided != "source":
        known = mine[0] < len(policy.source_priority)
        why = (f"sources tie in --source_priority ({attribute_path(profile, policy.source_attribute)!s})" if known
               else f"no {policy.source_attribute} in --source_priority") + f"; {why}"
    if "recency" in parts[:parts.index(decided)] and policy.recency_attribute:
        readable = mine[parts.index("recency")] != float("inf")
        why = (f"{policy.recency_attribute} ties" if readable
               else f"no readable {policy.recency_attribute}") + f"; {why}"
    return why


def choose_main(profiles: list[dict], policy: Policy) -> tuple[dict, str]:
    """The main profile of a cluster by the policy, and why."""
    keys = [rank_key(p, policy) for p in profiles]
    order = sorted(range(len(profiles)), key=keys.__getitem__)
    main = profiles[order[0]]
    return main, rank_reason(main, policy, keys[order[1]] if len(order) > 1 else None)


# ------------------------------------------------------------------- field checks


def value_quality(field_name: str, value, profile: dict, policy: Policy,
                  invalid: frozenset | None = None) -> tuple[int, str]:
    """(2 valid / 1 present but invalid / 0 empty, short note) of one field value.

    ``invalid`` may name the profile's fields that normalising could not read (its features'
    ``invalid``): phones, emails and the birth date are then not parsed again."""
    if is_empty(value):
        return 0, "empty"
    if field_name in PHONE_FIELDS:
        valid = field_name not in invalid if invalid is not None else \
            normalize_phone(value, profile_region(profile, policy.default_region))
        return (2, "valid number") if valid else (1, "does not parse as a phone number")
    if field_name in EMAIL_FIELDS:
        valid = field_name not in invalid if invalid is not None else normalize_email(value)
        return (2, "valid address") if valid else (1, "not an email address")
    if field_name == "BirthDate":
        valid = field_name not in invalid if invalid is not None else \
            normalize_birth_date(value, profile_region(profile, policy.default_region))
        return (2, "valid date") if valid else (1, "not a readable date")
    if field_name in ("FirstName", "LastName", "MiddleName"):
        return (2, "present") if fold_name(value) else (1, "placeholder or not a name")
    if field_name in ADDRESS_FIELDS and isinstance(value, dict):   # not "Attributes.IPAddress", a string
        useful = any(not is_empty(value.get(k)) for k in ("Address1", "PostalCode", "City"))
        return (2, "has street, postcode or city") if useful else (1, "no street, postcode or city")
    return 2, "present"


def _pick(field_name: str, candidates: list[tuple[dict, object]], main_id: str, ranks: dict, policy: Policy,
          invalid: dict | None = None):
    """Best (profile, quality, note) for a field among (profile, value) candidates."""
    scored = []
    for profile, value in candidates:
        known = invalid.get(profile["ProfileId"]) if invalid is not None else None
        quality, note = value_quality(field_name, value, profile, policy, known)
        scored.append((-quality, 0 if profile["ProfileId"] == main_id else 1, ranks[profile["ProfileId"]], profile, quality, note))
    scored.sort(key=lambda item: item[:3])
    best = scored[0]
    return best[3], best[4], best[5], scored


def _reason(winner_id: str, main_id: str, quality: int, note: str, scored, field_name: str) -> str:
    if quality == 0:
        return "blank or missing in every profile"
    qualities = {item[4] for item in scored}
    if winner_id == main_id:
        return f"main profile's value kept ({note})"
    main_quality = next(item[4] for item in scored if item[3]["ProfileId"] == main_id)
    if main_quality == 0:
        return f"main profile has no {field_name}; taken from the best-ranked profile that has one ({note})"
    if main_quality < quality:
        return f"main profile's value is invalid; this one is {note}"
    if len(qualities) > 1:
        return f"{note}; preferred over empty or invalid values"
    return f"{note}; ranked first by the main policy"


def _contact_key(field_name: str, value, profile: dict, policy: Policy):
    if not isinstance(value, str) or not value:
        return None
    if field_name in PHONE_FIELDS:
        return normalize_phone(value, profile_region(profile, policy.default_region))
    parsed = normalize_email(value)
    return parsed[1] if parsed else None


def choose_fields(profiles: list[dict], main: dict, policy: Policy, invalid: dict | None = None) -> dict:
    """For every merge field, the winning profile and the reason.

    Returns ``{field: {"source": id, "reason": str}}`` for the top-level fields,
    ``"Attributes": {key: {...}}`` per attribute key, and ``EngagementPreferences``
    chosen for preferences that point at contact values the merged profile keeps.
    Fields empty in every profile are listed with source None. ``invalid`` may give, per
    ProfileId, the fields normalising could not read (``frozenset``), so they are not parsed twice.
    """
    main_id = main["ProfileId"]
    ranks = {p["ProfileId"]: rank_key(p, policy) for p in profiles}
    choices: dict = {}
    for field_name in merge_fields():
        if field_name in ("Attributes", "EngagementPreferences"):
            continue
        candidates = [(p, p.get(field_name)) for p in profiles]
        winner, quality, note, scored = _pick(field_name, candidates, main_id, ranks, policy, invalid)
        choices[field_name] = {
            "source": winner["ProfileId"] if quality else None,
            "reason": _reason(winner["ProfileId"], main_id, quality, note, scored, field_name),
        }

    attribute_keys = sorted({key for p in profiles for key in (p.get("Attributes") or {})})
    attributes = {}
    for key in attribute_keys:
        candidates = [(p, (p.get("Attributes") or {}).get(key)) for p in profiles]
        winner, quality, note, scored = _pick("Attributes." + key, candidates, main_id, ranks, policy)
        attributes[key] = {
            "source": winner["ProfileId"] if quality else None,
            "reason": _reason(winner["ProfileId"], main_id, quality, note, scored, f"attribute {key}"),
        }
    choices["Attributes"] = attributes
    choices["EngagementPreferences"] = _choose_preferences(profiles, main_id, choices, ranks, policy)
    return choices


def _preference_entries(profile: dict) -> list:
    prefs = profile.get("EngagementPreferences") or {}
    return [entry for kind in ("Phone", "Email") for entry in prefs.get(kind, []) or []]


def _choose_preferences(profiles, main_id, choices, ranks, policy) -> dict:
    """Prefer the preferences whose entries point at contact values that survive the merge."""
    with_entries = [(profile, entries) for profile in profiles if (entries := _preference_entries(profile))]
    if not with_entries:
        return {"source": None, "reason": "no profile has engagement preferences"}
    # only the contact fields some entry names are worked out (normalising a phone is not free)
    named = {entry.get("ContactType") for _, entries in with_entries for entry in entries}
    by_id = {p["ProfileId"]: p for p in profiles}
    surviving = {}
    for field_name in CONTACT_FIELDS:
        source = choices[field_name]["source"]
        if source and field_name in named:
            surviving[field_name] = _contact_key(field_name, by_id[source].get(field_name), by_id[source], policy)
    best = None
    for profile, entries in with_entries:
        kept = 0
        for entry in entries:
            contact_type = entry.get("ContactType")
            if contact_type in surviving and surviving[contact_type] is not None:
                if _contact_key(contact_type, entry.get("KeyValue"), profile, policy) == surviving[contact_type]:
                    kept += 1
        key = (-kept, -len(entries), 0 if profile["ProfileId"] == main_id else 1, ranks[profile["ProfileId"]])
        if best is None or key < best[0]:
            best = (key, profile, kept, len(entries))
    _, profile, kept, total = best
    others = sum(1 for p in profiles if (p.get("EngagementPreferences") or {}) and p is not profile)
    reason = (f"{kept} of {total} preference entries point at contact values the merged profile keeps"
              + (f"; {others} other profile(s) with preferences point at fewer" if others else ""))
    if kept < total:
        reason += "; entries pointing at values that do not survive will not reach the customer"
    return {"source": profile["ProfileId"], "reason": reason}


# ----------------------------------------------------------------------- requests


def plan_requests(domain_name: str, main_id: str, member_ids: list[str], choices: dict) -> list[dict]:
    """MergeProfiles requests for one cluster: one per 20 merged ids, all with the same main.

    Each field's winner is named only in the request that carries it, and only when
    it is not the main. Unnamed fields keep the main's value (which by then holds
    the winners of earlier requests), so the final profile is the one the choices
    describe in whatever order the requests are applied. Winners go in the first
    requests.
    """
    others = [i for i in member_ids if i != main_id]
    winners = set()
    for field_name, choice in choices.items():
        if field_name == "Attributes":
            winners.update(c["source"] for c in choice.values() if c["source"] and c["source"] != main_id)
        elif choice["source"] and choice["source"] != main_id:
            winners.add(choice["source"])
    ordered = sorted(others, key=lambda i: (i not in winners, i))
    requests = []
    for start in range(0, len(ordered), MAX_IDS_PER_REQUEST):
        chunk = ordered[start:start + MAX_IDS_PER_REQUEST]
        in_chunk = set(chunk)
        sources: dict = {}
        for field_name, choice in choices.items():
            if field_name == "Attributes":
                named = {k: c["source"] for k, c in sorted(choice.items()) if c["source"] in in_chunk}
                if named:
                    sources["Attributes"] = named
            elif choice["source"] in in_chunk:
                sources[field_name] = choice["source"]
        request = {"DomainName": domain_name, "MainProfileId": main_id, "ProfileIdsToBeMerged": sorted(chunk)}
        if sources:
            request["FieldSourceProfileIds"] = sources
        requests.append(request)
    return requests
