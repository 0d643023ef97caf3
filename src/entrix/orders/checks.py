"""The order checks that are code rather than constraints, free of pydantic.

Two validators run them: the pydantic model (`entrix.orders.model`, which wraps them as its
validators) and the intake's validator (`entrix.orders.validator`, which reads the schema the
model exports to `entrix.orders.order_schema`). Keeping them here lets the intake validate
without importing pydantic, which would cost the ingest function's cold start ~100 ms.
"""

from __future__ import annotations

from decimal import Decimal

from entrix.orders.limits import MAX_RECORD_ID_BYTES
from entrix.orders.numbers import dynamodb_number_problem


class Refused(ValueError):
    """A value a field may not take: the error's type (as pydantic names error types) and why."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def record_id_bytes(record_id: str) -> str:
    """The record_id, when it fits DynamoDB's key within MAX_RECORD_ID_BYTES UTF-8 bytes."""
    size = len(record_id.encode("utf-8"))
    if size > MAX_RECORD_ID_BYTES:
        raise Refused(
            "record_id_bytes", f"must be at most {MAX_RECORD_ID_BYTES} UTF-8 bytes (is {size})"
        )
    return record_id


def dynamodb_number(value: object) -> Decimal:
    """Accept a JSON number (parsed as Decimal; int and float from Python), never a bool."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        raise Refused("number_type", "must be a JSON number")
    problem = dynamodb_number_problem(number)
    if problem is not None:
        raise Refused("number_range", problem)
    return number
