"""The intake's validator and the order model agree on any JSON item (errors and values).

The property of tests/unit/test_order_schema.py, tried on 1,500 generated items: values around
every constraint of the model, and JSON values of every other kind; and on the model with two
optional fields (where the validator keeps the fields pydantic reports as set).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from entrix.orders.limits import MAX_PARAMETER_1_CHARS, MAX_RECORD_ID_BYTES
from entrix.orders.validator import compile_schema
from tests.unit.test_order_schema import _exported, _WithOptional, pydantic_outcome, validate

edge_strings = st.sampled_from(
    [
        "",
        "a",
        "\ud800",
        "ok \udfff",
        "x" * MAX_RECORD_ID_BYTES,
        "x" * (MAX_RECORD_ID_BYTES + 1),
        "é" * (MAX_RECORD_ID_BYTES // 2),
        "é" * (MAX_RECORD_ID_BYTES // 2 + 1),
        "\N{GRINNING FACE}" * (MAX_RECORD_ID_BYTES // 4 + 1),
        "y" * MAX_PARAMETER_1_CHARS,
        "y" * (MAX_PARAMETER_1_CHARS + 1),
    ]
)
numbers = st.sampled_from(
    [
        Decimal("2.1"),
        Decimal("-0"),
        Decimal("1E-130"),
        Decimal("9E-131"),
        Decimal("1E+126"),
        Decimal("9.9999999999999999999999999999999999999E+125"),
        Decimal("1" * 39),
    ]
) | st.decimals(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | numbers | st.text(max_size=6) | edge_strings
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
items = (
    st.dictionaries(
        st.sampled_from(["record_id", "parameter_1", "parameter_2", "price", ""]),
        json_values,
    )
    | st.fixed_dictionaries(
        {"record_id": scalars, "parameter_1": scalars, "parameter_2": scalars},
        optional={"note": json_values},
    )
    | json_values
)


@settings(max_examples=1500, deadline=None)
@given(items)
def test_the_validator_agrees_with_the_model_on_any_json_item(item: Any) -> None:
    fields, errors = validate(item)
    expected_fields, expected_errors = pydantic_outcome(item)
    assert errors == expected_errors
    assert fields == expected_fields
    if fields is not None:
        assert fields["parameter_2"].as_tuple() == expected_fields["parameter_2"].as_tuple()  # type: ignore[index]


with_optional = compile_schema(*_exported(_WithOptional))
items_with_optional = st.fixed_dictionaries(
    {"record_id": scalars, "parameter_1": scalars, "parameter_2": scalars},
    optional={"note": scalars, "amount": scalars, "other": json_values},
) | st.dictionaries(
    st.sampled_from(["record_id", "parameter_1", "parameter_2", "note", "amount"]), scalars
)


@settings(max_examples=500, deadline=None)
@given(items_with_optional)
def test_the_validator_agrees_with_a_model_with_optional_fields(item: Any) -> None:
    assert with_optional(item) == pydantic_outcome(item, _WithOptional)
