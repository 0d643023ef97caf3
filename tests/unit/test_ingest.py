"""POST /orders through the ingest handler, with the orders table in moto."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from entrix import settings
from entrix.aws.client_usage import ClientUsage
from entrix.aws.orders_table import Backoff, OrdersTable
from entrix.handlers import ingest
from entrix.orders import lifecycle
from entrix.orders.usage import Limits
from tests.support.api_events import api_event
from tests.support.inject import Fault
from tests.support.lambda_context import lambda_context
from tests.support.moto_orders import moto_orders_table
from tests.support.moto_usage import USAGE_TABLE, unlimited_usage

TABLE = "orders-test"
NOW = 1_764_000_000.5


@pytest.fixture
def client() -> Iterator[Any]:
    with moto_orders_table(TABLE) as dynamodb:
        yield dynamodb


@pytest.fixture
def table(client: Any) -> OrdersTable:
    return OrdersTable(client, TABLE, Backoff(sleep=lambda _: None))


def event(
    body: str | bytes | None, content_type: str | None = "application/json", owner: str = "desk-a"
) -> dict[str, Any]:
    headers = {} if content_type is None else {"content-type": content_type}
    if isinstance(body, bytes):
        encoded: str | None = base64.b64encode(body).decode()
        return api_event(owner, headers=headers, body=encoded, isBase64Encoded=True)
    return api_event(owner, headers=headers, body=body, isBase64Encoded=False)


def post(
    table: OrdersTable, body: str | bytes | None, now: float = NOW, **kwargs: Any
) -> tuple[int, Any]:
    reply = ingest.handle(event(body, **kwargs), table, now, usage=unlimited_usage())
    assert reply["headers"]["Content-Type"] == "application/json"
    return reply["statusCode"], json.loads(reply["body"], parse_float=Decimal)


def scan(client: Any, owner: str = "desk-a") -> dict[str, dict[str, Any]]:
    """`owner`'s items by record_id, as DynamoDB holds them."""
    items = client.scan(TableName=TABLE)["Items"]
    return {item["record_id"]["S"]: item for item in items if item["owner"]["S"] == owner}


def outcomes(**lists: Any) -> dict[str, Any]:
    """A reply's outcome lists: the named ones, the others empty."""
    empty: dict[str, Any] = {name: [] for name in ingest.OUTCOMES}
    return {**empty, **lists}


def orders(count: int) -> list[dict[str, Any]]:
    return [{"record_id": f"r{i}", "parameter_1": "x", "parameter_2": i} for i in range(count)]


def test_orders_are_stored_exactly_with_ttl_and_a_summary(client: Any, table: OrdersTable) -> None:
    body = (
        '[{"record_id": "a", "parameter_1": "first", "parameter_2": 2.1},'
        ' {"record_id": "ü-日本", "parameter_1": "", "parameter_2": -1E-130},'
        ' {"record_id": "big", "parameter_1": "x",'
        '  "parameter_2": 12345678901234567890123456789012345678}]'
    )
    status, summary = post(table, body)
    assert status == 201
    assert summary == {
        "received_at": "2025-11-24T16:00:00.500Z",
        "expires_at": 1_764_086_400,
        **outcomes(created=["a", "ü-日本", "big"]),
    }
    items = scan(client)
    version = items["a"]["version"]["S"]
    assert version.startswith("2025-11-24T16:00:00.500Z/") and version.endswith("/0000")
    assert items["a"] == {
        "order_key": {"S": "desk-a#a"},
        "owner": {"S": "desk-a"},
        "record_id": {"S": "a"},
        "parameter_1": {"S": "first"},
        "parameter_2": {"N": "2.1"},
        "received_at": {"S": "2025-11-24T16:00:00.500Z"},
        "expires_at": {"N": "1764086400"},
        "result_status": {"S": "pending"},
        "version": {"S": version},
        "pending_shard": {"S": lifecycle.pending_shard("desk-a#a")},
        "owner_shard": {"S": lifecycle.owner_shard("desk-a", "a")},
    }
    assert items["ü-日本"]["parameter_2"] == {"N": "-1E-130"}
    assert items["big"]["parameter_2"] == {"N": "12345678901234567890123456789012345678"}


