"""Export the order model's validation schema as a pydantic-free module for the intake.

`make order-schema` (`python -m entrix.orders.schema_export --output
src/entrix/orders/order_schema.py`, which replaces the file atomically) writes the model's
pydantic core schema, reduced to what validation reads, as Python literals; its validators are
named by their pure checks in `entrix.orders.checks`. A test fails when the committed module
differs from a fresh export, as it does for docs/openapi.json.

The export refuses any schema element `entrix.orders.validator` does not implement (a pattern,
an alias, a null, a default other than None, a new type), so a change to the model cannot be
silently ignored by the intake: extend both, and the tests comparing them with pydantic.

An optional field has the default None (`Annotated[..., OPTIONAL]` in the model): the client may
leave it out, and the validator then leaves it out of the order instead of filling in None.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from entrix.orders.generated import main
from entrix.orders.model import Order

# What validation reads of each schema type; everything else is refused, except DROPPED.
KEPT = {
    "model-fields": {"type", "fields", "model_name"},
    "model-field": {"type", "schema"},
    "str": {"type", "strict", "min_length", "max_length"},
    "function-after": {"type", "function", "schema"},
    "function-plain": {"type", "function"},
    "default": {"type", "schema", "default"},
}
KEPT_CONFIG = {"strict", "extra_fields_behavior"}
# Read only by serialization, the JSON schema or pydantic's model class, never by validation.
DROPPED = {
    "metadata",
    "serialization",
    "json_schema_input_schema",
    "ref",
    "cls",
    "title",
}
# Model options that change nothing while they keep these values.
NEUTRAL = {"custom_init": False, "root_model": False, "computed_fields": []}


class UnsupportedSchema(ValueError):
    """The model uses a validation feature the intake's validator does not implement."""


CHECKS_MODULE = "entrix.orders.checks"


def _check(function: Callable[..., Any]) -> Callable[..., Any]:
    """The pure check a model validator wraps, which the export can name."""
    check: Callable[..., Any] = getattr(function, "__wrapped__", function)
    module, name = check.__module__, check.__qualname__
    if module != CHECKS_MODULE or getattr(importlib.import_module(module), name, None) is not check:
        raise UnsupportedSchema(f"validator {module}.{name} is not a check of {CHECKS_MODULE}")
    return check


def _function(node: Mapping[str, Any], path: str) -> dict[str, Any]:
    if set(node) != {"type", "function"} or node["type"] != "no-info":
        raise UnsupportedSchema(f"{path}: only plain (no-info) validator functions are supported")
    return {"type": "no-info", "function": _check(node["function"])}


def reduced(schema: Mapping[str, Any], path: str = "Order") -> dict[str, Any]:
    """`schema` with only what validation reads; its validators become the checks they wrap."""
    kind = schema.get("type")
    if kind not in KEPT or kind == "default":
        raise UnsupportedSchema(f"{path}: schema type {kind!r} is not supported")
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in DROPPED or NEUTRAL.get(key, object()) == value:
            continue
        if key not in KEPT[kind]:
            raise UnsupportedSchema(f"{path}: {kind} option {key!r} is not supported")
        if key == "schema" and kind == "model-field" and value.get("type") == "default":
            result[key] = _optional(value, path)
        elif key == "schema":
            result[key] = reduced(value, path)
        elif key == "fields":
            result[key] = {name: reduced(field, f"{path}.{name}") for name, field in value.items()}
        elif key == "function":
            result[key] = _function(value, path)
        else:
            result[key] = value
    return result


def _optional(schema: Mapping[str, Any], path: str) -> dict[str, Any]:
    """A field's default: only None, which the validator reads as "may be left out"."""
    options = {key: value for key, value in schema.items() if key not in DROPPED}
    if set(options) != KEPT["default"] or options["default"] is not None:
        shown = {key: value for key, value in options.items() if key != "schema"}
        raise UnsupportedSchema(f"{path}: only a default of None is supported, not {shown!r}")
    return {"type": "default", "schema": reduced(schema["schema"], path), "default": None}


def exported(model: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The validation schema and config of a model's core schema."""
    options = {key: value for key, value in model.items() if key not in DROPPED}
    if model.get("type") != "model" or set(options) - {"type", "schema", "config"} - set(NEUTRAL):
        raise UnsupportedSchema(f"not a plain model schema: {sorted(options)}")
    if any(options.get(key, value) != value for key, value in NEUTRAL.items()):
        raise UnsupportedSchema("custom __init__ and root models are not supported")
    config = model.get("config", {})
    unknown = set(config) - KEPT_CONFIG - DROPPED
    if unknown:
        raise UnsupportedSchema(f"config {sorted(unknown)} is not supported")
    return reduced(model["schema"]), {key: config[key] for key in config if key in KEPT_CONFIG}


def _literal(value: Any, indent: int) -> str:
    """Python source of `value`, one item a line with trailing commas (stable under ruff)."""
    inner = " " * (indent + 4)
    if isinstance(value, dict) and value:
        items = "".join(
            f"{inner}{_literal(key, indent + 4)}: {_literal(item, indent + 4)},\n"
            for key, item in value.items()
        )
        return "{\n" + items + " " * indent + "}"
    if callable(value):  # a check, imported by name
        return value.__name__
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool | int) or value is None:
        return repr(value)
    if isinstance(value, tuple):
        return (
            "(\n"
            + "".join(f"{inner}{_literal(item, indent + 4)},\n" for item in value)
            + " " * indent
            + ")"
        )
    if isinstance(value, frozenset):
        if not value:
            return "frozenset()"
        items = "".join(f"{inner}    {_literal(item, indent + 8)},\n" for item in sorted(value))
        return f"frozenset(\n{inner}{{\n{items}{inner}}}\n" + " " * indent + ")"
    raise UnsupportedSchema(f"no literal for {value!r}")


def _checks(schema: Any) -> set[str]:
    if callable(schema):
        return {schema.__name__}
    if isinstance(schema, dict):
        return set().union(*(_checks(item) for item in schema.values()))
    return set()


def fields(schema: Mapping[str, Any]) -> tuple[tuple[str, ...], frozenset[str]]:
    """An exported schema's client fields in model order, and the optional ones (a default)."""
    names = tuple(schema["fields"])
    optional = {
        name for name, field in schema["fields"].items() if field["schema"]["type"] == "default"
    }
    return names, frozenset(optional)


def render() -> str:
    """The source of `entrix.orders.order_schema`."""
    schema, config = exported(Order.__pydantic_core_schema__)
    names, optional = fields(schema)
    checks = ", ".join(sorted(_checks(schema)))
    return (
        '"""The order model\'s validation schema: GENERATED from entrix.orders.model.Order.\n\n'
        "Do not edit: `make order-schema` writes it again. pydantic's core schema, reduced to\n"
        "what validation reads.\n"
        '"""\n\n'
        "from typing import Any\n\n"
        f"from {CHECKS_MODULE} import {checks}\n\n"
        f"SCHEMA: dict[str, Any] = {_literal(schema, 0)}\n"
        f"CONFIG: dict[str, Any] = {_literal(config, 0)}\n"
        "# The client's fields in model order; those with a default may be absent.\n"
        f"FIELDS: tuple[str, ...] = {_literal(names, 0)}\n"
        f"OPTIONAL_FIELDS: frozenset[str] = {_literal(optional, 0)}\n"
    )


if __name__ == "__main__":
    main(render, "Print (or write to --output) the source of entrix.orders.order_schema.")
