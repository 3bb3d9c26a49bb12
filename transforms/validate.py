"""Validate MergeProfiles requests before they are written or sent.

botocore validates the shape of a request (types, required members, minimum
list length) from the service model. The service enforces more than botocore
checks on the client: at most 20 ids to merge, ids of 32 lowercase hex digits,
the domain name pattern. A merge cannot be undone, so a plan line that breaks
any of these is refused before anything is sent.
"""
from __future__ import annotations

import functools
import re

from transforms.choose import MAX_IDS_PER_REQUEST

ID_RE = re.compile(r"^[a-f0-9]{32}\Z")
DOMAIN_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}\Z")


@functools.lru_cache(maxsize=1)
def _merge_input_shape():
    import botocore.session

    model = botocore.session.get_session().get_service_model("customer-profiles")
    return model.operation_model("MergeProfiles").input_shape


def validate_merge_request(request: dict, domain_name: str | None = None) -> list[str]:
    """All problems with one MergeProfiles request ([] when it can be sent).

    ``domain_name``, when given, must equal the request's DomainName.
    """
    from botocore.validate import ParamValidator

    if not isinstance(request, dict):
        return ["a request must be a JSON object"]
    problems = []
    report = ParamValidator().validate(request, _merge_input_shape())
    if report.has_errors():
        problems.extend(line.strip("- ").strip() for line in report.generate_report().splitlines() if line.strip())
    domain = request.get("DomainName")
    if isinstance(domain, str) and not DOMAIN_RE.match(domain):
        problems.append(f"DomainName {domain!r} does not match [a-zA-Z0-9_-]{{1,64}}")
    if domain_name is not None and domain != domain_name:
        problems.append(f"DomainName {domain!r} is not the domain of this run ({domain_name!r})")
    main = request.get("MainProfileId")
    if isinstance(main, str) and not ID_RE.match(main):
        problems.append(f"MainProfileId {main!r} does not match [a-f0-9]{{32}}")
    ids = request.get("ProfileIdsToBeMerged")
    if isinstance(ids, list):
        if len(ids) > MAX_IDS_PER_REQUEST:
            problems.append(f"ProfileIdsToBeMerged has {len(ids)} ids; at most {MAX_IDS_PER_REQUEST} are allowed")
        bad = [i for i in ids if isinstance(i, str) and not ID_RE.match(i)]
        if bad:
            problems.append(f"ProfileIdsToBeMerged has ids that do not match [a-f0-9]{{32}}: {bad[:3]}")
        if len(set(ids)) != len(ids):
            problems.append("ProfileIdsToBeMerged repeats an id")
        if main in ids:
            problems.append("MainProfileId is also in ProfileIdsToBeMerged")
        allowed = set(ids) | {main}
        sources = request.get("FieldSourceProfileIds") or {}
        if isinstance(sources, dict):
            named = [v for k, v in sources.items() if k != "Attributes"]
            named += list((sources.get("Attributes") or {}).values()) if isinstance(sources.get("Attributes"), dict) else []
            stray = sorted({v for v in named if isinstance(v, str) and v not in allowed})
            if stray:
                problems.append(f"FieldSourceProfileIds names profiles not in this request: {stray[:3]}")
    return problems
