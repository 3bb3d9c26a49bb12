"""In-memory domains and profiles: create, update, read, search and merge.

No HTTP here: methods take validated operation inputs (see ``model.parse_input``) and
return operation outputs, raising ``ApiError`` for error answers.  One lock guards all
domains, so every operation is atomic with respect to every other.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from .model import (
    ACCOUNT_FIELD,
    EMAIL_FIELDS,
    FULL_NAME_FIELDS,
    MERGE_SOURCE_FIELDS,
    PHONE_FIELDS,
    PROFILE_FIELDS,
    PROFILE_SHAPE,
    SERVICE_MODEL,
    ApiError,
    bad_request,
    not_found,
    validate,
)

#: Code put in BatchGetProfile's per-id Errors for an id that does not exist.  The API
#: reference only says "status code"; the modeled 404 error name is used.
MISSING_PROFILE_CODE = 'ResourceNotFoundException'
DEFAULT_EXPIRATION_DAYS = 366
DEFAULT_MAX_RESULTS = 20

_UPDATE_SHAPE = SERVICE_MODEL.operation_model('UpdateProfile').input_shape
_DOMAIN_NAME_SHAPE = _UPDATE_SHAPE.members['DomainName']


def new_profile_id() -> str:
    """A fresh id in the service's format (32 lowercase hex digits)."""
    return uuid.uuid4().hex


def _prune(value: Any) -> Any:
    """Drop empty strings, empty maps and empty lists, recursively (the API omits them)."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, '', {}, [])}
    if isinstance(value, list):
        out = [_prune(v) for v in value]
        return [v for v in out if v not in (None, '', {}, [])]
    return value


def standard_keys(profile_id: str, profile: dict[str, Any]) -> dict[str, set[str]]:
    """Search keys a profile's own fields produce: predefined keys plus one per attribute."""
    keys: dict[str, set[str]] = defaultdict(set)
    keys['_profileId'].add(profile_id)
    for name in PHONE_FIELDS:
        if profile.get(name):
            keys['_phone'].add(profile[name])
    for name in EMAIL_FIELDS:
        if profile.get(name):
            keys['_email'].add(profile[name])
    if profile.get(ACCOUNT_FIELD):
        keys['_account'].add(profile[ACCOUNT_FIELD])
    full_name = ' '.join(profile[n] for n in FULL_NAME_FIELDS if profile.get(n))
    if full_name:
        keys['_fullName'].add(full_name)
    for key, value in profile.get('Attributes', {}).items():
        keys[key].add(value)
    return keys


@dataclass
class Domain:
    name: str
    expiration_days: int = DEFAULT_EXPIRATION_DAYS
    extra: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    # keys moved in from profiles merged into this one: profile id -> key -> values
    inherited: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    # key name -> key value -> profile ids
    index: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )
    merged_into: dict[str, str] = field(default_factory=dict)
    merge_log: list[dict[str, Any]] = field(default_factory=list)

    # -- index upkeep ---------------------------------------------------------------
    def keys_of(self, profile_id: str) -> dict[str, set[str]]:
        keys = standard_keys(profile_id, self.profiles[profile_id])
        for name, values in self.inherited.get(profile_id, {}).items():
            keys[name] |= values
        return keys

    def _index_add(self, profile_id: str) -> None:
        for name, values in self.keys_of(profile_id).items():
            for value in values:
                self.index[name][value].add(profile_id)

    def _index_remove(self, profile_id: str) -> None:
        for name, values in self.keys_of(profile_id).items():
            for value in values:
                holders = self.index[name][value]
                holders.discard(profile_id)
                if not holders:
                    del self.index[name][value]

    def put(self, profile_id: str, profile: dict[str, Any]) -> None:
        if profile_id in self.profiles:
            self._index_remove(profile_id)
        self.profiles[profile_id] = profile
        self._index_add(profile_id)
        self.updated_at = time.time()

    def view(self, profile_id: str) -> dict[str, Any]:
        """A profile as the API returns it."""
        return {'ProfileId': profile_id, **copy.deepcopy(self.profiles[profile_id])}

    def describe(self) -> dict[str, Any]:
        return {
            'DomainName': self.name,
            'DefaultExpirationDays': self.expiration_days,
            **copy.deepcopy(self.extra),
            'CreatedAt': self.created_at,
            'LastUpdatedAt': self.updated_at,
        }


