"""The handlers keep the promises of docs/openapi.json: Schemathesis generates requests from the
committed document, and every reply must have a documented status and a body of its schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
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

from entrix.aws.orders_table import Backoff, OrdersTable
from entrix.handlers import ingest, order_status
from tests.support.moto_orders import moto_orders_table

TABLE = "orders-conformance"
NOW = 1_764_000_000.0

DOCUMENT = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text(encoding="utf-8")
)
API = schemathesis.openapi.from_dict(DOCUMENT)
REGISTRY = Registry().with_resource(
    "urn:api", Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
)


def assert_documented(path: str, method: str, reply: dict[str, Any]) -> None:
    """The reply's status is documented for the operation, and its body matches the schema."""
    responses = DOCUMENT["paths"][path][method]["responses"]
    status = str(reply["statusCode"])
    assert status in responses, reply
    assert reply["headers"]["Content-Type"] == "application/json"
    pointer = responses[status]["content"]["application/json"]["schema"]["$ref"]
    validator = Draft202012Validator({"$ref": "urn:api" + pointer}, registry=REGISTRY)
    validator.validate(json.loads(reply["body"], parse_float=Decimal))


@pytest.fixture(scope="module")
def table() -> Iterator[OrdersTable]:
    with moto_orders_table(TABLE) as client:
        yield OrdersTable(client, TABLE, Backoff(sleep=lambda _: None))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=API["/orders"]["POST"].as_strategy())
def test_post_orders_replies_as_documented(table: OrdersTable, case: Any) -> None:
    event = {"headers": {"Content-Type": case.media_type}, "body": json.dumps(case.body)}
    reply = ingest.handle(event, table, NOW)
    assert reply["statusCode"] in (201, 400, 413), reply
    assert_documented("/orders", "post", reply)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=API["/orders/{record_id}"]["GET"].as_strategy())
def test_get_order_replies_as_documented(table: OrdersTable, case: Any) -> None:
    # API Gateway URL-decodes path parameters before the Lambda sees them.
    record_id = unquote(case.path_parameters["record_id"])
    reply = order_status.handle({"pathParameters": {"record_id": record_id}}, table, NOW)
    assert_documented("/orders/{record_id}", "get", reply)


def test_stored_orders_and_their_results_read_back_as_documented(table: OrdersTable) -> None:
    orders = [
        {"record_id": "pending", "parameter_1": "x", "parameter_2": 2.1},
        {"record_id": "done", "parameter_1": "", "parameter_2": -1e-130},
    ]
    event = {"headers": {"Content-Type": "application/json"}, "body": json.dumps(orders)}
    assert_documented("/orders", "post", ingest.handle(event, table, NOW))
    table.put_items(
        [
            {
                **table.get_item("done"),  # type: ignore[dict-item]
                "result_status": "accepted",
                "power": Decimal("42.5"),
                "result_run_id": "run-1",
                "result_at": "2025-11-24T16:05:00.000Z",
            }
        ]
    )
    for record_id in ("pending", "done"):
        reply = order_status.handle({"pathParameters": {"record_id": record_id}}, table, NOW)
        assert reply["statusCode"] == 200
        assert_documented("/orders/{record_id}", "get", reply)
