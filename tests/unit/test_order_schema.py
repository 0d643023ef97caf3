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
import re
import subprocess
import sys
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
from entrix.orders.generated import main as generator_main
from entrix.orders.limits import MAX_PARAMETER_1_CHARS, MAX_RECORD_ID_BYTES
from entrix.orders.model import OPTIONAL, DynamoDBNumber, Order, Parameter1, _pydantic
from entrix.orders.validator import compile_schema

COMMITTED = Path(order_schema.__file__)
validate = compile_schema(order_schema.SCHEMA, order_schema.CONFIG)


def pydantic_outcome(
    item: Any, model: type[BaseModel] = Order
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """What the model makes of `item`: the fields it holds (an optional field left out is not
    filled in, as in the intake), or its errors as the intake reads them."""
    try:
        order = model.model_validate(item)
    except ValidationError as error:
        return None, error.errors(include_url=False, include_input=False)
    return {name: value for name, value in order if name in order.model_fields_set}, []


def test_the_committed_schema_is_the_models_export() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == schema_export.render(), (
        "src/entrix/orders/order_schema.py is stale: run `make order-schema` and commit it"
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
            values, _, fields_set = core.validate_python(item)
            outcome: Any = ({name: values[name] for name in values if name in fields_set}, [])
        except ValidationError as error:
            outcome = (None, error.errors(include_url=False, include_input=False))
        assert outcome == pydantic_outcome(item)


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


class _DefaultFactory(BaseModel):
    model_config = ConfigDict(strict=True)
    code: Annotated[str, Field(default_factory=str)]


class _ValidatedDefault(BaseModel):
    model_config = ConfigDict(strict=True)
    code: Annotated[str, Field(default=None, validate_default=True)]


class _Nullable(BaseModel):
    model_config = ConfigDict(strict=True)
    code: str | None = None


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
        (_Default, "only a default of None is supported, not {'type': 'default', 'default': 'a'}"),
        (_DefaultFactory, "only a default of None is supported"),
        (_ValidatedDefault, "only a default of None is supported"),
        (_Nullable, "schema type 'nullable'"),
        (_Alias, "option 'validation_alias'"),
        (_Integer, "schema type 'int'"),
        (_ForeignValidator, "is not a check of entrix.orders.checks"),
        (_Lax, "config ['str_strip_whitespace']"),
    ],
)
def test_the_export_refuses_what_the_validator_does_not_implement(
    model: type[BaseModel], complaint: str
) -> None:
    with pytest.raises(schema_export.UnsupportedSchema, match=re.escape(complaint)):
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


class _WithOptional(Order):
    """The order with optional fields of the model's own types, as the next field would be."""

    note: Annotated[Parameter1, OPTIONAL]
    amount: Annotated[DynamoDBNumber, OPTIONAL]


def test_an_optional_field_is_exported_and_named_optional() -> None:
    schema, _ = _exported(_WithOptional)
    assert schema["fields"]["note"]["schema"] == {
        "type": "default",
        "schema": {"type": "str", "strict": True, "max_length": MAX_PARAMETER_1_CHARS},
        "default": None,
    }
    assert schema_export.fields(schema) == (
        ("record_id", "parameter_1", "parameter_2", "note", "amount"),
        {"note", "amount"},
    )
    assert schema_export.fields(schema)[1] == {
        name for name, field in _WithOptional.model_fields.items() if not field.is_required()
    }


def test_an_optional_field_left_out_is_absent_and_one_sent_is_validated_like_pydantic() -> None:
    with_optional = compile_schema(*_exported(_WithOptional))
    base = {"record_id": "a", "parameter_1": "x", "parameter_2": Decimal("2.1")}
    left_out, errors = with_optional(base)
    assert (left_out, errors) == (base, [])
    assert "note" not in left_out  # not filled in with None, as pydantic would
    assert _WithOptional.model_validate(base).note is None
    for item in [
        base,
        {**base, "note": "n"},
        {**base, "note": "n", "amount": Decimal(-7)},
        {**base, "note": None},  # null is not a value: the field is left out or it is valid
        {**base, "note": "y" * (MAX_PARAMETER_1_CHARS + 1), "amount": "1"},
        {**base, "amount": True, "other": 1},
        {"note": "n"},
        {"amount": Decimal(1), "parameter_2": Decimal(2)},
    ]:
        assert with_optional(item) == pydantic_outcome(item, _WithOptional), item
    # pydantic-core reads the exported default as pydantic does (amount is not sent, so its
    # check, unwrapped in the export, is not called).
    core = SchemaValidator(*_exported(_WithOptional))  # type: ignore[arg-type]
    assert core.validate_python({**base, "note": "n"})[2] == {*base, "note"}
    assert with_optional({**base, "note": None})[1] == [
        {"type": "string_type", "loc": ("note",), "msg": "Input should be a valid string"}
    ]


def test_an_optional_field_publishes_no_default_and_is_not_required() -> None:
    """Left out means absent: the JSON schema must not promise a null default."""
    schema = _WithOptional.model_json_schema()
    assert schema["required"] == ["record_id", "parameter_1", "parameter_2"]
    assert "default" not in schema["properties"]["note"]
    assert "default" not in schema["properties"]["amount"]
    assert schema["properties"]["note"]["type"] == "string"


def test_the_validator_refuses_a_default_other_than_none() -> None:
    schema, config = _exported(_WithOptional)
    schema["fields"]["note"]["schema"]["default"] = "n"
    with pytest.raises(ValueError, match="only a default of None"):
        compile_schema(schema, config)


def test_output_replaces_the_file_with_the_export(tmp_path: Path) -> None:
    target = tmp_path / "order_schema.py"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o640)
    subprocess.run(
        [sys.executable, "-m", "entrix.orders.schema_export", "--output", str(target)],
        check=True,
    )
    assert target.read_text(encoding="utf-8") == schema_export.render()
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(path.name for path in tmp_path.iterdir()) == ["order_schema.py"]


def test_a_failing_generator_leaves_the_committed_file_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "order_schema.py"
    target.write_text("committed", encoding="utf-8")

    def refused() -> str:
        _exported(_Pattern)
        return "never"

    with pytest.raises(schema_export.UnsupportedSchema):
        generator_main(refused, "test", ["--output", str(target)])
    assert target.read_text(encoding="utf-8") == "committed"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["order_schema.py"]


def test_a_failed_write_leaves_the_file_and_no_temporary_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "openapi.json"
    target.write_text("committed", encoding="utf-8")

    def full_disk(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        generator_main(lambda: "new", "test", ["--output", str(target)])
    assert target.read_text(encoding="utf-8") == "committed"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["openapi.json"]


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
