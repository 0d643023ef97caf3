"""Turn a request body into validated orders, or into a list of every problem found.

Parsing is strict on purpose: exact UTF-8, one JSON value and nothing after it, no duplicate
keys, no `NaN`/`Infinity`, numbers kept as `Decimal`. Any bad input ends as `RequestRejected`
(a 4xx), never as an unexpected exception (a 5xx).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from entrix.orders.limits import MAX_BODY_BYTES, MAX_ORDERS, TTL_SECONDS
from entrix.orders.order_schema import CONFIG, SCHEMA
from entrix.orders.validator import compile_schema
from entrix.timestamps import iso_milliseconds

# Cap on listed problems and on echoed field names, so an error reply always stays small.
MAX_PROBLEMS = 100
_MAX_FIELD_CHARS = 100
_MAX_LISTED_DUPLICATES = 10

# Plain reasons for pydantic's error types (entrix.orders.validator reports errors as pydantic
# does); custom errors already carry their own message.
_REASONS = {
    "missing": "is required",
    "extra_forbidden": "is not an allowed field",
    "string_type": "must be a string",
    "string_unicode": "must be valid Unicode text (no unpaired surrogates)",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "string_too_short": "must not be empty",
}


# An order that passed validation: the fields of `entrix.orders.model.Order` the client sent
# (an optional field left out is absent, not None).
ValidOrder = dict[str, Any]


# The order model's own validation schema (exported from it), checked without pydantic.
_validate_order = compile_schema(SCHEMA, CONFIG)


@dataclass(frozen=True)
class Problem:
    """One reason a request is refused; `index` is the order's position, None for the body."""

    index: int | None
    field: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


class RequestRejected(Exception):
    """The request is invalid; nothing was stored."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class InvalidRequest(RequestRejected):
    """Malformed or invalid orders (HTTP 400)."""


class TooLarge(RequestRejected):
    """Body or order count beyond the documented limits (HTTP 413)."""


class _JsonRefused(ValueError):
    """Valid JSON grammar that we still refuse (duplicate keys, non-finite literals)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _JsonRefused(f"duplicate key {key[:_MAX_FIELD_CHARS]!r} in an object")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise _JsonRefused(f"{name} is not a JSON number")


def _body_problem(reason: str) -> list[Problem]:
    return [Problem(index=None, field="", reason=reason)]


def parse_json(body: bytes) -> Any:
    """Decode and parse one strict JSON value, numbers as `Decimal`."""
    if len(body) > MAX_BODY_BYTES:
        limit = f"must be at most {MAX_BODY_BYTES} bytes"
        raise TooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes", _body_problem(limit))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequest(
            "the body is not valid UTF-8", _body_problem(f"invalid UTF-8 at byte {error.start}")
        ) from None
    try:
        return json.loads(
            text,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as error:
        reason = f"{error.msg} at line {error.lineno} column {error.colno}"
        raise InvalidRequest("the body is not valid JSON", _body_problem(reason)) from None
    except _JsonRefused as error:
        raise InvalidRequest("the body is not acceptable JSON", _body_problem(str(error))) from None
    except RecursionError:
        raise InvalidRequest(
            "the body is not acceptable JSON", _body_problem("nested too deeply")
        ) from None


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)[:_MAX_FIELD_CHARS]


def _reason(error: Any) -> str:
    if error["type"] == "string_too_long":
        return f"must be at most {error['ctx']['max_length']} characters"
    return str(_REASONS.get(error["type"], error["msg"]))


def _duplicate_problems(items: list[Any]) -> list[Problem]:
    """Each string record_id seen more than once, reported at every index where it occurs."""
    positions: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        record_id = item.get("record_id") if isinstance(item, dict) else None
        if isinstance(record_id, str):
            positions[record_id].append(index)
    problems = []
    for indexes in positions.values():
        for index in indexes if len(indexes) > 1 else ():
            others = [str(other) for other in indexes if other != index]
            listed = ", ".join(others[:_MAX_LISTED_DUPLICATES])
            if len(others) > _MAX_LISTED_DUPLICATES:
                listed += f" and {len(others) - _MAX_LISTED_DUPLICATES} more"
            problems.append(
                Problem(index, "record_id", f"duplicate of the order at index {listed}")
            )
    return problems


def validate_orders(value: Any) -> list[ValidOrder]:
    """Validate a parsed body as 1 to MAX_ORDERS orders with unique record_ids."""
    if not isinstance(value, list):
        raise InvalidRequest(
            "the body must be a JSON array of orders", _body_problem("must be a JSON array")
        )
    if not value:
        raise InvalidRequest(
            "the body must hold at least one order", _body_problem("must not be empty")
        )
    if len(value) > MAX_ORDERS:
        raise TooLarge(
            f"at most {MAX_ORDERS} orders per request (got {len(value)})",
            _body_problem(f"must hold at most {MAX_ORDERS} orders"),
        )
    problems: list[Problem] = []
    orders: list[ValidOrder] = []
    for index, item in enumerate(value):
        fields, errors = _validate_order(item)
        if errors:
            problems.extend(
                Problem(index, _field_name(error["loc"]), _reason(error)) for error in errors
            )
        else:
            orders.append(fields)
    problems.extend(_duplicate_problems(value))
    if problems:
        problems.sort(key=lambda problem: problem.index or 0)
        count = len(problems)
        listed = "" if count <= MAX_PROBLEMS else f"; the first {MAX_PROBLEMS} are listed"
        raise InvalidRequest(f"{count} invalid order field(s){listed}", problems[:MAX_PROBLEMS])
    return orders


def parse_orders(body: bytes) -> list[ValidOrder]:
    """The orders of a POST /orders body, or `RequestRejected` naming every problem."""
    return validate_orders(parse_json(body))


@dataclass(frozen=True)
class Receipt:
    """When a request was received and when its orders expire (the table's TTL)."""

    received_at: str
    expires_at: int

    @classmethod
    def at(cls, epoch_seconds: float) -> Receipt:
        return cls(
            received_at=iso_milliseconds(epoch_seconds),
            expires_at=int(epoch_seconds) + TTL_SECONDS,
        )
