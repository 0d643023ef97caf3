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