def test_the_module_level_handler_uses_the_table_named_in_the_environment(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.ORDERS_TABLE_NAME.name, TABLE)
    monkeypatch.setenv(settings.CLIENT_USAGE_TABLE_NAME.name, unlimited_usage().table_name)
    ingest.orders_table.cache_clear()  # as a cold start: the table is made on first use, mocked
    ingest.client_usage.cache_clear()
    reply = ingest.handler(event(json.dumps(orders(2))), lambda_context(28_000))
    ingest.orders_table.cache_clear()
    ingest.client_usage.cache_clear()
    assert reply["statusCode"] == 201
    assert set(scan(client)) == {"r0", "r1"}


def test_a_base64_encoded_body_is_decoded(client: Any, table: OrdersTable) -> None:
    status, _ = post(table, json.dumps(orders(1)).encode())
    assert status == 201
    assert set(scan(client)) == {"r0"}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
    ],
)
def test_json_content_types_are_accepted(table: OrdersTable, content_type: str) -> None:
    assert post(table, json.dumps(orders(1)), content_type=content_type)[0] == 201


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
    ],
)
def test_other_content_types_are_refused_with_415(
    client: Any, table: OrdersTable, content_type: str | None
) -> None:
    status, error = post(table, json.dumps(orders(1)), content_type=content_type)
    assert status == 415
    assert error == {
        "message": "Content-Type must be application/json",
        "code": "UNSUPPORTED_MEDIA_TYPE",
        "request_id": "req-1",
        "errors": [{"index": None, "field": "Content-Type", "reason": "must be application/json"}],
    }
    assert scan(client) == {}


def test_a_content_type_in_multi_value_headers_counts(table: OrdersTable) -> None:
    reply = ingest.handle(
        api_event(
            multiValueHeaders={"Content-Type": ["application/json"]}, body=json.dumps(orders(1))
        ),
        table,
        NOW,
        usage=unlimited_usage(),
    )
    assert reply["statusCode"] == 201


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (None, 400),
        ("", 400),
        ("[1", 400),
        (b"\xc3\x28", 400),
        ("[\udcff]", 400),
        ('[{"record_id": "a", "parameter_1": "x", "parameter_2": NaN}]', 400),
        ("[" * 100_000, 400),
        (json.dumps(orders(1001)), 413),
        (" " * 5_000_001, 413),
    ],
)
def test_bad_bodies_get_4xx_and_nothing_is_stored(
    client: Any, table: OrdersTable, body: str | bytes | None, status: int
) -> None:
    got, error = post(table, body)
    assert got == status
    assert set(error) == {"message", "code", "request_id", "errors"}
    assert error["code"] == ("REQUEST_TOO_LARGE" if status == 413 else "BAD_REQUEST_BODY")
    assert scan(client) == {}


def test_invalid_base64_is_refused(table: OrdersTable) -> None:
    reply = ingest.handle(
        api_event(
            headers={"Content-Type": "application/json"}, body="not base64!", isBase64Encoded=True
        ),
        table,
        NOW,
        usage=unlimited_usage(),
    )
    assert reply["statusCode"] == 400


def test_one_invalid_order_means_none_is_stored(client: Any, table: OrdersTable) -> None:
    body = orders(3)
    body[1]["parameter_2"] = "12"
    status, error = post(table, json.dumps(body))
    assert status == 400
    assert error == {
        "message": "1 invalid order field(s)",
        "code": "BAD_REQUEST_BODY",
        "request_id": "req-1",
        "errors": [{"index": 1, "field": "parameter_2", "reason": "must be a JSON number"}],
    }
    assert scan(client) == {}


