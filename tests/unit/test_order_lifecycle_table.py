"""The orders table's client operations against moto: conditional puts (created, amended,
unchanged, refused), cancels, and the owner's listing through the owner-orders index."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from entrix.aws.orders_table import Backoff, Deadline, OrdersTable
from entrix.orders import lifecycle
from tests.support.moto_orders import OWNER_INDEX, moto_orders_table

TABLE = "orders-lifecycle-test"
NOW = 1_764_000_000.0


@pytest.fixture
def client() -> Iterator[Any]:
    with moto_orders_table(TABLE) as dynamodb:
        yield dynamodb


def order(record_id: str, parameter_1: str = "buy", **extra: Any) -> dict[str, Any]:
    return {"record_id": record_id, "parameter_1": parameter_1, "parameter_2": Decimal(1), **extra}


def items(
    owner: str, orders: list[dict[str, Any]], received: float = NOW, nonce: str = "0" * 12
) -> list[dict[str, Any]]:
    """Orders as the intake puts them, received at `received` in one request."""
    received_at = _iso(received)
    return [
        lifecycle.stored_item(
            o, owner, received_at, int(received) + 86_400, lifecycle.version(received_at, nonce, i)
        )
        for i, o in enumerate(orders)
    ]


def _iso(epoch: float) -> str:
    from entrix.timestamps import iso_milliseconds

    return iso_milliseconds(epoch)


def outcomes(table: OrdersTable, *args: Any, **kwargs: Any) -> list[tuple[str, str, Any]]:
    return [(p.record_id, p.outcome, p.state) for p in table.put_orders(*args, **kwargs)]


def test_puts_run_in_parallel_and_answer_in_request_order(client: Any) -> None:
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def enter(**_: Any) -> None:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])

    def leave(**_: Any) -> None:
        with lock:
            in_flight[0] -= 1

    client.meta.events.register("before-call.dynamodb.PutItem", enter)
    client.meta.events.register("after-call.dynamodb.PutItem", leave)
    orders = [order(f"r{i:03d}") for i in range(200)]
    result = outcomes(OrdersTable(client, TABLE), items("desk-a", orders), NOW)
    assert result == [(f"r{i:03d}", "created", None) for i in range(200)]
    assert most[0] > 1, "puts overlap"


def test_a_put_refused_with_no_time_left_is_not_stored_and_never_started(client: Any) -> None:
    calls: list[str] = []
    bounded = boto3.client(
        "dynamodb",
        region_name="eu-west-1",
        config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
    )
    bounded.meta.events.register("before-call.dynamodb.PutItem", lambda **_: calls.append("x"))
    table = OrdersTable(bounded, TABLE)
    deadline = Deadline(at=-1.0, clock=lambda: 0.0)
    assert outcomes(table, items("desk-a", [order("a")]), NOW, deadline) == [
        ("a", "not_stored", None)
    ]
    assert calls == []


def test_throttled_puts_are_retried_whole_then_reported_not_stored(client: Any) -> None:
    attempts: list[str] = []

    def throttle(params: dict[str, Any], **_: Any) -> None:
        attempts.append(params["Item"]["record_id"]["S"])
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem"
        )

    client.meta.events.register("provide-client-params.dynamodb.PutItem", throttle)
    sleeps: list[float] = []
    table = OrdersTable(client, TABLE, Backoff(max_attempts=3, sleep=sleeps.append))
    assert outcomes(table, items("desk-a", [order("a")]), NOW) == [("a", "not_stored", None)]
    assert attempts == ["a"] * 3 and len(sleeps) == 2


def test_a_condition_on_every_model_field_tells_amend_from_resend(client: Any) -> None:
    table = OrdersTable(client, TABLE)
    table.put_orders(items("desk-a", [order("a")]), NOW)
    resend = items("desk-a", [order("a")], NOW + 1, nonce="1" * 12)
    assert outcomes(table, resend, NOW + 1) == [("a", "unchanged", None)]
    amend = items("desk-a", [order("a", parameter_1="sell")], NOW + 2, nonce="2" * 12)
    assert outcomes(table, amend, NOW + 2) == [("a", "amended", None)]
    stored = table.get_order("desk-a", "a")
    assert stored is not None and stored["version"] == amend[0]["version"]


def test_cancel_answers_for_each_state(client: Any) -> None:
    table = OrdersTable(client, TABLE)
    table.put_orders(items("desk-a", [order("a"), order("b"), order("c")]), NOW)
    client.update_item(
        TableName=TABLE,
        Key={"order_key": {"S": "desk-a#b"}},
        UpdateExpression="SET claimed_by = :r, claim_expires_at = :u",
        ExpressionAttributeValues={":r": {"S": "run"}, ":u": {"N": str(int(NOW) + 60)}},
    )
    client.update_item(
        TableName=TABLE,
        Key={"order_key": {"S": "desk-a#c"}},
        UpdateExpression="SET result_status = :s REMOVE pending_shard",
        ExpressionAttributeValues={":s": {"S": "rejected"}},
    )

    def cancel(owner: str, record_id: str, now: float = NOW) -> tuple[str, Any]:
        done = table.cancel(owner, record_id, now, "at")
        return done.outcome, done.state

    assert cancel("desk-a", "a") == ("cancelled", None)
    assert cancel("desk-a", "a") == ("cancelled", None), "a retried DELETE"
    assert cancel("desk-a", "b") == ("refused", "claimed")
    assert cancel("desk-a", "c") == ("refused", "rejected")
    assert cancel("desk-b", "a") == ("not_found", None), "another client's order"
    assert cancel("desk-a", "zz") == ("not_found", None)
    assert cancel("desk-a", "b", NOW + 61) == ("cancelled", None), "the claim's lease ended"
    cancelled = table.get_order("desk-a", "a")
    assert cancelled is not None
    assert (cancelled["result_status"], cancelled["cancelled_at"]) == ("cancelled", "at")
    assert "pending_shard" not in cancelled, "out of the pending-results index"


def everything(table: OrdersTable, owner: str, limit: int, **kwargs: Any) -> list[list[str]]:
    """Every page of `owner`'s listing, as record_ids."""
    pages, before = [], None
    wanted = kwargs.pop("wanted", lambda item: True)
    while True:
        page = table.list_orders(OWNER_INDEX, owner, limit, before, wanted, 1_000)
        pages.append([item["record_id"] for item in page.items])
        if page.next_before is None:
            return pages
        before = page.next_before


