"""The history archive in the service template: the table's stream, the archiver's mapping,
its dead-letter queue and alarm, its narrow role, and the history/ lifecycle rule."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.test_results_pipeline import _actions, _policy_statements, one, resources


def test_the_orders_table_streams_new_and_old_images(service_json: dict[str, Any]) -> None:
    table = one(service_json, "AWS::DynamoDB::Table", "Orders")
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_the_mapping_retries_splits_reports_item_failures_and_keeps_what_fails(
    service_json: dict[str, Any],
) -> None:
    (mapping,) = resources(service_json, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert "StreamArn" in json.dumps(props["EventSourceArn"])
    assert "HistoryArchiveFunction" in json.dumps(props["FunctionName"])
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert (props["BatchSize"], props["MaximumBatchingWindowInSeconds"]) == (1000, 30)
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == 10
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    destination = json.dumps(props["DestinationConfig"]["OnFailure"]["Destination"])
    assert "ArchiveDeadLetters" in destination
    (alarm,) = [
        a["Properties"]
        for logical_id, a in resources(service_json, "AWS::CloudWatch::Alarm").items()
        if "HistoryDeadLetters" in logical_id
    ]
    assert "ArchiveDeadLetters" in json.dumps(alarm["Dimensions"])


def test_the_archiver_may_only_read_the_stream_and_put_history(
    service_json: dict[str, Any],
) -> None:
    statements = _policy_statements(service_json, "ArchiveFunctionRole")
    actions = _actions(statements) - {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    assert {a for a in actions if not a.startswith(("sqs:", "logs:"))} == {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "s3:PutObject",
    }
    (put,) = [s for s in statements if s["Action"] == "s3:PutObject"]
    assert json.dumps(put["Resource"]).endswith('"/history/*"]]}')
    assert {a for a in actions if a.startswith("sqs:")} <= {
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }


def test_history_expires_after_its_retention(service_json: dict[str, Any]) -> None:
    bucket = one(service_json, "AWS::S3::Bucket", "PipelineResults")
    (rule,) = [
        r for r in bucket["LifecycleConfiguration"]["Rules"] if r["Id"] == "expire-order-history"
    ]
    assert (rule["Prefix"], rule["ExpirationInDays"]) == ("history/", 400)