class Throttles:
    """A client whose PutItem of the given record_ids is throttled (after botocore's own
    retries, as a ClientError) `times` times, or always; other calls go to DynamoDB."""

    def __init__(self, client: Any, refused: set[str], times: int | None = None) -> None:
        self.client = client
        self.refused = refused
        self.times = times
        self.meta = client.meta

    def put_item(self, **request: Any) -> Any:
        from botocore.exceptions import ClientError

        record_id = request["Item"]["record_id"]["S"]
        if record_id in self.refused and (self.times is None or self.times > 0):
            if self.times is not None:
                self.times -= 1
            error = {"Error": {"Code": "ProvisionedThroughputExceededException"}}
            raise ClientError(error, "PutItem")  # type: ignore[arg-type]
        return self.client.put_item(**request)


def test_orders_never_written_are_named_in_a_503_with_retry_after(client: Any) -> None:
    sleeps: list[float] = []
    table = OrdersTable(
        Throttles(client, {"r7", "r60"}),  # type: ignore[arg-type]
        TABLE,
        Backoff(max_attempts=5, sleep=sleeps.append),
    )
    reply = ingest.handle(event(json.dumps(orders(70))), table, NOW, usage=unlimited_usage())
    assert reply["statusCode"] == 503
    assert reply["headers"]["Retry-After"] == "1"
    body = json.loads(reply["body"])
    assert (body["code"], body["request_id"]) == ("ORDERS_NOT_STORED", "req-1")
    assert body["not_stored"] == ["r7", "r60"]
    assert body["created"] == [f"r{i}" for i in range(70) if i not in (7, 60)]
    assert set(scan(client)) == {f"r{i}" for i in range(70)} - {"r7", "r60"}
    assert len(sleeps) == 8  # 4 retries for each of the two throttled orders


def test_resending_the_whole_request_after_a_503_stores_the_rest_and_changes_nothing(
    client: Any,
) -> None:
    throttled = Throttles(client, {"r1", "r2"}, times=10)
    table = OrdersTable(throttled, TABLE, Backoff(max_attempts=2, sleep=lambda _: None))  # type: ignore[arg-type]
    first, _ = post(table, json.dumps(orders(5)))
    before = scan(client)
    status, summary = post(table, json.dumps(orders(5)), now=NOW + 5)
    assert (first, status) == (503, 503)  # r1 and r2 are still throttled
    throttled.times = 0
    status, summary = post(table, json.dumps(orders(5)), now=NOW + 9)
    assert status == 201
    assert summary["created"] == ["r1", "r2"]
    assert summary["unchanged"] == ["r0", "r3", "r4"]
    after = scan(client)
    assert {k: after[k] for k in before} == before, "stored orders are not touched again"


def test_identical_resend_is_unchanged_in_every_state(client: Any, table: OrdersTable) -> None:
    post(table, json.dumps(orders(4)))
    client.update_item(
        TableName=TABLE,
        Key={"order_key": {"S": "desk-a#r1"}},
        UpdateExpression="SET claimed_by = :run, claim_expires_at = :until",
        ExpressionAttributeValues={":run": {"S": "run-1"}, ":until": {"N": str(int(NOW) + 600)}},
    )
    for record_id, status in (("r2", "accepted"), ("r3", "cancelled")):
        client.update_item(
            TableName=TABLE,
            Key={"order_key": {"S": f"desk-a#{record_id}"}},
            UpdateExpression="SET result_status = :s REMOVE pending_shard",
            ExpressionAttributeValues={":s": {"S": status}},
        )
    before = scan(client)
    resend = orders(4)
    resend[0]["parameter_2"] = Decimal("0.00")  # 0 by value: the same order
    status, summary = post(table, json.dumps(resend, default=str).replace('"0.00"', "0.00"))
    assert status == 201
    assert summary == {
        "received_at": "2025-11-24T16:00:00.500Z",
        "expires_at": 1_764_086_400,
        **outcomes(unchanged=["r0", "r1", "r2", "r3"]),
    }
    assert scan(client) == before


