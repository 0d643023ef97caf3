"""API Gateway Lambda proxy helpers: read headers and body, shape JSON replies.

Replies are written by a tiny encoder that prints `Decimal` as its exact number text, because
`json.dumps` can only print numbers through binary float.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from entrix.orders.numbers import number_text

JSON_HEADERS = {"Content-Type": "application/json"}


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


def response(status: int, payload: Any) -> dict[str, Any]:
    """A Lambda proxy integration response with a JSON body."""
    return {"statusCode": status, "headers": dict(JSON_HEADERS), "body": to_json(payload)}


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
