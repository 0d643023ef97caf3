"""Property: any body gets 201 with every order stored exactly, or a 4xx with nothing stored.

An independent oracle, written from the API contract, decides which of the two is right. Then
the lifecycle's resend rules: a stored request sent again is unchanged in every order, and
sent with some orders changed, amends exactly those.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import Context, Decimal, localcontext
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from entrix.aws.orders_table import Backoff, OrdersTable
from entrix.handlers import ingest
from entrix.orders.order_schema import FIELDS
from tests.support.api_events import api_event
from tests.support.moto_orders import moto_orders_table
from tests.support.moto_usage import unlimited_usage

TABLE = "orders-property"
NOW = 1_764_000_000.0
OWNER = "desk-a"
# The client's fields as the API contract names them, written here by hand: the oracle is
# independent of the model (test_the_oracle_knows_every_field_of_the_model says when they part).
CONTRACT_FIELDS = ("record_id", "parameter_1", "parameter_2")


def encode(value: Any) -> str:
    """JSON text of a generated value; Decimal and float written as exact number literals."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(encode(item) for item in value) + "]"
    return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items()) + "}"


finite_decimals = st.decimals(allow_nan=False, allow_infinity=False)
edge_numbers = st.sampled_from(
    [
        Decimal("1E-130"),
        Decimal("-1E-130"),
        Decimal("9E-131"),
        Decimal("9.9999999999999999999999999999999999999E+125"),
        Decimal("1E+126"),
        Decimal("1" * 38),
        Decimal("1" * 39),
        Decimal("0.10000000000000000000000000000000000000000"),
        Decimal("-0"),
    ]
)
numbers = (
    st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | finite_decimals
    | edge_numbers
    | st.builds(
        lambda digits, exponent: Decimal(f"{digits}E{exponent}"),
        st.integers(),
        st.integers(-200, 200),
    )
)
scalars = st.none() | st.booleans() | numbers | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=10,
)
record_ids = (
    st.text(alphabet="ab", max_size=2)
    | st.text(max_size=12)
    | st.sampled_from(["é" * 512, "é" * 513, "x" * 1024, "\ud800"])
)
orders = st.fixed_dictionaries(
    {
        "record_id": record_ids,
        "parameter_1": st.text(max_size=8) | st.sampled_from(["y" * 1000, "y" * 1001]),
        "parameter_2": numbers,
    },
    optional={"note": json_values},
)
order_like = st.dictionaries(
    st.sampled_from(["record_id", "parameter_1", "parameter_2", "extra"]), json_values, max_size=4
)
valid_orders = st.fixed_dictionaries(
    {
        "record_id": st.text(min_size=1, max_size=12),
        "parameter_1": st.text(max_size=12),
        "parameter_2": st.integers(-(10**37), 10**37)
        | st.floats(-1e100, 1e100, allow_nan=False)
        | st.decimals(-(10**20), 10**20, allow_nan=False, places=10),
    }
)
bodies = (
    st.lists(valid_orders, min_size=1, max_size=8, unique_by=lambda order: order["record_id"]).map(
        encode
    )
    | st.lists(orders, min_size=1, max_size=6).map(encode)
    | st.lists(orders | order_like | json_values, max_size=5).map(encode)
    | json_values.map(encode)
)


def fits_dynamodb(number: Decimal) -> bool:
    """0, or 1E-130 <= |number| < 1E+126 with at most 38 significant digits."""
    if number == 0:
        return True
    # abs() rounds to the context's precision (28 digits by default, which would turn 38 nines
    # into 1E+126): both the digit count and the magnitude are taken in a wide context.
    with localcontext(Context(prec=1000, Emax=10**9, Emin=-(10**9))):
        magnitude = abs(number)
        significant = len(magnitude.normalize().as_tuple().digits)
    return Decimal("1E-130") <= magnitude < Decimal("1E+126") and significant <= 38


def valid_text(text: str, max_bytes: int | None = None, max_chars: int | None = None) -> bool:
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return (max_bytes is None or size <= max_bytes) and (
        max_chars is None or len(text) <= max_chars
    )


def acceptable(value: Any) -> bool:
    """The contract: 1..1000 objects with exactly the three fields, valid and unique ids."""
    if not isinstance(value, list) or not 1 <= len(value) <= 1000:
        return False
    for order in value:
        if not isinstance(order, dict) or set(order) != set(CONTRACT_FIELDS):
            return False
        record_id, parameter_1, number = (
            order["record_id"],
            order["parameter_1"],
            order["parameter_2"],
        )
        if not (isinstance(record_id, str) and record_id and valid_text(record_id, max_bytes=1024)):
            return False
        if not (isinstance(parameter_1, str) and valid_text(parameter_1, max_chars=1000)):
            return False
        if not isinstance(number, Decimal) or not fits_dynamodb(number):
            return False
    return len({order["record_id"] for order in value}) == len(value)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """One moto table for every example; `post` empties it after each."""
    with moto_orders_table(TABLE) as dynamodb:
        yield dynamodb