def test_different_content_amends_a_pending_order_and_is_refused_otherwise(
    client: Any, table: OrdersTable
) -> None:
    post(table, json.dumps(orders(4)))
    client.update_item(
        TableName=TABLE,
        Key={"order_key": {"S": "desk-a#r1"}},
        UpdateExpression="SET claimed_by = :run, claim_expires_at = :until",
        ExpressionAttributeValues={":run": {"S": "run-1"}, ":until": {"N": str(int(NOW) + 600)}},
    )
    client.update_item(
        TableName=TABLE,
        Key={"order_key": {"S": "desk-a#r2"}},
        UpdateExpression="SET result_status = :s, power = :p REMOVE pending_shard",
        ExpressionAttributeValues={":s": {"S": "accepted"}, ":p": {"N": "7"}},
    )
    before = scan(client)
    changed = [{**order, "parameter_1": "changed"} for order in orders(4)]
    changed.append({"record_id": "new", "parameter_1": "x", "parameter_2": 1})
    status, summary = post(table, json.dumps(changed), now=NOW + 60)
    assert status == 409
    assert (summary["code"], summary["request_id"]) == ("ORDER_CONFLICT", "req-1")
    assert summary["created"] == ["new"]
    assert summary["amended"] == ["r0", "r3"]
    assert summary["unchanged"] == []
    assert summary["refused"] == [
        {"record_id": "r1", "state": "claimed"},
        {"record_id": "r2", "state": "accepted"},
    ]
    after = scan(client)
    assert after["r1"] == before["r1"] and after["r2"] == before["r2"], "never reset"
    assert after["r0"]["parameter_1"] == {"S": "changed"}
    assert after["r0"]["version"] != before["r0"]["version"]
    assert after["r0"]["received_at"] == {"S": "2025-11-24T16:01:00.500Z"}


def test_an_order_whose_claim_lease_ended_may_be_amended(client: Any, table: OrdersTable) -> None:
    post(table, json.dumps(orders(1)))
    client.update_item(
        TableName=TABLE,
        Key={"order_key": {"S": "desk-a#r0"}},
        UpdateExpression="SET claimed_by = :run, claim_expires_at = :until",
        ExpressionAttributeValues={":run": {"S": "run-1"}, ":until": {"N": str(int(NOW) + 10)}},
    )
    status, summary = post(table, json.dumps([{**orders(1)[0], "parameter_2": 5}]), now=NOW + 11)
    assert (status, summary["amended"]) == (201, ["r0"])
    assert "claimed_by" not in scan(client)["r0"]


def test_two_clients_keep_separate_orders_under_one_record_id(
    client: Any, table: OrdersTable
) -> None:
    post(table, json.dumps(orders(1)), owner="desk-a")
    theirs = [{"record_id": "r0", "parameter_1": "desk-b's", "parameter_2": 9}]
    status, summary = post(table, json.dumps(theirs), owner="desk-b")
    assert (status, summary["created"]) == (201, ["r0"])
    assert scan(client, "desk-a")["r0"]["parameter_1"] == {"S": "x"}
    assert scan(client, "desk-b")["r0"]["parameter_1"] == {"S": "desk-b's"}


def test_an_expired_order_is_replaced_as_a_new_one(client: Any, table: OrdersTable) -> None:
    post(table, json.dumps(orders(1)))
    client.update_item(
        TableName=TABLE,
        Key={"order_key": {"S": "desk-a#r0"}},
        UpdateExpression="SET result_status = :s REMOVE pending_shard",
        ExpressionAttributeValues={":s": {"S": "accepted"}},
    )
    status, summary = post(table, json.dumps(orders(1)), now=NOW + 86_400)
    assert (status, summary["created"]) == (201, ["r0"])
    assert scan(client)["r0"]["result_status"] == {"S": "pending"}


