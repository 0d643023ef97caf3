"""The order model: the one source of truth of the order JSON schema and its validation.

The OpenAPI document embeds `Order.model_json_schema()`, and the intake validates every order
against the model's own core schema, exported to `entrix.orders.order_schema` (a test fails when
the export is stale), so the published schema and the validator cannot drift apart.

It is the one home of the client's fields: the export names them (`order_schema.FIELDS`, and
`OPTIONAL_FIELDS` for those the client may leave out), and the table item, GET's reply, the
results' line and the OpenAPI document derive theirs from it. Adding a field is an edit here, a
check in `entrix.orders.checks` when it needs one, and `make order-schema openapi`;
tests/unit/test_order_fields.py fails when a field does not reach every place.

An optional field is `Annotated[..., OPTIONAL]`: its default is None, the client may leave it
out, and the validator then leaves it out of the order (it is never stored or shown as null;
null is not an accepted value).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from entrix.orders.checks import Refused, dynamodb_number, record_id_bytes
from entrix.orders.limits import MAX_PARAMETER_1_CHARS, MAX_RECORD_ID_BYTES
from entrix.orders.numbers import (
    MAX_ADJUSTED_EXPONENT,
    MAX_SIGNIFICANT_DIGITS,
    MIN_ADJUSTED_EXPONENT,
)

_Checked = TypeVar("_Checked")


def _pydantic(check: Callable[[Any], _Checked]) -> Callable[[Any], _Checked]:
    """`check` as a pydantic validator: its refusal becomes an error of the refusal's own type.

    `__wrapped__` (set by functools.wraps) leads the schema export back to `check` itself.
    """

    @functools.wraps(check)
    def validator(value: Any) -> _Checked:
        try:
            return check(value)
        except Refused as refused:
            raise PydanticCustomError(refused.error_type, refused.message) from None

    return validator


def _left_out(schema: dict[str, Any]) -> None:
    """The published schema shows no default: a field left out is absent, never null."""
    schema.pop("default", None)


# Annotation of an optional field: `name: Annotated[SomeType, OPTIONAL]`.
OPTIONAL = Field(default=None, json_schema_extra=_left_out)

RecordId = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_RECORD_ID_BYTES,
        description=(
            f"The order's identity: non-empty, at most {MAX_RECORD_ID_BYTES} UTF-8 bytes, unique "
            "within a request, and the caller's own: other clients may use the same record_id "
            "for orders of theirs. Sending it again with identical content changes nothing; "
            "with other content it replaces (amends) the order while the order is pending and "
            "no auction run has claimed it, and is refused (409) once a run has claimed it, its "
            "result is recorded or it is cancelled. After the order expires the record_id is "
            "free again."
        ),
    ),
    AfterValidator(_pydantic(record_id_bytes)),
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
    PlainValidator(_pydantic(dynamodb_number)),
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
