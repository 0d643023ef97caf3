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


# The mapping's logical id in each stack before the `live` alias (5f33655): a new id makes
# CloudFormation replace the mapping, and the new one re-reads the stream's last 24 h.
_MAPPING_IDS = {
    "Entrix": "HistoryArchiveFunctionDynamoDBEventSourceEntrixIntakeOrdersB6580EEFEF32D9DC",
    "EntrixDeliveryDevEntrix9FDEC090": "HistoryArchiveFunctionDynamoDBEventSource"
    "EntrixDeliveryDevEntrixIntakeOrdersF67A5CDD0B31991A",
    "EntrixDeliveryProdEntrix330FB209": "HistoryArchiveFunctionDynamoDBEventSource"
    "EntrixDeliveryProdEntrixIntakeOrders6E2E43592320F0B4",
}


def test_the_mapping_keeps_its_logical_id_and_invokes_the_live_alias(
    nag_templates: dict[str, dict[str, Any]],
) -> None:
    """Moving the mapping onto the alias is an in-place FunctionName update, so the stream
    position is kept: no replacement, no re-read of the last 24 h, no HistoryLag page."""
    for stack, logical_id in _MAPPING_IDS.items():
        mappings = resources(nag_templates[stack], "AWS::Lambda::EventSourceMapping")
        assert list(mappings) == [logical_id], stack
        function_name = json.dumps(mappings[logical_id]["Properties"]["FunctionName"])
        assert "HistoryArchiveFunctionAliaslive" in function_name, stack


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