def test_a_token_past_its_expiry_is_refused_although_the_gateway_let_it_through(
    client: Any, table: OrdersTable
) -> None:
    request = api_event(
        exp=int(NOW) - 31,
        headers={"content-type": "application/json"},
        body=json.dumps(orders(1)),
    )
    reply = ingest.handle(request, table, NOW, usage=unlimited_usage())
    assert reply["statusCode"] == 401
    assert json.loads(reply["body"])["code"] == "UNAUTHORIZED"
    assert scan(client) == {}


def limited(rate_limit: int = 100, daily_orders: int = 1_000) -> ClientUsage:
    """The usage table with small limits, windows of 10 s."""
    return ClientUsage(unlimited_usage().client, USAGE_TABLE, Limits(rate_limit, 10, daily_orders))


def test_a_client_over_its_rate_gets_429_with_retry_after_and_nothing_is_stored(
    client: Any, table: OrdersTable
) -> None:
    usage = limited(rate_limit=2)
    for _ in range(2):
        ingest.handle(event(json.dumps(orders(1))), table, NOW, usage=usage)
    reply = ingest.handle(event(json.dumps(orders(3))), table, NOW + 1, usage=usage)
    assert reply["statusCode"] == 429
    assert reply["headers"]["Retry-After"] == "9"  # the window NOW - 0.5 .. NOW + 9.5 ends
    body = json.loads(reply["body"])
    assert (body["code"], body["request_id"]) == ("RATE_LIMITED", "req-1")
    assert set(scan(client)) == {"r0"}
    other = ingest.handle(event(json.dumps(orders(3)), owner="desk-b"), table, NOW, usage=usage)
    assert other["statusCode"] == 201, "another client's share is its own"


def test_orders_past_the_daily_quota_are_refused_whole(client: Any, table: OrdersTable) -> None:
    usage = limited(daily_orders=5)
    assert post_with(usage, table, orders(3))["statusCode"] == 201
    reply = post_with(
        usage, table, [*orders(3), *[{**o, "record_id": f"n{i}"} for i, o in enumerate(orders(3))]]
    )
    assert reply["statusCode"] == 429
    body = json.loads(reply["body"])
    assert body["code"] == "DAILY_ORDER_QUOTA_EXCEEDED"
    assert reply["headers"]["Retry-After"] == str(86_400 - int(NOW) % 86_400)
    assert set(scan(client)) == {"r0", "r1", "r2"}, "nothing of the refused request is stored"


def test_an_identical_retry_is_refunded(client: Any, table: OrdersTable) -> None:
    """A charge needs room for the whole request, so each retry is charged, then given back:
    without the refund the third request would not fit, nor the last."""
    usage = limited(daily_orders=6)
    for _ in range(3):
        reply = post_with(usage, table, orders(3))
        assert reply["statusCode"] == 201
    assert json.loads(reply["body"])["unchanged"] == ["r0", "r1", "r2"]
    assert post_with(usage, table, orders(6)[3:])["statusCode"] == 201  # 3 + 3 = the quota


def test_an_unavailable_usage_table_is_a_503_with_retry_after(
    client: Any, table: OrdersTable
) -> None:
    usage = limited()
    Fault(usage.client, "UpdateItem", "ThrottlingException")
    reply = post_with(usage, table, orders(2))
    assert reply["statusCode"] == 503
    assert reply["headers"]["Retry-After"] == "1"
    assert json.loads(reply["body"])["code"] == "USAGE_UNAVAILABLE"
    assert scan(client) == {}


def post_with(usage: ClientUsage, table: OrdersTable, posted: list[Any]) -> dict[str, Any]:
    return ingest.handle(event(json.dumps(posted)), table, NOW, usage=usage)
