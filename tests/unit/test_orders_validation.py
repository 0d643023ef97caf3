"""Parsing and validation of POST /orders bodies: every bad-input class and the valid edges."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from entrix.orders import lifecycle
from entrix.orders.intake import (
    MAX_PROBLEMS,
    InvalidRequest,
    Receipt,
    TooLarge,
    parse_orders,
)
from entrix.orders.limits import (
    MAX_BODY_BYTES,
    MAX_ORDERS,
    MAX_PARAMETER_1_CHARS,
    MAX_RECORD_ID_BYTES,
)
from entrix.orders.model import Order
from entrix.orders.numbers import dynamodb_number_problem, number_text


def order_text(record_id: str = "r1", parameter_1: str = "p", parameter_2: str = "1") -> str:
    """One order as JSON text, with parameter_2 given as raw JSON (so numbers stay literal)."""
    return (
        f'{{"record_id": {json.dumps(record_id)}, "parameter_1": {json.dumps(parameter_1)}, '
        f'"parameter_2": {parameter_2}}}'
    )


def body(*orders: str) -> bytes:
    return ("[" + ",".join(orders) + "]").encode("utf-8")


def problems_of(raw: bytes) -> list[dict[str, object]]:
    with pytest.raises(InvalidRequest) as caught:
        parse_orders(raw)
    return [problem.as_json() for problem in caught.value.problems]


def test_a_valid_order_keeps_its_number_exact() -> None:
    (order,) = parse_orders(body(order_text("a", "x", "2.1")))
    assert order == {"record_id": "a", "parameter_1": "x", "parameter_2": Decimal("2.1")}
    assert order["parameter_2"].as_tuple() == Decimal("2.1").as_tuple()


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("0", Decimal(0)),
        ("-0", Decimal(0)),
        ("-17", Decimal(-17)),
        ("123456789012345678901234567890", Decimal("123456789012345678901234567890")),
        ("0.1", Decimal("0.1")),
        ("-2.5e-3", Decimal("-0.0025")),
        ("1E-130", Decimal("1E-130")),
        ("-1E-130", Decimal("-1E-130")),
        (
            "9.9999999999999999999999999999999999999E+125",
            Decimal("9.9999999999999999999999999999999999999E+125"),
        ),
        (
            "12345678901234567890123456789012345678",
            Decimal("12345678901234567890123456789012345678"),
        ),
        ("1.000000000000000000000000000000000000000000", Decimal(1)),
        ("100000000000000000000000000000000000000000000000000", Decimal("1E50")),
    ],
)
def test_numbers_within_dynamodb_range_are_accepted_exactly(
    literal: str, expected: Decimal
) -> None:
    (order,) = parse_orders(body(order_text(parameter_2=literal)))
    assert order["parameter_2"] == expected
    assert order["parameter_2"] == Decimal(literal)


def test_unicode_record_ids_up_to_the_byte_limit_are_accepted() -> None:
    four_byte_id = "\N{GRINNING FACE}" * (MAX_RECORD_ID_BYTES // 4)
    orders = parse_orders(body(order_text("ordre-é-日本"), order_text(four_byte_id, "ü")))
    assert [order["record_id"] for order in orders] == ["ordre-é-日本", four_byte_id]


def test_the_maximum_number_of_orders_is_accepted() -> None:
    orders = parse_orders(body(*(order_text(f"r{i}", "x", str(i)) for i in range(MAX_ORDERS))))
    assert len(orders) == MAX_ORDERS
    assert orders[-1]["parameter_2"] == MAX_ORDERS - 1


def test_parameter_1_may_be_empty_or_at_its_maximum_length() -> None:
    orders = parse_orders(body(order_text("a", ""), order_text("b", "€" * MAX_PARAMETER_1_CHARS)))
    assert [len(order["parameter_1"]) for order in orders] == [0, MAX_PARAMETER_1_CHARS]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'[{"record_id": "a", ', "Expecting property name enclosed in double quotes"),
        (b"", "Expecting value"),
        (b"[1] [2]", "Extra data"),
        (b'[{"record_id": "a"}] garbage', "Extra data"),
        (b"\xef\xbb\xbf[]", "Unexpected UTF-8 BOM"),
        (b"\xff\xfe[]", "invalid UTF-8"),
        (b'["caf\xc3"]', "invalid UTF-8"),
        (b'["\xed\xa0\x80"]', "invalid UTF-8"),
        (body(order_text(parameter_2="NaN")), "NaN is not a JSON number"),
        (body(order_text(parameter_2="Infinity")), "Infinity is not a JSON number"),
        (body(order_text(parameter_2="-Infinity")), "-Infinity is not a JSON number"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
        (
            b'[{"record_id": "a", "record_id": "b", "parameter_1": "", "parameter_2": 1}]',
            "duplicate key",
        ),
    ],
)
def test_malformed_bodies_are_refused_with_a_body_problem(raw: bytes, reason: str) -> None:
    (problem,) = problems_of(raw)
    assert problem["index"] is None
    assert problem["field"] == ""
    assert reason in str(problem["reason"])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{}", "must be a JSON array"),
        (b'{"record_id": "a", "parameter_1": "x", "parameter_2": 1}', "must be a JSON array"),
        (b'"orders"', "must be a JSON array"),
        (b"42", "must be a JSON array"),
        (b"null", "must be a JSON array"),
        (b"[]", "must not be empty"),
    ],
)
def test_bodies_that_are_not_a_non_empty_array_are_refused(raw: bytes, reason: str) -> None:
    assert problems_of(raw) == [{"index": None, "field": "", "reason": reason}]


@pytest.mark.parametrize("item", ["1", "null", '"order"', "[]", "true", "[{}]"])
def test_items_that_are_not_objects_are_refused(item: str) -> None:
    assert problems_of(body(order_text("ok"), item)) == [
        {"index": 1, "field": "", "reason": "must be a JSON object"}
    ]


@pytest.mark.parametrize(
    ("field", "literal", "reason"),
    [
        ("record_id", "1", "must be a string"),
        ("record_id", "null", "must be a string"),
        ("record_id", '""', "must not be empty"),
        ("record_id", '["a"]', "must be a string"),
        ("record_id", '"\\ud800"', "must be valid Unicode text (no unpaired surrogates)"),
        ("parameter_1", "true", "must be a string"),
        ("parameter_1", "2.5", "must be a string"),
        ("parameter_1", '"\\udfff x"', "must be valid Unicode text (no unpaired surrogates)"),
        ("parameter_2", "true", "must be a JSON number"),
        ("parameter_2", "false", "must be a JSON number"),
        ("parameter_2", '"1"', "must be a JSON number"),
        ("parameter_2", '"2.1"', "must be a JSON number"),
        ("parameter_2", "null", "must be a JSON number"),
        ("parameter_2", "[1]", "must be a JSON number"),
        ("parameter_2", '{"n": 1}', "must be a JSON number"),
        ("parameter_2", "1E+126", "magnitude must be below 1E+126"),
        ("parameter_2", "-1E+126", "magnitude must be below 1E+126"),
        ("parameter_2", "1e999999999", "magnitude must be below 1E+126"),
        ("parameter_2", "9E-131", "magnitude must be 0 or at least 1E-130"),
        ("parameter_2", "1E-999999999", "magnitude must be 0 or at least 1E-130"),
        (
            "parameter_2",
            "1234567890123456789012345678901234567.89",
            "must have at most 38 significant digits",
        ),
        ("parameter_2", "0." + "1" * 39, "must have at most 38 significant digits"),
    ],
)
def test_wrong_values_are_refused_naming_the_field(field: str, literal: str, reason: str) -> None:
    values = {"record_id": '"a"', "parameter_1": '"x"', "parameter_2": "1", field: literal}
    item = "{" + ", ".join(f'"{name}": {value}' for name, value in values.items()) + "}"
    assert problems_of(body(item)) == [{"index": 0, "field": field, "reason": reason}]


def test_a_record_id_longer_than_the_byte_limit_is_refused() -> None:
    ascii_id = "a" * (MAX_RECORD_ID_BYTES + 1)
    multibyte_id = "é" * (MAX_RECORD_ID_BYTES // 2 + 1)  # fewer characters than the limit
    assert len(multibyte_id) < MAX_RECORD_ID_BYTES
    assert problems_of(body(order_text(ascii_id), order_text(multibyte_id))) == [
        {"index": 0, "field": "record_id", "reason": "must be at most 1024 characters"},
        {"index": 1, "field": "record_id", "reason": "must be at most 1024 UTF-8 bytes (is 1026)"},
    ]


def test_a_too_long_parameter_1_is_refused() -> None:
    assert problems_of(body(order_text(parameter_1="x" * (MAX_PARAMETER_1_CHARS + 1)))) == [
        {"index": 0, "field": "parameter_1", "reason": "must be at most 1000 characters"}
    ]


def test_missing_and_unknown_fields_are_each_reported() -> None:
    raw = b'[{"record_id": "a", "parameter_2": 1, "price": 3, "parameter_3": null}]'
    assert problems_of(raw) == [
        {"index": 0, "field": "parameter_1", "reason": "is required"},
        {"index": 0, "field": "price", "reason": "is not an allowed field"},
        {"index": 0, "field": "parameter_3", "reason": "is not an allowed field"},
    ]


def test_duplicate_record_ids_are_reported_at_every_index() -> None:
    raw = body(order_text("a"), order_text("b"), order_text("a"), order_text("c"), order_text("a"))
    assert problems_of(raw) == [
        {"index": 0, "field": "record_id", "reason": "duplicate of the order at index 2, 4"},
        {"index": 2, "field": "record_id", "reason": "duplicate of the order at index 0, 4"},
        {"index": 4, "field": "record_id", "reason": "duplicate of the order at index 0, 2"},
    ]


def test_every_problem_of_every_order_is_listed_by_index() -> None:
    raw = body(
        order_text("a", parameter_2="true"),
        order_text("ok"),
        '{"record_id": 7, "parameter_1": 8, "parameter_2": "9"}',
        order_text("a"),
    )
    assert problems_of(raw) == [
        {"index": 0, "field": "parameter_2", "reason": "must be a JSON number"},
        {"index": 0, "field": "record_id", "reason": "duplicate of the order at index 3"},
        {"index": 2, "field": "record_id", "reason": "must be a string"},
        {"index": 2, "field": "parameter_1", "reason": "must be a string"},
        {"index": 2, "field": "parameter_2", "reason": "must be a JSON number"},
        {"index": 3, "field": "record_id", "reason": "duplicate of the order at index 0"},
    ]


def test_the_problem_list_is_capped_and_says_so() -> None:
    raw = body(*(order_text(f"r{i}", parameter_2='"1"') for i in range(MAX_PROBLEMS + 5)))
    with pytest.raises(InvalidRequest) as caught:
        parse_orders(raw)
    assert len(caught.value.problems) == MAX_PROBLEMS
    assert caught.value.message == (
        f"{MAX_PROBLEMS + 5} invalid order field(s); the first {MAX_PROBLEMS} are listed"
    )


def test_echoed_field_names_are_truncated() -> None:
    name = "k" * 10_000
    (problem,) = problems_of(
        body(f'{{"record_id": "a", "parameter_1": "", "parameter_2": 1, "{name}": 1}}')
    )
    assert problem["reason"] == "is not an allowed field"
    assert str(problem["field"]) == name[:100]


def test_more_orders_than_the_limit_are_refused_as_too_large() -> None:
    raw = body(*(order_text(f"r{i}") for i in range(MAX_ORDERS + 1)))
    with pytest.raises(TooLarge, match=f"at most {MAX_ORDERS} orders per request") as caught:
        parse_orders(raw)
    assert [problem.as_json() for problem in caught.value.problems] == [
        {"index": None, "field": "", "reason": f"must hold at most {MAX_ORDERS} orders"}
    ]


def test_many_copies_of_one_record_id_give_a_bounded_reply() -> None:
    problems = problems_of(body(*(order_text("same") for _ in range(MAX_ORDERS))))
    assert len(problems) == MAX_PROBLEMS
    assert problems[0] == {
        "index": 0,
        "field": "record_id",
        "reason": "duplicate of the order at index 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 989 more",
    }


def test_a_body_beyond_the_byte_limit_is_refused_before_parsing() -> None:
    with pytest.raises(TooLarge, match="larger than"):
        parse_orders(b"[" + b" " * MAX_BODY_BYTES + b"]")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("2.1"), "2.1"),
        (Decimal("2.10"), "2.1"),
        (Decimal("-0"), "0"),
        (Decimal("0E-7"), "0"),
        (Decimal("100"), "100"),
        (Decimal("1E+2"), "100"),
        (Decimal("1E+50"), "1E+50"),
        (Decimal("1E-130"), "1E-130"),
        (Decimal("0.000001"), "0.000001"),
        (
            Decimal("-12345678901234567890123456789012345678"),
            "-12345678901234567890123456789012345678",
        ),
        (1_764_000_000, "1764000000"),
    ],
)
def test_number_text_is_exact_and_canonical(value: Decimal | int, text: str) -> None:
    assert number_text(value) == text
    assert Decimal(text) == value
    assert json.loads(text, parse_float=Decimal, parse_int=Decimal) == value


def test_dynamodb_number_bounds() -> None:
    assert dynamodb_number_problem(Decimal("9.9999999999999999999999999999999999999E+125")) is None
    assert dynamodb_number_problem(Decimal("1E-130")) is None
    assert dynamodb_number_problem(Decimal("-0.0")) is None
    assert dynamodb_number_problem(Decimal("NaN")) == "must be a finite number"
    assert dynamodb_number_problem(Decimal("-Infinity")) == "must be a finite number"


def test_an_order_from_python_values_refuses_bools() -> None:
    assert Order(record_id="a", parameter_1="", parameter_2=2).parameter_2 == Decimal(2)
    assert Order(record_id="a", parameter_1="", parameter_2=0.1).parameter_2 == Decimal("0.1")
    with pytest.raises(ValueError, match="must be a JSON number"):
        Order(record_id="a", parameter_1="", parameter_2=True)


def test_stored_item_adds_owner_keys_receipt_version_and_status() -> None:
    receipt = Receipt.at(1_764_000_000.25)
    assert receipt == Receipt(received_at="2025-11-24T16:00:00.250Z", expires_at=1_764_086_400)
    order = {"record_id": "a#1", "parameter_1": "x", "parameter_2": Decimal("2.1")}
    version = lifecycle.version(receipt.received_at, "0123456789ab", 7)
    assert version == "2025-11-24T16:00:00.250Z/0123456789ab/0007"
    assert lifecycle.stored_item(
        order, "desk-a", receipt.received_at, receipt.expires_at, version
    ) == {
        "order_key": "desk-a#a#1",
        "owner": "desk-a",
        "record_id": "a#1",
        "parameter_1": "x",
        "parameter_2": Decimal("2.1"),
        "received_at": "2025-11-24T16:00:00.250Z",
        "expires_at": 1_764_086_400,
        "result_status": "pending",
        "version": version,
        "pending_shard": lifecycle.pending_shard("desk-a#a#1"),
        "owner_shard": lifecycle.owner_shard("desk-a", "a#1"),
    }


def test_versions_sort_by_receipt_then_position() -> None:
    earlier = lifecycle.version("2025-11-24T16:00:00.250Z", "ffffffffffff", 999)
    later = lifecycle.version("2025-11-24T16:00:00.251Z", "000000000000", 0)
    assert earlier < later
    assert lifecycle.version("t", "n", 9) < lifecycle.version("t", "n", 10)
    assert lifecycle.request_nonce() != lifecycle.request_nonce()


@pytest.mark.parametrize(
    "shard", [lifecycle.pending_shard, lambda key: lifecycle.owner_shard("desk-a", key)]
)
def test_shards_are_stable_and_spread_evenly(shard: Any) -> None:
    """16 index partitions, each ~1/16 of the writes: 10,000 orders a second of one client
    put about 625 a second on each (DynamoDB allows 1,000 write units per partition key)."""
    assert shard("order-1") == shard("order-1")
    counts = Counter(shard(f"order-{index}") for index in range(16_000))
    assert len(counts) == lifecycle.SHARDS
    assert max(counts.values()) < 1.15 * 16_000 / lifecycle.SHARDS
    assert set(lifecycle.pending_shards()) == {f"{n:02d}" for n in range(lifecycle.SHARDS)}
    assert {key.rsplit("#", 1)[1] for key in lifecycle.owner_shards("desk-a")} == set(
        lifecycle.pending_shards()
    )