def clean_profile(raw: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """Check one loaded Profile object against the model; return (id, stored fields).

    Members that are not Profile fields (and FoundByItems) are dropped; empty values are
    dropped as the API omits them; a missing ProfileId gets a fresh one.  Raises
    ValueError naming ``where`` if a value breaks the model's constraints.
    """
    if not isinstance(raw, dict):
        raise ValueError(f'{where}: a profile must be a JSON object')
    profile = _prune({k: v for k, v in raw.items() if k in PROFILE_FIELDS})
    profile_id = raw.get('ProfileId') or new_profile_id()
    try:
        validate(PROFILE_SHAPE, {'ProfileId': profile_id, **profile}, 'Profile')
    except ApiError as exc:
        raise ValueError(f'{where}: {exc.message}') from None
    return profile_id, profile


class _TokenCodec:
    """Opaque, tamper-evident NextToken: the last id returned plus a query fingerprint."""

    def __init__(self) -> None:
        self._secret = os.urandom(16)

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()[:24]

    def encode(self, fingerprint: str, after: str) -> str:
        payload = json.dumps([fingerprint, after]).encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip('=') + '.' + self._sign(payload)

    def decode(self, token: str, fingerprint: str) -> str:
        try:
            body, signature = token.rsplit('.', 1)
            payload = base64.urlsafe_b64decode(body + '=' * (-len(body) % 4))
            if not hmac.compare_digest(signature, self._sign(payload)):
                raise ValueError
            token_fingerprint, after = json.loads(payload)
        except (ValueError, TypeError):
            raise bad_request('The NextToken is not valid') from None
        if token_fingerprint != fingerprint:
            raise bad_request('The NextToken belongs to a different search')
        return after


class Store:
    """All domains of one emulator."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.domains: dict[str, Domain] = {}
        self._tokens = _TokenCodec()

    # -- set-up ---------------------------------------------------------------------
    def add_domain(self, name: str, **settings: Any) -> Domain:
        with self.lock:
            if name in self.domains:
                raise bad_request(f'Domain {name} already exists')
            validate(_DOMAIN_NAME_SHAPE, name, 'DomainName')
            domain = Domain(name, **settings)
            self.domains[name] = domain
            return domain

    def load(self, domain_name: str, profiles: Iterable[dict[str, Any]]) -> int:
        """Add Profile objects to a domain (created if absent); return how many."""
        with self.lock:
            domain = self.domains.get(domain_name) or self.add_domain(domain_name)
            count = 0
            for n, raw in enumerate(profiles, 1):
                profile_id, profile = clean_profile(raw, f'profile {n}')
                if profile_id in domain.profiles:
                    raise ValueError(f'profile {n}: duplicate ProfileId {profile_id}')
                domain.put(profile_id, profile)
                count += 1
            return count

    def domain(self, name: str) -> Domain:
        try:
            return self.domains[name]
        except KeyError:
            raise not_found(f'Domain {name} does not exist') from None

    # -- operations -----------------------------------------------------------------
    def create_domain(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            extra = {k: p[k] for k in ('DefaultEncryptionKey', 'DeadLetterQueueUrl', 'Tags') if k in p}
            domain = self.add_domain(
                p['DomainName'], expiration_days=p['DefaultExpirationDays'], extra=extra
            )
            return domain.describe()

    def get_domain(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            domain = self.domain(p['DomainName'])
            count = len(domain.profiles)
            stats = {'ProfileCount': count, 'MeteringProfileCount': count, 'ObjectCount': 0, 'TotalSize': 0}
            return {**domain.describe(), 'Stats': stats}

    def create_profile(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            domain = self.domain(p['DomainName'])
            profile = _prune({k: v for k, v in p.items() if k in PROFILE_FIELDS})
            profile_id = new_profile_id()
            domain.put(profile_id, copy.deepcopy(profile))
            return {'ProfileId': profile_id}

    def update_profile(self, p: dict[str, Any]) -> dict[str, Any]:
        """An empty string removes a value; an absent member keeps it.

        Address-like structures and Attributes are updated member by member;
        EngagementPreferences is replaced as a whole.
        """
        with self.lock:
            domain = self.domain(p['DomainName'])
            profile_id = p['ProfileId']
            if profile_id not in domain.profiles:
                raise not_found(f'Profile {profile_id} does not exist')
            profile = copy.deepcopy(domain.profiles[profile_id])
            for name, value in p.items():
                if name not in PROFILE_FIELDS:
                    continue
                if _merges_member_by_member(_UPDATE_SHAPE.members[name]):
                    merged = {**profile.get(name, {}), **value}
                    profile[name] = {k: v for k, v in merged.items() if v != ''}
                else:
                    profile[name] = value
            domain.put(profile_id, _prune(profile))
            return {'ProfileId': profile_id}

    def batch_get_profile(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            domain = self.domain(p['DomainName'])
            profiles, errors = [], []
            for profile_id in dict.fromkeys(p['ProfileIds']):
                if profile_id in domain.profiles:
                    profiles.append(domain.view(profile_id))
                else:
                    errors.append({
                        'Code': MISSING_PROFILE_CODE,
                        'Message': f'Profile {profile_id} does not exist',
                        'ProfileId': profile_id,
                    })
            return {'Profiles': profiles, 'Errors': errors}

    def search_profiles(self, p: dict[str, Any]) -> dict[str, Any]:
        """Exact match on key values; results ordered by ProfileId; paged by last id seen."""
        criteria = [(p['KeyName'], list(dict.fromkeys(p['Values'])))]
        criteria += [(k['KeyName'], list(dict.fromkeys(k['Values']))) for k in p.get('AdditionalSearchKeys', [])]
        operator = p.get('LogicalOperator', 'OR')
        fingerprint = hashlib.sha256(json.dumps([criteria, operator]).encode()).hexdigest()[:16]
        after = self._tokens.decode(p['NextToken'], fingerprint) if 'NextToken' in p else ''
        limit = p.get('MaxResults', DEFAULT_MAX_RESULTS)
        with self.lock:
            domain = self.domain(p['DomainName'])
            hits: list[dict[str, list[str]]] = []  # per criterion: profile id -> matched values
            for name, values in criteria:
                found: dict[str, list[str]] = defaultdict(list)
                by_value = domain.index.get(name, {})
                for value in values:
                    for profile_id in by_value.get(value, ()):
                        found[profile_id].append(value)
                hits.append(found)
            if operator == 'AND':
                matched = set(hits[0]).intersection(*hits[1:])
            else:
                matched = set().union(*hits)
            ordered = sorted(matched)
            start = bisect_right(ordered, after)
            page = ordered[start:start + limit]
            items = []
            for profile_id in page:
                item = domain.view(profile_id)
                item['FoundByItems'] = [
                    {'KeyName': name, 'Values': found[profile_id]}
                    for (name, _), found in zip(criteria, hits)
                    if profile_id in found
                ]
                items.append(item)
        answer: dict[str, Any] = {'Items': items}
        if start + limit < len(ordered):
            answer['NextToken'] = self._tokens.encode(fingerprint, page[-1])
        return answer

    # -- merging --------------------------------------------------------------------
    def check_merge_request(self, p: dict[str, Any]) -> None:
        """Checks that need no profile state: the domain exists, the ids make sense."""
        main_id = p['MainProfileId']
        others = p['ProfileIdsToBeMerged']
        if main_id in others:
            raise bad_request('MainProfileId must not be in ProfileIdsToBeMerged')
        allowed = {main_id, *others}
        sources = p.get('FieldSourceProfileIds', {})
        named = [(f, v) for f, v in sources.items() if f != 'Attributes']
        named += [(f'Attributes.{k}', v) for k, v in sources.get('Attributes', {}).items()]
        for name, source in named:
            if source not in allowed:
                raise bad_request(
                    f'FieldSourceProfileIds.{name} names {source}, which is neither the '
                    'main profile nor one of ProfileIdsToBeMerged'
                )
        with self.lock:
            self.domain(p['DomainName'])

    def repeat_kind(self, p: dict[str, Any]) -> str | None:
        """'full' if every id to merge was already merged into this main (directly or
        through a chain of merges), 'partial' if some were, else None."""
        with self.lock:
            domain = self.domain(p['DomainName'])
            main_id = p['MainProfileId']
            repeats = 0
            for profile_id in dict.fromkeys(p['ProfileIdsToBeMerged']):
                seen = set()
                while profile_id in domain.merged_into and profile_id not in seen:
                    seen.add(profile_id)
                    profile_id = domain.merged_into[profile_id]
                    if profile_id == main_id:
                        repeats += 1
                        break
            if repeats == 0:
                return None
            return 'full' if repeats == len(set(p['ProfileIdsToBeMerged'])) else 'partial'

    def merge_profiles(self, p: dict[str, Any]) -> int:
        """Apply a merge atomically; return how many profiles were merged away."""
        self.check_merge_request(p)
        main_id = p['MainProfileId']
        other_ids = list(dict.fromkeys(p['ProfileIdsToBeMerged']))
        sources = p.get('FieldSourceProfileIds', {})
        with self.lock:
            domain = self.domain(p['DomainName'])
            for profile_id in (main_id, *other_ids):
                if profile_id not in domain.profiles:
                    where = domain.merged_into.get(profile_id)
                    note = f' (it was merged into {where})' if where else ''
                    raise not_found(f'Profile {profile_id} does not exist{note}')
            by_id = {pid: domain.profiles[pid] for pid in (main_id, *other_ids)}
            merged = merge_fields(main_id, other_ids, by_id, sources)

            moved = domain.inherited.get(main_id, {})
            moved = {name: set(values) for name, values in moved.items()}
            for profile_id in other_ids:
                for name, values in domain.keys_of(profile_id).items():
                    if name != '_profileId':
                        moved.setdefault(name, set()).update(values)
            for profile_id in (main_id, *other_ids):
                domain._index_remove(profile_id)
            for profile_id in other_ids:
                del domain.profiles[profile_id]
                domain.inherited.pop(profile_id, None)
                domain.merged_into[profile_id] = main_id
            domain.inherited[main_id] = moved
            domain.profiles[main_id] = merged
            domain._index_add(main_id)
            domain.updated_at = time.time()
            domain.merge_log.append({
                'Time': domain.updated_at,
                'MainProfileId': main_id,
                'ProfileIdsToBeMerged': other_ids,
            })
            return len(other_ids)

    # -- inspection (tests) ---------------------------------------------------------
    def dump(self, domain_name: str) -> dict[str, Any]:
        with self.lock:
            domain = self.domain(domain_name)
            return {
                'DomainName': domain.name,
                'Profiles': [domain.view(pid) for pid in sorted(domain.profiles)],
                'MergedInto': dict(domain.merged_into),
                'MergeLog': copy.deepcopy(domain.merge_log),
            }


def _merges_member_by_member(shape) -> bool:
    """UpdateProfile members whose parts are updated one by one (Address-like, Attributes)."""
    if shape.type_name == 'map':
        return True
    return shape.type_name == 'structure' and all(
        m.type_name == 'string' for m in shape.members.values()
    )


def merge_fields(
    main_id: str,
    other_ids: list[str],
    by_id: dict[str, dict[str, Any]],
    sources: dict[str, Any],
) -> dict[str, Any]:
    """The main profile's fields after a merge.

    For each field (and each attribute key): if FieldSourceProfileIds names a source,
    that profile's value is taken, and an absent value removes the field; otherwise the
    main profile's value is kept, and a field the main lacks is filled from the first
    profile in ``other_ids`` order that has it.  Structures (addresses,
    EngagementPreferences) move as a whole.
    """
    order = [main_id, *other_ids]

    def pick(get, named: str | None):
        if named:
            return get(by_id[named])
        for profile_id in order:
            value = get(by_id[profile_id])
            if value is not None:
                return value
        return None

    result: dict[str, Any] = {}
    for name in PROFILE_FIELDS:
        if name == 'Attributes':
            continue
        named = sources.get(name) if name in MERGE_SOURCE_FIELDS else None
        value = pick(lambda profile: profile.get(name), named)
        if value is not None:
            result[name] = copy.deepcopy(value)

    attribute_sources = sources.get('Attributes', {})
    keys = dict.fromkeys(k for pid in order for k in by_id[pid].get('Attributes', {}))
    keys.update(dict.fromkeys(attribute_sources))
    attributes = {}
    for key in keys:
        value = pick(lambda profile: profile.get('Attributes', {}).get(key), attribute_sources.get(key))
        if value is not None:
            attributes[key] = value
    if attributes:
        result['Attributes'] = attributes
    return result
