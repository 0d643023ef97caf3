"""What the handlers tell operators: EMF counts per invocation and the correlation id on logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from entrix import settings
from entrix.handlers import ingest as ingest_handler
from tests.support.api_events import api_event
from tests.support.inject import Fault
from tests.support.lambda_context import lambda_context
from tests.support.moto_orders import OWNER, create_orders_table, put_order
from tests.support.moto_usage import USAGE_TABLE, create_usage_table
from tests.unit.test_process_handler import aws, counts, event, process  # noqa: F401 (fixtures)

INGEST_TABLE = "orders-telemetry"


def _metrics(output: str) -> list[dict[str, Any]]:
    """Each EMF record written: its metric values by name (one value per record here)."""
    records = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    return [
        {
            metric["Name"]: record[metric["Name"]][0]
            for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        }
        | {"service": record["service"]}
        for record in records
    ]


@pytest.fixture
def ingest(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv(settings.ORDERS_TABLE_NAME.name, INGEST_TABLE)
    monkeypatch.setenv(settings.CLIENT_USAGE_TABLE_NAME.name, USAGE_TABLE)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        create_orders_table(dynamodb, INGEST_TABLE)
        create_usage_table(dynamodb)
        ingest_handler.orders_table.cache_clear()  # made on first use: in this test's moto
        ingest_handler.client_usage.cache_clear()
        yield ingest_handler
        ingest_handler.orders_table.cache_clear()
        ingest_handler.client_usage.cache_clear()


def _post(ingest: ModuleType, body: str, request_id: str = "api-req-1") -> dict[str, Any]:
    request = api_event(
        request_id=request_id, headers={"Content-Type": "application/json"}, body=body
    )
    reply: dict[str, Any] = ingest.handler(request, lambda_context(28_000))
    return reply


def test_stored_orders_are_counted_and_logged_with_the_api_request_id(
    ingest: ModuleType, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    orders = [{"record_id": f"r{i}", "parameter_1": "x", "parameter_2": i} for i in range(3)]
    with caplog.at_level(logging.INFO, logger="entrix"):
        reply = _post(ingest, json.dumps(orders))

    assert reply["statusCode"] == 201
    assert _metrics(capsys.readouterr().out) == [ingest_counts(3, stored=3)]
    (stored_line,) = [r for r in caplog.records if r.getMessage().startswith("orders put: ")]
    assert getattr(stored_line, "correlation_id", None) == "api-req-1"


def test_orders_not_stored_are_counted(
    ingest: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    client = ingest.orders_table()._client  # the handler's own
    Fault(client, "PutItem", "AccessDeniedException", when=lambda n: n % 6 == 0)
    orders = [{"record_id": f"r{i}", "parameter_1": "x", "parameter_2": i} for i in range(30)]

    assert _post(ingest, json.dumps(orders))["statusCode"] == 503
    assert _metrics(capsys.readouterr().out) == [ingest_counts(30, stored=25, not_stored=5)]


def test_unchanged_and_refused_orders_are_counted(
    ingest: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = [{"record_id": f"r{i}", "parameter_1": "x", "parameter_2": i} for i in range(3)]
    _post(ingest, json.dumps(orders))
    client = ingest.orders_table()._client
    client.update_item(
        TableName=INGEST_TABLE,
        Key={"order_key": {"S": "desk-a#r2"}},
        UpdateExpression="SET result_status = :s REMOVE pending_shard",
        ExpressionAttributeValues={":s": {"S": "accepted"}},
    )
    capsys.readouterr()
    orders[1]["parameter_1"] = orders[2]["parameter_1"] = "changed"

    assert _post(ingest, json.dumps(orders))["statusCode"] == 409
    assert _metrics(capsys.readouterr().out) == [ingest_counts(3, stored=1, unchanged=1, refused=1)]


def ingest_counts(
    received: int, stored: int = 0, unchanged: int = 0, refused: int = 0, not_stored: int = 0
) -> dict[str, Any]:
    return {
        "OrdersReceived": received,
        "OrdersStored": stored,
        "OrdersUnchanged": unchanged,
        "OrdersRefused": refused,
        "OrdersNotStored": not_stored,
        "service": "ingest",
    }


@pytest.mark.parametrize("body", ["not json", "[]", '[{"record_id": ""}]'])
def test_a_refused_request_is_counted_as_refused(
    ingest: ModuleType, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    assert _post(ingest, body)["statusCode"] == 400
    assert _metrics(capsys.readouterr().out) == [{"RequestsRefused": 1, "service": "ingest"}]


def test_lambda_b_counts_each_outcome_and_logs_with_the_run_id(
    process: ModuleType,  # noqa: F811
    aws: dict[str, Any],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    for record_id in "abc":
        put_order(aws["dynamodb"], record_id)

    first = event(("a", "accepted"), ("b", "rejected"), ("c", "accepted"), ("ghost", "accepted"))
    assert process.handler(first, None) == counts(
        accepted=2, rejected=1, skipped=1, examples=[("b", 42)]
    )
    Fault(process.processor().results._client, "PutObject", "SlowDown", status=503)
    put_order(aws["dynamodb"], "d")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="entrix"):
        second = event(("a", "accepted"), ("d", "accepted"), run_id="run-2")
        assert process.handler(second, None) == counts(skipped=1, failed=1)

    assert _metrics(capsys.readouterr().out) == [
        {
            "ResultsAccepted": 2,
            "ResultsRejected": 1,
            "ResultsSkipped": 1,
            "ResultsFailed": 0,
            "service": "process",
        },
        {
            "ResultsAccepted": 0,
            "ResultsRejected": 0,
            "ResultsSkipped": 1,
            "ResultsFailed": 1,
            "service": "process",
        },
    ]
    run_2_lines = [r for r in caplog.records if r.name == "entrix.auction.processing"]
    assert len(run_2_lines) >= 2, "the skipped order and the failed store are both logged"
    assert {getattr(r, "correlation_id", None) for r in run_2_lines} == {"run-2"}


def _order_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str, str, str]]:
    """Lambda B's per-order lines: (record_id, owner, outcome, reason, run id), in order."""
    return [
        (r.record_id, r.owner, r.outcome, r.reason, r.correlation_id)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "entrix.handlers.process" and r.getMessage() == "order"
    ]


