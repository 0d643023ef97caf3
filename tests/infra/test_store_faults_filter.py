"""The store-faults alarm counts Lambda B's log lines that match its metric filter: each fault
Lambda B survives (an S3 put, an alert publish, a DynamoDB claim or record refused below its
client's retries) must log a line the synthesized filter matches, or rewording a log line would
silence the alarm with every other test green."""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import pytest

from tests.support.inject import Fault
from tests.support.moto_orders import put_order
from tests.unit.test_process_handler import aws, counts, event, process  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def filter_terms(service_json: dict[str, Any]) -> list[str]:
    """The StoreFaults metric filter's terms: `?a ?b` matches an event containing a or b."""
    (metric_filter,) = [
        resource["Properties"]
        for logical_id, resource in service_json["Resources"].items()
        if resource["Type"] == "AWS::Logs::MetricFilter" and "StoreFaults" in logical_id
    ]
    terms = metric_filter["FilterPattern"].split()
    assert terms and all(term.startswith("?") for term in terms), terms
    return [term[1:] for term in terms]


def matching(caplog: pytest.LogCaptureFixture, terms: list[str]) -> list[str]:
    """Lambda B's log lines, as its log group receives them, that the filter counts."""
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("entrix")]
    return [line for line in lines if any(term in line for term in terms)]


def run(lambda_b: ModuleType, caplog: pytest.LogCaptureFixture, batch: dict[str, Any]) -> Any:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="entrix"):
        return lambda_b.handler(batch, None)


def test_a_batch_without_faults_logs_nothing_the_filter_counts(
    process: ModuleType,  # noqa: F811
    aws: dict,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    filter_terms: list[str],
) -> None:
    put_order(aws["dynamodb"], "a")
    put_order(aws["dynamodb"], "b")
    assert run(process, caplog, event(("a", "accepted"), ("b", "rejected"))) == counts(
        1, 1, examples=[("b", 42)]
    )
    assert matching(caplog, filter_terms) == []


@pytest.mark.parametrize(
    ("service", "operation", "code"),
    [
        ("results", "PutObject", "InternalError"),
        ("alerts", "PublishBatch", "AuthorizationError"),
        ("orders", "UpdateItem", "AccessDeniedException"),
    ],
)
def test_every_fault_lambda_b_survives_logs_a_line_the_filter_counts(
    process: ModuleType,  # noqa: F811
    aws: dict,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    filter_terms: list[str],
    service: str,
    operation: str,
    code: str,
) -> None:
    put_order(aws["dynamodb"], "a")
    put_order(aws["dynamodb"], "b")
    store = getattr(process.processor(), service)
    Fault(store._client, operation, code, status=500 if code == "InternalError" else 403)

    outcome = run(process, caplog, event(("a", "accepted"), ("b", "rejected")))

    assert outcome["failed"] >= 1, outcome
    assert matching(caplog, filter_terms), [r.getMessage() for r in caplog.records]
