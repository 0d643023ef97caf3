"""Validate parsed JSON against a pydantic core schema, without importing pydantic.

The intake validates orders against `entrix.orders.order_schema`, the order model's core schema
exported by `entrix.orders.schema_export`. Importing pydantic and building the model would
cost the ingest function's cold start ~100 ms, and pydantic-core alone ~30 ms, for a schema of
three fields; this module implements the few core schema types the export lets through, with
pydantic-core's semantics and error details (type, loc, msg, ctx): tests compare the two on
generated input, so the reasons, fields and indexes the API reports stay pydantic's.

Input is what `json.loads` returns (object keys are strings). One difference from pydantic, on
purpose: an optional field (a default of None) the client leaves out is absent from the
validated dict, not filled in with None, so nothing stores, returns or publishes a value the
client never sent; the fields pydantic reports as set (`model_fields_set`) are the ones kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from entrix.orders.checks import Refused

# The validated value and no errors, or None and the errors found, each shaped as an item of
# pydantic's `ValidationError.errors(include_url=False, include_input=False)`.
Outcome = tuple[Any, list[dict[str, Any]]]
Validate = Callable[[Any], Outcome]


def _error(error_type: str, msg: str, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": error_type, "loc": (), "msg": msg}
    if ctx is not None:
        error["ctx"] = ctx
    return error


def _at(location: str, errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**error, "loc": (location, *error["loc"])} for error in errors]


def _characters(count: int) -> str:
    return "character" if count == 1 else "characters"


def _string(schema: Mapping[str, Any], config: Mapping[str, Any]) -> Validate:
    if not schema.get("strict", config.get("strict", False)):
        raise ValueError("only strict str schemas are supported")
    min_length = schema.get("min_length")
    max_length = schema.get("max_length")

    def validate(value: Any) -> Outcome:
        if not isinstance(value, str):
            return None, [_error("string_type", "Input should be a valid string")]
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            msg = "Input should be a valid string, unable to parse raw data as a unicode string"
            return None, [_error("string_unicode", msg)]
        if min_length is not None and len(value) < min_length:
            msg = f"String should have at least {min_length} {_characters(min_length)}"
            return None, [_error("string_too_short", msg, {"min_length": min_length})]
        if max_length is not None and len(value) > max_length:
            msg = f"String should have at most {max_length} {_characters(max_length)}"
            return None, [_error("string_too_long", msg, {"max_length": max_length})]
        return value, []

    return validate


def _checked(check: Callable[[Any], Any], inner: Validate | None) -> Validate:
    """`check` after `inner` (function-after), or on the raw input (function-plain)."""

    def validate(value: Any) -> Outcome:
        if inner is not None:
            value, errors = inner(value)
            if errors:
                return None, errors
        try:
            return check(value), []
        except Refused as refused:
            return None, [_error(refused.error_type, refused.message)]

    return validate


def _function(schema: Mapping[str, Any]) -> Callable[[Any], Any]:
    function = schema["function"]
    if function["type"] != "no-info":
        raise ValueError("only no-info validator functions are supported")
    check: Callable[[Any], Any] = function["function"]
    return check


def _optional(field: Mapping[str, Any]) -> bool:
    """A model field with a default: the client may leave it out."""
    return bool(field["schema"]["type"] == "default")


def _model_fields(schema: Mapping[str, Any], config: Mapping[str, Any]) -> Validate:
    if not config.get("strict", False):
        raise ValueError("only strict models are supported")
    extra = config.get("extra_fields_behavior", "ignore")
    if extra not in ("forbid", "ignore"):
        raise ValueError(f"extra fields behaviour {extra!r} is not supported")
    fields = {
        name: compile_schema(field["schema"], config) for name, field in schema["fields"].items()
    }
    optional = {name for name, field in schema["fields"].items() if _optional(field)}
    model_name = schema.get("model_name", "Model")
    not_an_object = f"Input should be a valid dictionary or instance of {model_name}"

    def validate(value: Any) -> Outcome:
        if not isinstance(value, dict):
            return None, [_error("model_type", not_an_object, {"class_name": model_name})]
        result: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for name, field in fields.items():
            if name not in value:
                if name not in optional:
                    errors.append({"type": "missing", "loc": (name,), "msg": "Field required"})
                continue
            result[name], field_errors = field(value[name])
            errors += _at(name, field_errors)
        if extra == "forbid":
            errors += [
                {"type": "extra_forbidden", "loc": (key,), "msg": "Extra inputs are not permitted"}
                for key in value
                if key not in fields
            ]
        return (None, errors) if errors else (result, [])

    return validate


def _default(schema: Mapping[str, Any], config: Mapping[str, Any]) -> Validate:
    """A field's value when the client sends it; when it is left out, `_model_fields` leaves it
    out of the result instead of filling in the default (None, the only one supported)."""
    if set(schema) - {"type", "schema", "default"} or schema.get("default", ...) is not None:
        raise ValueError("only a default of None is supported")
    return compile_schema(schema["schema"], config)


def compile_schema(schema: Mapping[str, Any], config: Mapping[str, Any]) -> Validate:
    """A function validating one value against `schema` as pydantic-core's `validate_python`
    would; a model's value is the dict of the fields the input holds (pydantic's fields set: an
    optional field left out is absent, where pydantic would fill in its default)."""
    kind = schema["type"]
    if kind == "model-fields":
        return _model_fields(schema, config)
    if kind == "model-field":
        return compile_schema(schema["schema"], config)
    if kind == "default":
        return _default(schema, config)
    if kind == "str":
        return _string(schema, config)
    if kind == "function-after":
        return _checked(_function(schema), compile_schema(schema["schema"], config))
    if kind == "function-plain":
        return _checked(_function(schema), None)
    raise ValueError(f"core schema type {kind!r} is not supported")