def post(client: Any, request: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The handler's reply to OWNER's `request` (event fields) against an empty table, and
    the items it stored."""
    table = OrdersTable(client, TABLE, Backoff(sleep=lambda _: None))
    reply = ingest.handle(api_event(OWNER, **request), table, NOW, usage=unlimited_usage())
    stored = client.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    for item in stored:
        client.delete_item(TableName=TABLE, Key={"order_key": item["order_key"]})
    return reply, stored


def assert_refused(reply: dict[str, Any], stored: list[dict[str, Any]]) -> None:
    assert 400 <= reply["statusCode"] < 500, reply
    assert stored == []
    error = json.loads(reply["body"])
    assert isinstance(error["message"], str)
    expected_code = "REQUEST_TOO_LARGE" if reply["statusCode"] == 413 else "BAD_REQUEST_BODY"
    assert (error["code"], error["request_id"]) == (expected_code, "req-1")
    assert all(set(problem) == {"index", "field", "reason"} for problem in error["errors"])


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(body=bodies)
def test_any_json_body_is_stored_exactly_or_refused_with_a_4xx(client: Any, body: str) -> None:
    reply, stored = post(client, {"headers": {"Content-Type": "application/json"}, "body": body})
    sent = json.loads(body, parse_float=Decimal, parse_int=Decimal)
    event(f"status {reply['statusCode']}")
    if reply["statusCode"] != 201:
        assert not acceptable(sent), reply
        assert_refused(reply, stored)
        return
    assert acceptable(sent)
    summary = json.loads(reply["body"])
    assert summary["created"] == [order["record_id"] for order in sent], "each one new"
    assert summary["amended"] == summary["unchanged"] == summary["refused"] == []
    assert summary["not_stored"] == []
    by_id = {item["record_id"]["S"]: item for item in stored}
    assert set(by_id) == {order["record_id"] for order in sent}
    for order in sent:
        item = by_id[order["record_id"]]
        assert item["order_key"] == {"S": f"{OWNER}#{order['record_id']}"}
        assert item["owner"] == {"S": OWNER}
        assert item["parameter_1"] == {"S": order["parameter_1"]}
        assert Decimal(item["parameter_2"]["N"]) == order["parameter_2"]
        assert item["expires_at"] == {"N": str(int(NOW) + 86_400)}
        assert item["result_status"] == {"S": "pending"}
        assert "pending_shard" in item and "owner_shard" in item
    assert len({item["version"]["S"] for item in stored}) == len(stored), "a version each"


def test_the_oracle_knows_every_field_of_the_model() -> None:
    """A field added to the order model must be added to the oracle (with its rule) too."""
    assert FIELDS == CONTRACT_FIELDS


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(raw=st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
def test_arbitrary_bytes_are_refused_with_a_4xx(client: Any, raw: bytes) -> None:
    body = base64.b64encode(raw).decode()
    reply, stored = post(
        client,
        {"headers": {"Content-Type": "application/json"}, "body": body, "isBase64Encoded": True},
    )
    assert_refused(reply, stored)


def exponent_form(number: Decimal) -> str:
    """`number` as JSON text in another form of the same value (digits, then an exponent)."""
    sign, digits, exponent = number.as_tuple()
    return ("-" if sign else "") + "".join(map(str, digits)) + f"E{exponent}"


def encode_rewritten(orders: list[dict[str, Any]]) -> str:
    """The orders as JSON with each parameter_2 written in exponent form."""
    written = (
        "{"
        f'"record_id":{json.dumps(order["record_id"])},'
        f'"parameter_1":{json.dumps(order["parameter_1"])},'
        f'"parameter_2":{exponent_form(Decimal(encode(order["parameter_2"])))}'
        "}"
        for order in orders
    )
    return "[" + ",".join(written) + "]"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sent=st.lists(valid_orders, min_size=1, max_size=8, unique_by=lambda order: order["record_id"]),
    data=st.data(),
)
def test_a_resend_changes_nothing_and_other_content_amends_only_those_orders(
    client: Any, sent: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Sent again, byte for byte or with its numbers written otherwise, a stored request is
    `unchanged` in every order and the items stay as they were; sent with some orders'
    content changed, exactly those are `amended` (a later version) and the rest `unchanged`."""
    assume(acceptable(json.loads(encode(sent), parse_float=Decimal, parse_int=Decimal)))
    table = OrdersTable(client, TABLE, Backoff(sleep=lambda _: None))
    ids = [order["record_id"] for order in sent]

    def send(body: str, now: float) -> dict[str, Any]:
        request = api_event(OWNER, headers={"Content-Type": "application/json"}, body=body)
        reply = ingest.handle(request, table, now, usage=unlimited_usage())
        assert reply["statusCode"] == 201, reply
        summary: dict[str, Any] = json.loads(reply["body"])
        return summary

    def items() -> dict[str, dict[str, Any]]:
        scanned = client.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        return {item["record_id"]["S"]: item for item in scanned}

    try:
        assert send(encode(sent), NOW)["created"] == ids
        stored = items()
        assert send(encode(sent), NOW + 1)["unchanged"] == ids
        assert send(encode_rewritten(sent), NOW + 2)["unchanged"] == ids
        assert items() == stored, "an identical resend writes nothing"

        changed = data.draw(st.sets(st.sampled_from(ids), min_size=1))
        amended = [
            {**order, "parameter_1": order["parameter_1"] + "!"}
            if order["record_id"] in changed
            else order
            for order in sent
        ]
        summary = send(encode(amended), NOW + 3)
        assert summary["amended"] == [r for r in ids if r in changed]
        assert summary["unchanged"] == [r for r in ids if r not in changed]
        after = items()
        for order in amended:
            item, before = after[order["record_id"]], stored[order["record_id"]]
            if order["record_id"] in changed:
                assert item["parameter_1"] == {"S": order["parameter_1"]}
                assert item["version"]["S"] > before["version"]["S"]
            else:
                assert item == before
    finally:
        for item in items().values():
            client.delete_item(TableName=TABLE, Key={"order_key": item["order_key"]})
