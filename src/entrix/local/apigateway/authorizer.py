"""A method's Lambda REQUEST authorizer, run as API Gateway runs it.

A missing identity source is a 401 without calling the function; `Unauthorized` raised is a 401;
a policy that denies, or allows nothing matching the method ARN, is a 403; any other failure a
500. The answer is cached for `AuthorizerResultTtlInSeconds`, keyed on the identity source
values, and the cached policy is evaluated against each request's method ARN: as on AWS, a token
that expires within the TTL keeps its cached Allow (and its context) until the TTL ends.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from entrix.local.apigateway.model import Authorizer
from entrix.local.apigateway.proxy import GatewayError, Invoker, as_list, first_header, json_or_none

logger = logging.getLogger(__name__)

_EXPLICIT_DENY = "User is not authorized to access this resource with an explicit deny"


class Authorizers:
    """Runs the authorizers of one API and keeps their cached answers."""

    def __init__(self, invoke: Invoker, clock: Callable[[], float]) -> None:
        self.invoke = invoke
        self.clock = clock
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()

    def flush(self) -> None:
        """Forget every cached answer (FlushStageAuthorizersCache)."""
        with self._cache_lock:
            self._cache.clear()

    def authorize(
        self, authorizer: Authorizer, event: dict[str, Any], method_arn: str
    ) -> dict[str, Any]:
        """Run (or reuse the cached answer of) the authorizer; the authorizer context on success."""
        identity = self._identity(authorizer, event)
        key = (authorizer.authorizer_id, identity)
        started = self.clock()
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached and cached[0] > started:
            output = cached[1]
        else:
            output = self._call(authorizer, event, method_arn)
            if authorizer.ttl_seconds > 0:
                with self._cache_lock:
                    self._cache[key] = (started + authorizer.ttl_seconds, output)
        latency = int((self.clock() - started) * 1000)
        enforce(output.get("policyDocument"), method_arn)
        return {**request_context(output), "integrationLatency": latency}

    def _identity(self, authorizer: Authorizer, event: dict[str, Any]) -> tuple[str, ...]:
        values = []
        for source in authorizer.identity_sources:
            value: str | None
            if source.startswith("method.request.header."):
                value = first_header(event["multiValueHeaders"] or {}, source.rsplit(".", 1)[1])
            elif source.startswith("method.request.querystring."):
                value = (event["queryStringParameters"] or {}).get(source.rsplit(".", 1)[1])
            else:  # context.NAME, the only other kind the model accepts
                value = event["requestContext"].get(source.split(".", 1)[1])
            if not value:
                raise GatewayError("UNAUTHORIZED")
            values.append(value)
        return tuple(values)

    def _call(
        self, authorizer: Authorizer, event: dict[str, Any], method_arn: str
    ) -> dict[str, Any]:
        """The authorizer's answer to the request's event (without its body), checked."""
        authorizer_event = {
            "type": "REQUEST",
            "methodArn": method_arn,
            **{k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")},
        }
        result = self.invoke(authorizer.function_name, authorizer_event)
        output = json_or_none(result.payload)
        if result.errored:
            message = output.get("errorMessage") if isinstance(output, dict) else None
            if message == "Unauthorized":
                raise GatewayError("UNAUTHORIZED")
            logger.error("authorizer %s failed: %s", authorizer.function_name, result.payload)
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR")
        if not (
            isinstance(output, dict)
            and isinstance(output.get("policyDocument"), dict)
            and "principalId" in output
            and all(
                isinstance(v, str | int | float | bool)
                for v in (output.get("context") or {}).values()
            )
        ):
            logger.error("authorizer %s answered %s", authorizer.function_name, result.payload)
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR")
        return output


def request_context(output: dict[str, Any]) -> dict[str, Any]:
    """`requestContext.authorizer` of the proxy event, from the authorizer's answer: its
    `principalId` and each `context` value as a REST API passes them, as strings (`true`,
    `false`, `1700000000`), so a handler parses what it needs (the cached answer included)."""
    values = {**(output.get("context") or {}), "principalId": output.get("principalId")}
    return {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in values.items()
    }


def enforce(policy: dict[str, Any] | None, method_arn: str) -> None:
    """403 unless the policy allows execute-api:Invoke on the method ARN with no deny."""
    allowed = False
    for statement in as_list((policy or {}).get("Statement")):
        actions = as_list(statement.get("Action"))
        resources = as_list(statement.get("Resource"))
        if not any(_arn_match(a, "execute-api:Invoke") for a in actions):
            continue
        if not any(_arn_match(r, method_arn) for r in resources):
            continue
        if statement.get("Effect") == "Deny":
            raise GatewayError("ACCESS_DENIED", _EXPLICIT_DENY)
        if statement.get("Effect") == "Allow":
            allowed = True
    if not allowed:
        raise GatewayError("ACCESS_DENIED")


def _arn_match(pattern: str, value: str) -> bool:
    """IAM-style matching: `*` any run of characters, `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None