def test_the_listing_pages_through_an_owners_orders_newest_first_exactly_once(
    client: Any,
) -> None:
    table = OrdersTable(client, TABLE)
    # 300 orders in three requests a second apart, and another owner's under the same ids.
    # (moto scans the whole table for each of a page's 16 index queries: the e2e tests page
    # through 2,500 over HTTP.)
    for request in range(3):
        mine = [order(f"r{request}-{i:03d}") for i in range(100)]
        table.put_orders(items("desk-a", mine, NOW + request, nonce=f"{request:012d}"), NOW)
        table.put_orders(items("desk-b", mine[:10], NOW + request), NOW)
    pages = everything(table, "desk-a", 40)
    listed = [record_id for page in pages for record_id in page]
    assert len(listed) == len(set(listed)) == 300
    assert [len(page) for page in pages] == [40] * 7 + [20]
    expected = [f"r{r}-{i:03d}" for r in (2, 1, 0) for i in reversed(range(100))]
    assert listed == expected, "newest request first, last position first within a request"


def test_the_listing_filters_on_the_items_and_may_end_a_page_short(client: Any) -> None:
    table = OrdersTable(client, TABLE)
    table.put_orders(items("desk-a", [order(f"r{i:02d}") for i in range(30)]), NOW)
    for i in range(0, 30, 3):
        table.cancel("desk-a", f"r{i:02d}", NOW, "at")
    page = table.list_orders(
        OWNER_INDEX, "desk-a", 20, None, lambda item: item["result_status"] == "cancelled", 12
    )
    assert [item["record_id"] for item in page.items] == ["r27", "r24", "r21", "r18"]
    assert page.next_before is not None, "12 examined, more to come"
    cancelled = everything(table, "desk-a", 5, wanted=lambda i: i["result_status"] == "cancelled")
    assert [r for p in cancelled for r in p] == [f"r{i:02d}" for i in range(27, -1, -3)]


