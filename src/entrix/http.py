"""API Gateway Lambda proxy helpers: read headers, body and caller, shape JSON replies.

Replies are written by a tiny encoder that prints `Decimal` as its exact number text, because
`json.dumps` can only print numbers through binary float. Every refusal has one shape, the same
as API Gateway's own gateway responses (infra/constructs/intake.py): `{"message", "code",
"request_id"}`, codes in API Gateway's response-type vocabulary, plus fields of its own.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from entrix.identity import LEEWAY_SECONDS, valid_subject
from entrix.orders.limits import MAX_RECORD_ID_BYTES
from entrix.orders.numbers import number_text
from entrix.telemetry import api_request_id

JSON_HEADERS = {"Content-Type": "application/json"}

# Error codes of the handlers' refusals; API Gateway's own responses use its response types.
BAD_REQUEST_BODY = "BAD_REQUEST_BODY"
UNAUTHORIZED = "UNAUTHORIZED"
NOT_FOUND = "NOT_FOUND"
ORDER_EXPIRED = "ORDER_EXPIRED"
ORDER_CONFLICT = "ORDER_CONFLICT"
REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
ORDERS_NOT_STORED = "ORDERS_NOT_STORED"
RATE_LIMITED = "RATE_LIMITED"
DAILY_ORDER_QUOTA_EXCEEDED = "DAILY_ORDER_QUOTA_EXCEEDED"
USAGE_UNAVAILABLE = "USAGE_UNAVAILABLE"


class BadRequestBody(Exception):
    """The proxy event carries a body that is not UTF-8 text or valid base64."""


def to_json(value: Any) -> str:
    """JSON text of dicts, lists, strings, numbers (Decimal exact), booleans and None."""
    if isinstance(value, Decimal):
        return number_text(value)
    if isinstance(value, Mapping):
        members = (f"{json.dumps(str(key))}:{to_json(item)}" for key, item in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(item) for item in value) + "]"
    return json.dumps(value, allow_nan=False)


def response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Lambda proxy integration response with a JSON body."""
    return {
        "statusCode": status,
        "headers": {**JSON_HEADERS, **(headers or {})},
        "body": to_json(payload),
    }


def no_content() -> dict[str, Any]:
    """A 204 reply: no body, no Content-Type."""
    return {"statusCode": 204, "headers": {}, "body": ""}


def error(
    event: Mapping[str, Any],
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    **details: Any,
) -> dict[str, Any]:
    """A refusal in the one error shape: message, code and request id, then `details`."""
    payload = {"message": message, "code": code, "request_id": api_request_id(event), **details}
    return response(status, payload, headers)


class Unauthenticated(Exception):
    """The request carries no usable caller: API Gateway let it through on a cached Allow."""


def caller(event: Mapping[str, Any], now: float) -> str:
    """The subject that owns what this request reads or writes, from the authorizer's context.

    API Gateway caches the authorizer's Allow per token for the cache TTL, so a token can reach
    a handler after its `exp`: the authorizer puts `exp` in its context and this refuses it once
    past `exp` plus the tokens' leeway. REST APIs pass context values as strings.
    """
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    if not isinstance(authorizer, Mapping):
        raise Unauthenticated("no authorizer context")
    subject = authorizer.get("sub")
    if not valid_subject(subject):
        raise Unauthenticated("no valid subject in the authorizer context")
    try:
        expires = float(authorizer.get("exp"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Unauthenticated("no expiry in the authorizer context") from None
    if now > expires + LEEWAY_SECONDS:
        raise Unauthenticated("the token has expired")
    return str(subject)


def unauthenticated(event: Mapping[str, Any], refusal: Unauthenticated) -> dict[str, Any]:
    """The 401 for a request whose token the handler refuses (`caller`)."""
    return error(event, 401, UNAUTHORIZED, f"Unauthorized: {refusal}")


def header(event: Mapping[str, Any], name: str) -> str | None:
    """A request header's value, matching the name case-insensitively."""
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted and value is not None:
            return str(value)
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == wanted and values:
            return str(values[0])
    return None


def is_json_content(content_type: str | None) -> bool:
    """True for `application/json`, with no charset or a UTF-8 one."""
    if content_type is None:
        return False
    media_type, *parameters = (part.strip().lower() for part in content_type.split(";"))
    if media_type != "application/json":
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


def body_bytes(event: Mapping[str, Any]) -> bytes:
    """The raw request body, base64-decoded when API Gateway encoded it."""
    body = event.get("body")
    if body is None:
        return b""
    try:
        if event.get("isBase64Encoded"):
            return base64.b64decode(body, validate=True)
        return str(body).encode("utf-8")
    except (binascii.Error, ValueError) as error:
        raise BadRequestBody(str(error)) from None


def not_found(event: Mapping[str, Any], record_id: str | None) -> dict[str, Any]:
    """The 404 of an order the caller has not got (unknown, expired or another client's)."""
    return error(event, 404, NOT_FOUND, "no such order", record_id=record_id)


def expired(event: Mapping[str, Any], record_id: str, expires_at: Any) -> dict[str, Any]:
    """The 404 of the caller's order whose 24 hours are over but which DynamoDB's TTL has not
    deleted yet (it does within days): the status of an unknown order, as the API promises, with
    its own code and `expires_at`, so the client can tell it existed. Once deleted, its history
    is in the results bucket only (docs/architecture.md, "History archive") and the answer is
    NOT_FOUND."""
    return error(
        event,
        404,
        ORDER_EXPIRED,
        "the order has expired",
        record_id=record_id,
        expires_at=expires_at,
    )


def path_record_id(event: Mapping[str, Any]) -> str | None:
    """The path's record_id when an order could have it; others are not looked up (DynamoDB
    would refuse the key)."""
    record_id = (event.get("pathParameters") or {}).get("record_id")
    if not isinstance(record_id, str):
        return None
    try:
        size = len(record_id.encode("utf-8"))
    except UnicodeEncodeError:
        return None
    return record_id if 0 < size <= MAX_RECORD_ID_BYTES else None
