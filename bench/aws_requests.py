"""Count every request the embedded AWS endpoint serves, by caller, service and operation.

The counting is a WSGI middleware around moto's server app. `entrix.local.endpoint.AwsEndpoint`
builds its `ThreadedMotoServer` itself and offers no hook, so `counting_requests()` swaps the
app factory that `ThreadedMotoServer` uses while an in-process endpoint starts (the hook we would
rather have: an `app_middleware` argument on `AwsEndpoint`).

The caller is told apart by the access key each client signs with: moto's Step Functions
interpreter signs as `ak` (its Lambda invokes and `sns:publish` tasks), the handlers and the
local runtime as `entrix-local`, and the benchmark's own observing client as `OBSERVER_KEY`.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

OBSERVER_KEY = "bench-observer"
_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/aws4_request")
_LAMBDA_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
S3_SERVICE = "s3"
SNS_PUBLISHES = {"Publish", "PublishBatch"}
SNS_BILLED_CHUNK_BYTES = 64 * 1024
_SNS_BATCH_ENTRY = re.compile(r"^PublishBatchRequestEntries\.member\.\d+\.Id$")


@dataclass(frozen=True)
class Call:
    """One request: who signed it, which service, which operation (and for Lambda, which
    function; for BatchWriteItem, how many items it wrote; for SNS Publish and PublishBatch, how
    many messages it carried and how many 64 KiB chunks its body takes, which SNS bills as one
    request each; the body is URL-encoded, so that count is an upper bound)."""

    caller: str
    service: str
    operation: str
    target: str = ""
    items: int = 1
    chunks: int = 1


def classify(environ: dict[str, Any], body: bytes) -> Call:
    """The call a WSGI request is, from its signature, `X-Amz-Target`, form or REST path."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    caller, service = (match.group(1), match.group(2)) if match else ("", "")
    path = unquote(environ.get("PATH_INFO", ""))
    method = environ.get("REQUEST_METHOD", "GET")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        operation = target.rpartition(".")[2]
        items = _batch_items(body) if operation == "BatchWriteItem" else 1
        return Call(caller, service, operation, items=items)
    if service == "lambda":
        invoked = _LAMBDA_INVOKE.match(path)
        if invoked:
            return Call(caller, service, "Invoke", target=invoked.group(1))
        return Call(caller, service, f"{method} {path}")
    if service == S3_SERVICE:
        return Call(caller, service, _s3_operation(method, path, environ.get("QUERY_STRING", "")))
    form = parse_qs(body.decode("utf-8", "replace")) if method == "POST" else {}
    query = parse_qs(environ.get("QUERY_STRING", ""))
    action = (form.get("Action") or query.get("Action") or [f"{method} {path}"])[0]
    if service == "sns" and action in SNS_PUBLISHES:
        entries = sum(1 for name in form if _SNS_BATCH_ENTRY.match(name))
        chunks = max(1, -(-len(body) // SNS_BILLED_CHUNK_BYTES))
        return Call(caller, service, action, items=max(1, entries), chunks=chunks)
    return Call(caller, service or "unknown", action)


def _batch_items(body: bytes) -> int:
    try:
        requests = json.loads(body)["RequestItems"]
    except (ValueError, KeyError, TypeError):
        return 1
    return sum(len(writes) for writes in requests.values())


def _s3_operation(method: str, path: str, query: str) -> str:
    """Path-style S3 (moto's server): `/bucket` is a bucket operation, `/bucket/key` an object."""
    on_object = "/" in path.strip("/")
    kind = "Object" if on_object else "Bucket"
    if not on_object and query:
        kind = f"Bucket({query.split('=')[0].split('&')[0]})"
    verbs = {"GET": "Get", "PUT": "Put", "HEAD": "Head", "DELETE": "Delete", "POST": "Post"}
    if method == "GET" and not on_object and not query:
        return "ListObjects"
    return f"{verbs.get(method, method)}{kind}"


class RequestCounter:
    """Thread-safe tally of calls, and of the endpoint's time serving them; `reset()` starts a
    new measurement window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[Call] = Counter()
        self._seconds: defaultdict[Call, float] = defaultdict(float)

    def record(self, call: Call, seconds: float = 0.0) -> None:
        with self._lock:
            self._calls[call] += 1
            self._seconds[call] += seconds

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._seconds.clear()

    def snapshot(self) -> Counter[Call]:
        with self._lock:
            return Counter(self._calls)

    def served_seconds(self) -> dict[Call, float]:
        """Seconds the endpoint spent serving each kind of call (summed over its requests)."""
        with self._lock:
            return dict(self._seconds)


def tally(
    calls: Counter[Call], keep: Callable[[Call], bool] = lambda call: True
) -> Counter[tuple[str, str]]:
    """Requests by (service, operation) among the calls `keep` accepts."""
    counted: Counter[tuple[str, str]] = Counter()
    for call, times in calls.items():
        if keep(call):
            counted[(call.service, call.operation)] += times
    return counted


def not_observer(call: Call) -> bool:
    return call.caller != OBSERVER_KEY


class CountingMiddleware:
    """Records each request, and the time the wrapped WSGI app takes to answer it (the body
    passed on intact)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], counter: RequestCounter) -> None:
        self.app = app
        self.counter = counter

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        call = classify(environ, body)
        started = time.perf_counter()
        try:
            return self.app(environ, start_response)
        finally:
            self.counter.record(call, time.perf_counter() - started)


@contextlib.contextmanager
def counting_requests(counter: RequestCounter) -> Iterator[None]:
    """Every `ThreadedMotoServer` started in this block serves through a `CountingMiddleware`."""
    from moto.moto_server import threaded_moto_server

    original = threaded_moto_server.DomainDispatcherApplication

    def counted_app(*args: Any, **kwargs: Any) -> CountingMiddleware:
        return CountingMiddleware(original(*args, **kwargs), counter)

    threaded_moto_server.DomainDispatcherApplication = counted_app  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        threaded_moto_server.DomainDispatcherApplication = original  # type: ignore[misc]
