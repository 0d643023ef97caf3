"""The handlers keep the promises of docs/openapi.json: Schemathesis generates requests from the
committed document for every operation, and every reply must have a documented status, the
documented headers and a body of its schema. Events carry the authorizer's context, as API
Gateway's do after the authorizer allowed the caller."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from entrix.aws.client_usage import ClientUsage
from entrix.aws.orders_table import Backoff, OrdersTable, PutOutcome
from entrix.handlers import cancel, ingest, order_list, order_status
from entrix.orders.usage import Limits
from tests.support.api_events import api_event
from tests.support.inject import Fault
from tests.support.moto_orders import moto_orders_table
from tests.support.moto_usage import USAGE_TABLE, unlimited_usage

TABLE = "orders-conformance"
NOW = 1_764_000_000.0
OWNER = "desk-a"

DOCUMENT = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text(encoding="utf-8")
)
API = schemathesis.openapi.from_dict(DOCUMENT)
REGISTRY = Registry().with_resource(
    "urn:api", Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
)


def assert_documented(path: str, method: str, reply: dict[str, Any]) -> None:
    """The reply's status is documented for the operation, with its headers, and its body
    matches the schema (a documented reply without content has no body)."""
    responses = DOCUMENT["paths"][path][method]["responses"]
    status = str(reply["statusCode"])
    documented = responses.get(status) or responses.get(f"{status[0]}XX")
    assert documented is not None, reply
    for name in documented.get("headers", {}):
        assert name in reply["headers"], (name, reply)
    if "content" not in documented:
        assert reply["body"] == "", reply
        return
    assert reply["headers"]["Content-Type"] == "application/json"
    pointer = documented["content"]["application/json"]["schema"]["$ref"]
    validator = Draft202012Validator({"$ref": "urn:api" + pointer}, registry=REGISTRY)
    validator.validate(json.loads(reply["body"], parse_float=Decimal))


def event(owner: str = OWNER, **fields: Any) -> dict[str, Any]:
    return api_event(owner, **fields)


def json_body(orders: Any) -> dict[str, Any]:
    return {"headers": {"Content-Type": "application/json"}, "body": json.dumps(orders)}


@pytest.fixture(scope="module")
def table() -> Iterator[OrdersTable]:
    with moto_orders_table(TABLE) as client:
        yield OrdersTable(client, TABLE, Backoff(sleep=lambda _: None))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=API["/orders"]["POST"].as_strategy())
def test_post_orders_replies_as_documented(table: OrdersTable, case: Any) -> None:
    posted = event(headers={"Content-Type": case.media_type}, body=json.dumps(case.body))
    reply = ingest.handle(posted, table, NOW, usage=unlimited_usage())
    assert reply["statusCode"] in (201, 400, 409, 413), reply
    assert_documented("/orders", "post", reply)


# Fewer: each listing queries the owner index's 16 partitions.
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=API["/orders"]["GET"].as_strategy())
def test_list_orders_replies_as_documented(table: OrdersTable, case: Any) -> None:
    # API Gateway passes query string values to the Lambda as strings.
    query = {name: str(value) for name, value in (case.query or {}).items()}
    reply = order_list.handle(
        event(queryStringParameters=query or None), table, NOW, usage=unlimited_usage()
    )
    assert reply["statusCode"] in (200, 400), reply
    assert_documented("/orders", "get", reply)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=API["/orders/{record_id}"]["GET"].as_strategy())
def test_get_order_replies_as_documented(table: OrdersTable, case: Any) -> None:
    # API Gateway URL-decodes path parameters before the Lambda sees them.
    record_id = unquote(case.path_parameters["record_id"])
    reply = order_status.handle(
        event(pathParameters={"record_id": record_id}), table, NOW, usage=unlimited_usage()
    )
    assert_documented("/orders/{record_id}", "get", reply)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=API["/orders/{record_id}"]["DELETE"].as_strategy())
def test_cancel_order_replies_as_documented(table: OrdersTable, case: Any) -> None:
    record_id = unquote(case.path_parameters["record_id"])
    reply = cancel.handle(event(pathParameters={"record_id": record_id}), table, NOW)
    assert_documented("/orders/{record_id}", "delete", reply)


def test_an_orders_life_reads_back_as_documented(table: OrdersTable) -> None:
    """Created, resent, amended, recorded, refused, cancelled, listed: every reply documented."""
    orders = [
        {"record_id": "life-pending", "parameter_1": "x", "parameter_2": 2.1},
        {"record_id": "life-done", "parameter_1": "", "parameter_2": -1e-130},
    ]
    replies: list[tuple[str, str, dict[str, Any]]] = []

    def post(body: Any) -> dict[str, Any]:
        reply = ingest.handle(event(**json_body(body)), table, NOW, usage=unlimited_usage())
        replies.append(("/orders", "post", reply))
        return reply

    assert post(orders)["statusCode"] == 201
    amended = {**orders[0], "parameter_1": "amended"}
    assert json.loads(post([amended, orders[1]])["body"])["unchanged"] == ["life-done"]
    done = table.get_order(OWNER, "life-done")
    assert done is not None
    recorded = {
        **done,
        "result_status": "accepted",
        "power": Decimal("42.5"),
        "result_run_id": "run-1",
        "result_at": "2025-11-24T16:05:00.000Z",
    }
    del recorded["pending_shard"]
    table.put_items([recorded])
    refused = post([{**orders[1], "parameter_1": "changed"}])
    assert refused["statusCode"] == 409
    assert json.loads(refused["body"])["refused"] == [
        {"record_id": "life-done", "state": "accepted"}
    ]
    for record_id, status in (("life-pending", 204), ("life-done", 409), ("life-pending", 204)):
        reply = cancel.handle(event(pathParameters={"record_id": record_id}), table, NOW)
        assert reply["statusCode"] == status
        replies.append(("/orders/{record_id}", "delete", reply))
    for record_id in ("life-pending", "life-done", "unknown"):
        reply = order_status.handle(
            event(pathParameters={"record_id": record_id}), table, NOW, usage=unlimited_usage()
        )
        replies.append(("/orders/{record_id}", "get", reply))
    assert json.loads(replies[-3][2]["body"])["result_status"] == "cancelled"
    listing = order_list.handle(
        event(queryStringParameters={"limit": "1"}), table, NOW, usage=unlimited_usage()
    )
    assert listing["statusCode"] == 200
    assert json.loads(listing["body"])["next_cursor"] is not None
    replies.append(("/orders", "get", listing))
    others = order_list.handle(event("desk-b"), table, NOW, usage=unlimited_usage())
    assert json.loads(others["body"]) == {"orders": [], "next_cursor": None}
    replies.append(("/orders", "get", others))
    expired = ingest.handle(
        api_event(OWNER, exp=int(NOW) - 3600, **json_body(orders)),
        table,
        NOW,
        usage=unlimited_usage(),
    )
    assert expired["statusCode"] == 401
    replies.append(("/orders", "post", expired))
    for path, method, reply in replies:
        assert_documented(path, method, reply)


class _TableThatDropsOrders:
    """A table whose DynamoDB took none of the orders (503)."""

    def put_orders(
        self, items: Sequence[Any], now: float, deadline: object = None
    ) -> list[PutOutcome]:
        return [PutOutcome(str(item["record_id"]), "not_stored") for item in items]


def test_orders_not_stored_reply_as_documented() -> None:
    orders = [{"record_id": "lost", "parameter_1": "x", "parameter_2": 1}]
    reply = ingest.handle(
        event(**json_body(orders)), _TableThatDropsOrders(), NOW, usage=unlimited_usage()
    )
    assert reply["statusCode"] == 503
    assert reply["headers"]["Retry-After"] == str(ingest.RETRY_AFTER_SECONDS)
    assert_documented("/orders", "post", reply)


def test_the_callers_share_replies_as_documented(table: OrdersTable) -> None:
    """429 of the daily order quota and of the request rate, and 503 when the share could not
    be counted, on every operation charged to it; a cancel is never refused for the share."""
    usage = ClientUsage(unlimited_usage().client, USAGE_TABLE, Limits(2, 10, 1))
    orders = [{"record_id": f"share-{i}", "parameter_1": "x", "parameter_2": i} for i in range(2)]
    calls: list[tuple[str, str, Callable[[ClientUsage], dict[str, Any]]]] = [
        (
            "/orders",
            "post",
            lambda u: ingest.handle(event("desk-s", **json_body(orders)), table, NOW, usage=u),
        ),
        ("/orders", "get", lambda u: order_list.handle(event("desk-s"), table, NOW, usage=u)),
        (
            "/orders/{record_id}",
            "get",
            lambda u: order_status.handle(
                event("desk-s", pathParameters={"record_id": "share-0"}), table, NOW, usage=u
            ),
        ),
    ]
    quota = calls[0][2](usage)
    assert (quota["statusCode"], json.loads(quota["body"])["code"]) == (
        429,
        "DAILY_ORDER_QUOTA_EXCEEDED",
    )
    assert_documented("/orders", "post", quota)
    assert calls[1][2](usage)["statusCode"] == 200  # the second request of the window
    for path, method, call in calls:
        limited = call(usage)
        assert (limited["statusCode"], json.loads(limited["body"])["code"]) == (429, "RATE_LIMITED")
        assert_documented(path, method, limited)
    Fault(usage.client, "UpdateItem", "ThrottlingException")
    for path, method, call in calls:
        unavailable = call(usage)
        assert unavailable["statusCode"] == 503
        assert json.loads(unavailable["body"])["code"] == "USAGE_UNAVAILABLE"
        assert_documented(path, method, unavailable)
    # Over its rate and with the usage table throttled, the client still cancels.
    cancelled = cancel.handle(event("desk-s", pathParameters={"record_id": "share-0"}), table, NOW)
    assert cancelled["statusCode"] in (204, 404)
    assert_documented("/orders/{record_id}", "delete", cancelled)
