"""HTTP front end: a ThreadingHTTPServer speaking the Customer Profiles REST-JSON protocol.

Start it from Python with ``start_emulator(...)`` (background thread, port chosen by the
OS) or from a shell with ``python -m emulator``.  Requests are signed by boto3 with SigV4;
the signature is accepted without being checked.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import parse_qs, unquote, urlsplit

from .faults import ACCEPTED, INTERNAL_ERROR, FaultConfig, MergeGate, RequestCounters
from .model import ApiError, match_route, parse_input
from .store import Store

HOST = '127.0.0.1'
CONTROL_PREFIX = '/_emulator/'


class _Ghost(Exception):
    """Raised after a merge is applied to drop the connection without an answer."""


class Backend:
    """The emulator's state and the code that answers each operation."""

    def __init__(self, faults: FaultConfig):
        self.store = Store()
        self.gate = MergeGate(faults)
        self.counters = RequestCounters()
        self._ops = {
            'CreateDomain': self.store.create_domain,
            'GetDomain': self.store.get_domain,
            'CreateProfile': self.store.create_profile,
            'UpdateProfile': self.store.update_profile,
            'BatchGetProfile': self.store.batch_get_profile,
            'SearchProfiles': self.store.search_profiles,
            'MergeProfiles': self._merge_profiles,
        }

    @property
    def latency_s(self) -> float:
        return self.gate.config.latency_ms / 1000.0

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._ops[operation](params)

    def _merge_profiles(self, p: dict[str, Any]) -> dict[str, Any]:
        self.store.check_merge_request(p)  # 400 / unknown domain 404 before any fault
        self.gate.record_repeat(self.store.repeat_kind(p))
        outcome = self.gate.admit()
        if outcome == INTERNAL_ERROR:
            raise ApiError('InternalServerException', 'Injected internal error; nothing was merged')
        if outcome != ACCEPTED:
            raise ApiError('ThrottlingException', 'Rate exceeded')
        merged_away = self.store.merge_profiles(p)
        ghost = self.gate.ghost()
        self.gate.record_applied(merged_away, ghost)
        if ghost:
            raise _Ghost()
        return {'Message': f'Merged {merged_away} profile(s) into {p["MainProfileId"]}'}

    def stats(self) -> dict[str, Any]:
        return {**self.counters.snapshot(), **self.gate.snapshot()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, backend: Backend, port: int, verbose: bool):
        self.backend = backend
        self.verbose = verbose
        super().__init__((HOST, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'  # keep-alive, as botocore's connection pool expects
    server_version = 'profile-dedup-emulator'
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _dispatch(self) -> None:
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        url = urlsplit(self.path)
        if url.path.startswith(CONTROL_PREFIX):
            self._control(url.path[len(CONTROL_PREFIX):])
            return
        backend = self.server.backend
        operation = 'Unknown'
        try:
            route, labels = match_route(self.command, url.path)
            operation = route.operation
            if backend.latency_s:
                time.sleep(backend.latency_s)
            backend.counters.request(operation)
            params = parse_input(
                operation, labels, parse_qs(url.query), dict(self.headers.items()), body
            )
            self._send(route.status, backend.call(operation, params))
        except _Ghost:
            self.close_connection = True  # the merge is applied; the client gets no answer
        except ApiError as exc:
            backend.counters.error(operation, exc.code)
            self._send(exc.status, {'Message': exc.message}, error=exc.code)
        except Exception as exc:  # a bug in the emulator: answer like the service would
            traceback.print_exc(file=sys.stderr)
            backend.counters.error(operation, 'InternalServerException')
            self._send(500, {'Message': f'Emulator error: {exc!r}'}, error='InternalServerException')

    def _control(self, path: str) -> None:
        backend = self.server.backend
        if self.command == 'GET' and path == 'stats':
            self._send(200, backend.stats())
        elif self.command == 'GET' and path.startswith('profiles/'):
            try:
                self._send(200, backend.store.dump(unquote(path[len('profiles/'):])))
            except ApiError as exc:
                self._send(exc.status, {'Message': exc.message}, error=exc.code)
        else:
            self._send(404, {'Message': f'No control endpoint {self.command} /_emulator/{path}'},
                       error='UnknownOperationException')

    def _send(self, status: int, document: dict[str, Any], error: str | None = None) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(payload)))
        self.send_header('x-amzn-RequestId', str(uuid.uuid4()))
        if error:
            self.send_header('x-amzn-ErrorType', error)
        self.end_headers()
        self.wfile.write(payload)


