"""Faults injected into real boto3 clients through botocore's event hooks.

A `before-call` handler that returns `(http_response, parsed)` replaces the call to AWS: botocore
raises the parsed error exactly as if the service had answered it, and the adapter under test
sees an ordinary `ClientError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse


def error_reply(code: str, status: int) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {
        "Error": {"Code": code, "Message": f"injected {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return AWSResponse("https://injected.invalid", status, {}, None), parsed


class Fault:
    """Answers `operation` (e.g. "BatchWriteItem") of `client` with an error when `when(n)` holds
    for the n-th call (1-based); other calls go through. `calls` counts every call, also when
    they come from several threads at once (the intake's parallel puts)."""

    def __init__(
        self,
        client: Any,
        operation: str,
        code: str,
        status: int = 400,
        when: Callable[[int], bool] = lambda _: True,
    ) -> None:
        self.code, self.status, self.when = code, status, when
        self.calls = 0
        self._lock = threading.Lock()
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-call.{service}.{operation}", self._before_call)

    def _before_call(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        with self._lock:
            self.calls += 1
            failing = self.when(self.calls)
        return error_reply(self.code, self.status) if failing else None


_ERROR_BODIES = {
    "rest-xml": '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    "<Message>injected {code}</Message></Error>",
    "query": '<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>'
    "<Message>injected {code}</Message></Error></ErrorResponse>",
    "json": '{{"__type": "{code}", "message": "injected {code}"}}',
}


class _Body:
    """What botocore reads an HTTP response's body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


class HttpFault:
    """Answers the n-th API call of `operation` (1-based) with an HTTP error when `when(n)`
    holds, on every attempt: injected at `before-send`, below botocore's retries, so the
    client's own retry configuration is what the code under test meets. `calls` counts API
    calls, `attempts` the HTTP requests of the failing ones (retries included). With `where`,
    only the calls whose request (botocore's request dict: `url_path`, `body`...) it picks
    count and fail."""

    def __init__(
        self,
        client: Any,
        operation: str,
        code: str,
        status: int = 500,
        when: Callable[[int], bool] = lambda _: True,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
    ) -> None:
        self.code, self.status, self.when, self.where = code, status, when, where
        self.calls = 0
        self.attempts = 0
        self._lock = threading.Lock()
        self._failing = threading.local()
        self._protocol = client.meta.service_model.protocol
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-call.{service}.{operation}", self._before_call)
        client.meta.events.register(f"before-send.{service}.{operation}", self._before_send)

    def _before_call(self, params: dict[str, Any] | None = None, **_: Any) -> None:
        if params is not None and not self.where(params):
            self._failing.now = False
            return
        with self._lock:
            self.calls += 1
            self._failing.now = self.when(self.calls)

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        if not getattr(self._failing, "now", False):
            return None
        with self._lock:
            self.attempts += 1
        return refused_request(request, self.code, self.status, self._protocol)


def refused_request(request: Any, code: str, status: int, protocol: str) -> AWSResponse:
    """The HTTP reply of a service refusing `request` with `code`, for a `before-send` handler.

    botocore hands every before-send handler the request and takes the first response; moto's
    in-process mock is one of them, after the test's, and would still carry the request out (a
    PutObject stored, say). Sent nowhere it serves, the request is left alone.
    """
    request.url = "https://fault.injected.invalid/"
    headers = {"Content-Type": "application/xml", "x-amzn-ErrorType": code}
    body = _ERROR_BODIES[protocol].format(code=code).encode()
    return AWSResponse("https://fault.injected.invalid/", status, headers, _Body(body))
