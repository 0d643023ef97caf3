"""The intake validates with the order model's own schema, as pydantic would, without pydantic.

`entrix.orders.order_schema` is exported from the model (`entrix.orders.schema_export`) and
committed; `entrix.orders.validator` implements the core schema types it holds. These tests fail
when the committed export is stale, when the model uses something the export cannot carry, and
when the validator and pydantic disagree: errors (type, loc, msg, ctx) or values (on chosen
inputs here, on generated ones in tests/properties/test_order_schema_agreement.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
)
from pydantic_core import SchemaValidator

from entrix.orders import order_schema, schema_export
from entrix.orders.checks import dynamodb_number
from entrix.orders.intake import ValidOrder
from entrix.orders.limits import MAX_PARAMETER_1_CHARS, MAX_RECORD_ID_BYTES
from entrix.orders.model import Order, _pydantic
from entrix.orders.validator import compile_schema

COMMITTED = Path(order_schema.__file__)
validate = compile_schema(order_schema.SCHEMA, order_schema.CONFIG)


def pydantic_outcome(item: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """What the model makes of `item`: its fields, or its errors as the intake reads them."""
    try:
        order = Order.model_validate(item)
    except ValidationError as error:
        return None, error.errors(include_url=False, include_input=False)
    return dict(order), []


def test_the_committed_schema_is_the_models_export() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == schema_export.render(), (
        "src/entrix/orders/order_schema.py is stale: run "
        "`python -m entrix.orders.schema_export > src/entrix/orders/order_schema.py`"
    )


def test_the_export_names_the_models_fields_in_order_and_the_optional_ones() -> None:
    names, optional = order_schema.FIELDS, order_schema.OPTIONAL_FIELDS
    assert names == tuple(Order.model_fields) == tuple(order_schema.SCHEMA["fields"])
    assert optional == {
        name for name, field in Order.model_fields.items() if not field.is_required()
    }
    assert optional <= set(names)


def test_the_module_prints_the_export() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "entrix.orders.schema_export"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert printed == schema_export.render()


def test_the_export_is_a_core_schema_pydantic_core_validates_as_the_model_does() -> None:
    """The exported literal is pydantic's own schema language, not a look-alike."""

    def wrapped(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: wrapped(value) for key, value in node.items()}
        return _pydantic(node) if callable(node) else node

    core = SchemaValidator(wrapped(order_schema.SCHEMA), order_schema.CONFIG)  # type: ignore[arg-type]
    for item in [{"record_id": "a", "parameter_1": "", "parameter_2": Decimal("2.1")}, [], {}]:
        try:
            outcome: Any = (core.validate_python(item)[0], [])
        except ValidationError as error:
            outcome = (None, error.errors(include_url=False, include_input=False))
        assert outcome == pydantic_outcome(item)


def test_valid_orders_carry_the_models_fields_and_types() -> None:
    assert ValidOrder._fields == tuple(Order.model_fields)
    assert typing.get_type_hints(ValidOrder) == {
        name: field.annotation for name, field in Order.model_fields.items()
    }


def test_every_error_the_intake_names_is_produced_as_pydantic_does() -> None:
    """One item per error type the validator can give (hypothesis may miss a rare one)."""
    seen = set()
    for item in [
        7,
        {"record_id": 1, "parameter_1": "\ud800", "parameter_2": True, "x": 1},
        {"record_id": "", "parameter_1": "y" * (MAX_PARAMETER_1_CHARS + 1), "parameter_2": "1"},
        {"record_id": "é" * MAX_RECORD_ID_BYTES, "parameter_2": Decimal("1E+126")},
    ]:
        fields, errors = validate(item)
        assert (fields, errors) == pydantic_outcome(item)
        seen |= {error["type"] for error in errors}
    assert seen == {
        "model_type",
        "missing",
        "extra_forbidden",
        "string_type",
        "string_unicode",
        "string_too_short",
        "string_too_long",
        "record_id_bytes",
        "number_type",
        "number_range",
    }


def _exported(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    return schema_export.exported(model.__pydantic_core_schema__)


def _upper(value: str) -> str:
    return value.upper()


class _Pattern(BaseModel):
    model_config = ConfigDict(strict=True)
    code: Annotated[str, Field(pattern="^[a-z]+$")]


class _Default(BaseModel):
    model_config = ConfigDict(strict=True)
    code: str = "a"


class _Alias(BaseModel):
    model_config = ConfigDict(strict=True)
    code: Annotated[str, Field(validation_alias="Code")]


class _Integer(BaseModel):
    model_config = ConfigDict(strict=True)
    count: int


class _ForeignValidator(BaseModel):
    model_config = ConfigDict(strict=True)
    code: Annotated[str, AfterValidator(_upper)]


class _Lax(BaseModel):
    model_config = ConfigDict(strict=True, str_strip_whitespace=True)
    code: str


@pytest.mark.parametrize(
    ("model", "complaint"),
    [
        (_Pattern, "option 'pattern'"),
        (_Default, "schema type 'default'"),
        (_Alias, "option 'validation_alias'"),
        (_Integer, "schema type 'int'"),
        (_ForeignValidator, "is not a check of entrix.orders.checks"),
        (_Lax, "config ['str_strip_whitespace']"),
    ],
)
def test_the_export_refuses_what_the_validator_does_not_implement(
    model: type[BaseModel], complaint: str
) -> None:
    with pytest.raises(schema_export.UnsupportedSchema, match=complaint.replace("[", r"\[")):
        _exported(model)


def test_another_supported_model_exports_and_validates_like_pydantic() -> None:
    class Small(BaseModel):
        model_config = ConfigDict(strict=True)  # extra fields ignored
        amount: Annotated[Any, PlainValidator(_pydantic(dynamodb_number))]
        name: Annotated[str, Field(min_length=2)]

    schema, config = _exported(Small)
    small = compile_schema(schema, config)
    for item in [
        {"amount": Decimal(1), "name": "ab", "other": 1},
        {"amount": "1", "name": "a"},
        {"amount": 1.5},
        {"name": "ab"},
    ]:
        try:
            expected: Any = (dict(Small.model_validate(item)), [])
        except ValidationError as error:
            expected = (None, error.errors(include_url=False, include_input=False))
        assert small(item) == expected


def test_the_intake_and_the_ingest_handler_import_neither_pydantic_nor_powertools() -> None:
    code = (
        "import sys, entrix.handlers.ingest; "
        "print(sorted(m for m in ('pydantic', 'pydantic_core', 'aws_lambda_powertools') "
        "if m in sys.modules))"
    )
    environment = {
        **os.environ,
        "ORDERS_TABLE_NAME": "orders",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment
    )
    assert json.loads(completed.stdout.replace("'", '"')) == []
