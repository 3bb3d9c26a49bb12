"""Everything the emulator knows about the wire format, taken from botocore's service model.

Paths, methods, status codes, field lists, limits, enums and error status codes all come
from ``botocore``'s ``customer-profiles`` model, so the emulator follows the same
definition that the boto3 client uses to build requests and parse answers.  Only the
facts the model does not hold (which fields feed the predefined search keys) are written
out here, each checked against the model when this module is imported.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import unquote

import botocore.session
from botocore.model import NoShapeFoundError

SERVICE_MODEL = botocore.session.get_session().get_service_model('customer-profiles')

#: Operations the emulator answers.  Anything else gets UnknownOperationException.
OPERATIONS = (
    'CreateDomain',
    'GetDomain',
    'CreateProfile',
    'UpdateProfile',
    'BatchGetProfile',
    'SearchProfiles',
    'MergeProfiles',
)

PROFILE_SHAPE = SERVICE_MODEL.shape_for('Profile')
#: Members of a Profile that only appear in SearchProfiles answers, never stored.
RESPONSE_ONLY_FIELDS = ('FoundByItems',)
#: Fields a stored profile can hold, in model order (ProfileId is kept separately).
PROFILE_FIELDS = tuple(
    name for name in PROFILE_SHAPE.members if name not in ('ProfileId', *RESPONSE_ONLY_FIELDS)
)
#: Fields that MergeProfiles' FieldSourceProfileIds can name a source profile for.
MERGE_SOURCE_FIELDS = tuple(
    SERVICE_MODEL.operation_model('MergeProfiles')
    .input_shape.members['FieldSourceProfileIds'].members
)

# Predefined search keys of the standard profile.  The service model lists the key names
# (SearchProfiles KeyName docs) but not which fields feed them; this mapping is the
# "standard profile definition" table of the Amazon Connect admin guide.
PHONE_FIELDS = ('PhoneNumber', 'MobilePhoneNumber', 'HomePhoneNumber', 'BusinessPhoneNumber')
EMAIL_FIELDS = ('EmailAddress', 'PersonalEmailAddress', 'BusinessEmailAddress')
FULL_NAME_FIELDS = ('FirstName', 'MiddleName', 'LastName')
ACCOUNT_FIELD = 'AccountNumber'
for _field in (*PHONE_FIELDS, *EMAIL_FIELDS, *FULL_NAME_FIELDS, ACCOUNT_FIELD):
    assert _field in PROFILE_FIELDS, f'{_field} is no longer a Profile member'


def error_status(code: str) -> int:
    """HTTP status of a modeled error shape; 400 for codes the model does not define."""
    try:
        shape = SERVICE_MODEL.shape_for(code)
    except NoShapeFoundError:
        return 404 if code == 'UnknownOperationException' else 400
    return int(shape.metadata.get('error', {}).get('httpStatusCode', 400))


class ApiError(Exception):
    """An error answer: ``x-amzn-ErrorType: <code>`` and ``{"Message": ...}``."""

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(f'{code}: {message}')
        self.code = code
        self.message = message
        self.status = status if status is not None else error_status(code)


def bad_request(message: str) -> ApiError:
    return ApiError('BadRequestException', message)


def not_found(message: str) -> ApiError:
    return ApiError('ResourceNotFoundException', message)


# --------------------------------------------------------------------------- validation

def validate(shape, value: Any, path: str) -> None:
    """Check ``value`` against a model shape the way the service does; raise BadRequest.

    Checks types, required members, string and list length, map key/value shapes,
    patterns (as a full match) and enums.  Unknown structure members are ignored, as
    JSON services do.
    """
    kind = shape.type_name
    if kind == 'structure':
        if not isinstance(value, dict):
            raise bad_request(f'{path} must be an object')
        for name in shape.required_members:
            if value.get(name) is None:
                raise bad_request(f'{_join(path, name)} is required')
        for name, member in shape.members.items():
            if value.get(name) is not None:
                validate(member, value[name], _join(path, name))
    elif kind == 'list':
        if not isinstance(value, list):
            raise bad_request(f'{path} must be a list')
        _check_length(shape, len(value), path, 'items')
        for i, item in enumerate(value):
            validate(shape.member, item, f'{path}[{i}]')
    elif kind == 'map':
        if not isinstance(value, dict):
            raise bad_request(f'{path} must be an object')
        _check_length(shape, len(value), path, 'entries')
        for key, item in value.items():
            validate(shape.key, key, f'{path} key')
            validate(shape.value, item, f'{path}.{key}')
    elif kind == 'string':
        if not isinstance(value, str):
            raise bad_request(f'{path} must be a string')
        _check_length(shape, len(value), path, 'characters')
        pattern = shape.metadata.get('pattern')
        if pattern and not re.fullmatch(pattern, value):
            raise bad_request(f'{path} must match {pattern}')
        enum = shape.metadata.get('enum')
        if enum and value not in enum:
            raise bad_request(f'{path} must be one of {", ".join(enum)}')
    elif kind in ('integer', 'long'):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(f'{path} must be an integer')
        _check_range(shape, value, path)
    elif kind in ('float', 'double'):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_request(f'{path} must be a number')
        _check_range(shape, value, path)
    elif kind == 'boolean':
        if not isinstance(value, bool):
            raise bad_request(f'{path} must be a boolean')
    # timestamps and blobs do not occur in the operations served here


def _join(path: str, name: str) -> str:
    return f'{path}.{name}' if path else name


def _check_length(shape, length: int, path: str, unit: str) -> None:
    low, high = shape.metadata.get('min'), shape.metadata.get('max')
    if low is not None and length < low:
        raise bad_request(f'{path} must have at least {low} {unit}')
    if high is not None and length > high:
        raise bad_request(f'{path} must have at most {high} {unit}')


def _check_range(shape, value, path: str) -> None:
    low, high = shape.metadata.get('min'), shape.metadata.get('max')
    if low is not None and value < low:
        raise bad_request(f'{path} must be at least {low}')
    if high is not None and value > high:
        raise bad_request(f'{path} must be at most {high}')


# --------------------------------------------------------------------------- routing

@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    pattern: re.Pattern
    status: int


def _route_for(name: str) -> Route:
    op = SERVICE_MODEL.operation_model(name)
    path = op.http['requestUri'].split('?', 1)[0]
    parts = []
    for segment in path.strip('/').split('/'):
        label = re.fullmatch(r'\{(\w+)(\+?)\}', segment)
        if label:
            parts.append(f'(?P<{label[1]}>{".+" if label[2] else "[^/]+"})')
        else:
            parts.append(re.escape(segment))
    return Route(
        operation=name,
        method=op.http['method'],
        pattern=re.compile('/' + '/'.join(parts)),
        status=int(op.http.get('responseCode', 200)),
    )


ROUTES = tuple(_route_for(name) for name in OPERATIONS)


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The operation a request addresses, and its URI labels (percent-decoded)."""
    for route in ROUTES:
        found = route.pattern.fullmatch(path)
        if found and route.method == method:
            return route, {k: unquote(v) for k, v in found.groupdict().items()}
    raise ApiError('UnknownOperationException', f'No operation for {method} {path}')


def parse_input(
    operation: str,
    labels: Mapping[str, str],
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """Turn an HTTP request into the operation's input dict, then validate it."""
    shape = SERVICE_MODEL.operation_model(operation).input_shape
    try:
        document = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise bad_request(f'Request body is not valid JSON: {exc}') from None
    if not isinstance(document, dict):
        raise bad_request('Request body must be a JSON object')
    params: dict[str, Any] = {}
    for name, member in shape.members.items():
        where = member.serialization.get('location')
        wire = member.serialization.get('name', name)
        if where == 'uri':
            raw = labels.get(wire)
        elif where == 'querystring':
            raw = query.get(wire, [None])[0]
        elif where == 'header':
            raw = headers.get(wire)
        else:
            raw = document.get(wire)
        if raw is None:
            continue
        if where and member.type_name in ('integer', 'long'):
            try:
                raw = int(raw)
            except ValueError:
                raise bad_request(f'{name} must be an integer') from None
        params[name] = raw
    validate(shape, params, '')
    return params