def read_profiles_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Profile objects from a JSONL file, one per non-blank line."""
    profiles = []
    with open(path, encoding='utf-8') as handle:
        for n, line in enumerate(handle, 1):
            if line.strip():
                try:
                    profiles.append(json.loads(line))
                except ValueError as exc:
                    raise ValueError(f'{path}:{n}: not JSON: {exc}') from None
    return profiles


class Emulator:
    """A running emulator.  Use as a context manager or call ``stop()``."""

    def __init__(self, backend: Backend, server: _Server, domain: str):
        self.backend = backend
        self.domain = domain
        self._server = server
        self.port = server.server_address[1]
        self.url = f'http://{HOST}:{self.port}'
        self._thread: threading.Thread | None = None

    def serve_in_background(self) -> 'Emulator':
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={'poll_interval': 0.05},
            name=f'emulator-{self.port}', daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def stats(self) -> dict[str, Any]:
        """The same document as GET /_emulator/stats."""
        return self.backend.stats()

    def profiles(self, domain: str | None = None) -> list[dict[str, Any]]:
        """Current profiles of a domain, sorted by ProfileId."""
        return self.backend.store.dump(domain or self.domain)['Profiles']

    def merged_into(self, domain: str | None = None) -> dict[str, str]:
        """Merged-away profile id -> the main profile it was merged into."""
        return self.backend.store.dump(domain or self.domain)['MergedInto']

    def set_faults(self, **faults: Any) -> None:
        """Replace the fault settings (FaultConfig fields); counters are kept."""
        self.backend.gate.reconfigure(FaultConfig(**faults))

    def client(self, **config: Any):
        """A boto3 customer-profiles client for this emulator; ``config`` goes to
        ``botocore.config.Config`` (for example ``retries={'max_attempts': 1}``)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            'customer-profiles', endpoint_url=self.url, region_name='us-east-1',
            aws_access_key_id='testing', aws_secret_access_key='testing',
            config=Config(**config) if config else None,
        )

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> 'Emulator':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def create_emulator(
    profiles: Iterable[dict[str, Any]] = (),
    domain: str = 'demo',
    *,
    port: int = 0,
    verbose: bool = False,
    **faults: Any,
) -> Emulator:
    """Build an emulator bound to 127.0.0.1 without starting to serve."""
    backend = Backend(FaultConfig(**faults))
    backend.store.load(domain, profiles)
    return Emulator(backend, _Server(backend, port, verbose), domain)


def start_emulator(
    profiles: Iterable[dict[str, Any]] = (),
    domain: str = 'demo',
    *,
    merge_rate: float | None = None,
    merge_burst: float | None = None,
    error_rate: float = 0.0,
    throttle_rate: float = 0.0,
    ghost_rate: float = 0.0,
    latency_ms: float = 0.0,
    seed: int | None = None,
    port: int = 0,
    verbose: bool = False,
) -> Emulator:
    """Load ``profiles`` into ``domain`` and serve in a background thread.

    Returns an ``Emulator`` with ``.url``, ``.stats()``, ``.profiles()``,
    ``.merged_into()``, ``.client()`` and ``.stop()``.
    """
    return create_emulator(
        profiles, domain, port=port, verbose=verbose,
        merge_rate=merge_rate, merge_burst=merge_burst, error_rate=error_rate,
        throttle_rate=throttle_rate, ghost_rate=ghost_rate, latency_ms=latency_ms, seed=seed,
    ).serve_in_background()