@pytest.mark.parametrize(
    "number", ["4.6E+38", "9.9999999999999999999999999999999999999E+125", "1E-130"]
)
def test_numbers_at_dynamodbs_limits_read_back_exactly_and_resend_unchanged(
    client: Any, number: str
) -> None:
    """boto3's deserializer raises `Rounded` on 4.6E+38 as DynamoDB returns it (46 and 37 zeros):
    a resend or a read of such an order must still work."""
    table = OrdersTable(client, TABLE)
    sent = order("big", parameter_2=Decimal(number))
    assert outcomes(table, items("desk-a", [sent]), NOW) == [("big", "created", None)]
    resend = items("desk-a", [sent], NOW + 1, nonce="1" * 12)
    assert outcomes(table, resend, NOW + 1) == [("big", "unchanged", None)]
    stored = table.get_order("desk-a", "big")
    assert stored is not None and stored["parameter_2"] == Decimal(number)


def test_a_refusal_names_the_state_the_condition_saw(client: Any) -> None:
    """The condition compares whole seconds: within the second a lease ends, the state told is
    still `claimed`, never a `pending` that the client could not have been refused for."""
    table = OrdersTable(client, TABLE)
    table.put_orders(items("desk-a", [order("a")]), NOW)
    client.update_item(
        TableName=TABLE,
        Key={"order_key": {"S": "desk-a#a"}},
        UpdateExpression="SET claimed_by = :r, claim_expires_at = :u",
        ExpressionAttributeValues={":r": {"S": "run"}, ":u": {"N": str(int(NOW) + 10)}},
    )
    amend = items("desk-a", [order("a", parameter_1="sell")], NOW + 10.5, nonce="1" * 12)
    assert outcomes(table, amend, NOW + 10.5) == [("a", "refused", "claimed")]
    assert table.cancel("desk-a", "a", NOW + 10.5, "at").state == "claimed"


def test_a_filtered_page_of_one_reads_in_batches_not_order_by_order(client: Any) -> None:
    table = OrdersTable(client, TABLE)
    table.put_orders(items("desk-a", [order(f"r{i:03d}") for i in range(300)]), NOW)
    calls: list[str] = []
    for operation in ("Query", "BatchGetItem"):
        client.meta.events.register(
            f"before-call.dynamodb.{operation}", lambda op=operation, **_: calls.append(op)
        )
    page = table.list_orders(OWNER_INDEX, "desk-a", 1, None, lambda i: False, 1_000)
    assert (page.items, page.next_before is None) == ([], True)
    assert calls.count("BatchGetItem") == 3, "300 orders, 100 a call"
    assert calls.count("Query") <= 16 * 2, "about 19 orders a shard, 25 a query"


def test_an_expired_order_held_by_a_live_run_is_not_replaced(client: Any) -> None:
    """A run that claimed the order just before it expired records its result; a resend then
    must not create a second order that the next run would auction again."""
    table = OrdersTable(client, TABLE)
    table.put_orders(items("desk-a", [order("a", parameter_1="x")]), NOW)
    client.update_item(
        TableName=TABLE,
        Key={"order_key": {"S": "desk-a#a"}},
        UpdateExpression="SET claimed_by = :r, claim_expires_at = :u",
        ExpressionAttributeValues={":r": {"S": "run"}, ":u": {"N": str(int(NOW) + 90_000)}},
    )
    later = NOW + 86_401
    resend = items("desk-a", [order("a", parameter_1="y")], later, nonce="1" * 12)
    assert outcomes(table, resend, later) == [("a", "refused", "claimed")]


def test_the_listing_reads_numbers_moto_would_round(client: Any) -> None:
    """moto's keys-only index query rounds through boto3's 38-digit context (tests/conftest.py
    lifts its Rounded trap); the listing must read the number back exactly."""
    table = OrdersTable(client, TABLE)
    table.put_orders(items("desk-a", [order("big", parameter_2=Decimal("-3.4028234660E+38"))]), NOW)
    page = table.list_orders(OWNER_INDEX, "desk-a", 10, None, lambda item: True, 100)
    assert [item["parameter_2"] for item in page.items] == [Decimal("-3.4028234660E+38")]