def test_lambda_b_logs_one_line_per_order_with_its_outcome_reason_and_run(
    process: ModuleType,  # noqa: F811
    aws: dict[str, Any],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    for record_id in "abc":
        put_order(aws["dynamodb"], record_id)
    first = event(("a", "accepted"), ("b", "rejected"), ("c", "accepted"), ("ghost", "accepted"))
    with caplog.at_level(logging.INFO, logger="entrix"):
        process.handler(first, None)
        process.handler(event(("a", "rejected"), run_id="run-2"), None)
    assert sorted(_order_lines(caplog)) == [
        ("a", OWNER, "accepted", "auction_result", "run-1"),
        ("a", OWNER, "skipped", "processed", "run-2"),
        ("b", OWNER, "rejected", "auction_result", "run-1"),
        ("c", OWNER, "accepted", "auction_result", "run-1"),
        ("ghost", OWNER, "skipped", "not_found", "run-1"),
    ]


@pytest.mark.parametrize(
    ("store", "operation", "code", "status", "result", "reason"),
    [
        ("alerts", "PublishBatch", "AuthorizationError", 403, "rejected", "alerts_unavailable"),
        ("results", "PutObject", "SlowDown", 503, "accepted", "result_store_unavailable"),
        ("orders", "UpdateItem", "InternalServerError", 500, "accepted", "order_store_unavailable"),
    ],
)
def test_lambda_b_logs_why_it_released_an_order_as_a_warning(
    process: ModuleType,  # noqa: F811
    aws: dict[str, Any],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    store: str,
    operation: str,
    code: str,
    status: int,
    result: str,
    reason: str,
) -> None:
    put_order(aws["dynamodb"], "a")
    Fault(getattr(process.processor(), store)._client, operation, code, status)
    with caplog.at_level(logging.INFO, logger="entrix"):
        assert process.handler(event(("a", result)), None)["failed"] == 1
    assert _order_lines(caplog) == [("a", OWNER, "failed", reason, "run-1")]
    (line,) = [r for r in caplog.records if r.getMessage() == "order"]
    assert line.levelno == logging.WARNING


def test_an_order_line_names_the_owner_also_of_the_simulators_orders(
    process: ModuleType,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Random mode's made-up orders belong to `#auction-simulator`, the one owner with a `#`."""
    with caplog.at_level(logging.INFO, logger="entrix"):
        process.log_order("#auction-simulator#random-1-000001", "accepted", "auction_result")
        process.log_order("desk-a#a#b", "accepted", "auction_result")
    owners = [(r.owner, r.record_id) for r in caplog.records]  # type: ignore[attr-defined]
    assert owners == [("#auction-simulator", "random-1-000001"), ("desk-a", "a#b")]
