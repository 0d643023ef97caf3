"""The order model: the one source of truth of the order JSON schema and its validation.

The OpenAPI document embeds `Order.model_json_schema()`, and the intake validates every order
with the same model, so the published schema and the validator cannot drift apart.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from entrix.orders.limits import MAX_PARAMETER_1_CHARS, MAX_RECORD_ID_BYTES
from entrix.orders.numbers import (
    MAX_ADJUSTED_EXPONENT,
    MAX_SIGNIFICANT_DIGITS,
    MIN_ADJUSTED_EXPONENT,
    dynamodb_number_problem,
)


def _record_id_bytes(record_id: str) -> str:
    size = len(record_id.encode("utf-8"))
    if size > MAX_RECORD_ID_BYTES:
        raise PydanticCustomError(
            "record_id_bytes",
            "must be at most {limit} UTF-8 bytes (is {size})",
            {"limit": MAX_RECORD_ID_BYTES, "size": size},
        )
    return record_id


def _dynamodb_number(value: object) -> Decimal:
    """Accept a JSON number (parsed as Decimal; int and float from Python), never a bool."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        raise PydanticCustomError("number_type", "must be a JSON number")
    problem = dynamodb_number_problem(number)
    if problem is not None:
        raise PydanticCustomError("number_range", problem)
    return number


RecordId = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_RECORD_ID_BYTES,
        description=(
            f"The order's identity: non-empty, at most {MAX_RECORD_ID_BYTES} UTF-8 bytes, unique "
            "within a request. Sending it again overwrites the stored order."
        ),
    ),
    AfterValidator(_record_id_bytes),
]
Parameter1 = Annotated[
    str,
    Field(
        strict=True,
        max_length=MAX_PARAMETER_1_CHARS,
        description=f"Free text, at most {MAX_PARAMETER_1_CHARS} characters.",
    ),
]
DynamoDBNumber = Annotated[
    Decimal,
    PlainValidator(_dynamodb_number),
    WithJsonSchema(
        {
            "type": "number",
            "description": (
                "A finite JSON number (integer or fraction, never a boolean or a string), stored "
                f"exactly: at most {MAX_SIGNIFICANT_DIGITS} significant digits and a magnitude "
                f"of 0 or from 1E{MIN_ADJUSTED_EXPONENT} to below 1E+{MAX_ADJUSTED_EXPONENT + 1}."
            ),
        }
    ),
]


class Order(BaseModel):
    """One auction order as the client sends it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    record_id: RecordId
    parameter_1: Parameter1
    parameter_2: DynamoDBNumber
