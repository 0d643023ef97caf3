"""Alarms, the operations topic and the dashboard in the synthesized Entrix stack."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from entrix.auction.results import (
    AlertsUnavailable,
    OrderStoreUnavailable,
    ResultStoreUnavailable,
)
from infra.config import ServiceConfig
from infra.constructs.observability import (
    AUTHORIZER_REFUSAL_LOG_TEXT,
    AUTHORIZER_REFUSALS_METRIC,
    INGEST_METRICS,
    PROCESS_METRICS,
    STORE_FAULTS_METRIC,
)


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def _one(template: dict[str, Any], resource_type: str, contains: str) -> tuple[str, dict]:
    (found,) = [
        (logical_id, resource["Properties"])
        for logical_id, resource in _of_type(template, resource_type).items()
        if contains in logical_id
    ]
    return found


@pytest.fixture(scope="module")
def alarms(service_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The operations alarms; CodeDeploy's rollback alarms (GradualDeploy) notify no one and
    are tested in test_gradual_deploy.py."""
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in _of_type(service_json, "AWS::CloudWatch::Alarm").items()
        if not logical_id.startswith("GradualDeploy")
    }


@pytest.fixture(scope="module")
def ops_topic(service_json: dict[str, Any]) -> str:
    logical_id, _ = _one(service_json, "AWS::SNS::Topic", "OpsTopic")
    return logical_id


def _alarm(alarms: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [
        props for logical_id, props in alarms.items() if f"Observability{name}" in logical_id
    ]
    return found


def _ref(template: dict[str, Any], resource_type: str, contains: str) -> dict[str, str]:
    logical_id, _ = _one(template, resource_type, contains)
    return {"Ref": logical_id}


def test_the_ops_topic_is_kms_encrypted_and_tls_only(service_json: dict[str, Any]) -> None:
    _, topic = _one(service_json, "AWS::SNS::Topic", "OpsTopic")
    key_id, key = _one(service_json, "AWS::KMS::Key", "OpsKey")
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["EnableKeyRotation"] is True
    _, policy = _one(service_json, "AWS::SNS::TopicPolicy", "OpsTopic")
    (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Action"] == "sns:Publish"


def test_cloudwatch_alarms_may_publish_to_the_ops_topic_and_use_its_key(
    service_json: dict[str, Any],
) -> None:
    _, key = _one(service_json, "AWS::KMS::Key", "OpsKey")
    (grant,) = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
    ]
    # AWS's statement for encrypted alarm topics: no kms:ViaService condition.
    assert sorted(grant["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert "Condition" not in grant
    # enforce_ssl's topic policy replaces SNS's default one: it must let alarms publish.
    _, policy = _one(service_json, "AWS::SNS::TopicPolicy", "OpsTopic")
    (allow,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert ":cloudwatch:eu-west-1:" in json.dumps(allow["Condition"]["ArnLike"]["aws:SourceArn"])


def test_alarms_are_not_sent_to_the_business_alert_topic(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]], ops_topic: str
) -> None:
    alert_topic = _ref(service_json, "AWS::SNS::Topic", "AlertTopic")
    assert len(alarms) == 18
    for props in alarms.values():
        assert props["AlarmActions"] == [{"Ref": ops_topic}]
        assert props["OKActions"] == [{"Ref": ops_topic}]
        assert alert_topic not in props["AlarmActions"]


def test_every_alarm_fires_on_the_first_occurrence_and_not_on_silence(
    alarms: dict[str, dict[str, Any]],
) -> None:
    for logical_id, props in alarms.items():
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        # The oldest pending order's age alarms at the expiry warning (2 h before the 24 h TTL).
        # The history archiver's lag alarms at 6 h of the stream's 24 h.
        # The API path's cost alarms at cdk.json's dollars per hour.
        thresholds = {
            "OldestPendingOrder": 22 * 3600,
            "HistoryLag": 6 * 3600 * 1000,
            "ApiCost": ServiceConfig().cost_alarm_dollars_per_hour,
        }
        expected = next((t for name, t in thresholds.items() if name in logical_id), 1)
        assert props["Threshold"] == expected
        assert props["EvaluationPeriods"] == 1
        assert props["TreatMissingData"] == "notBreaching"
        assert props["AlarmDescription"].startswith("Entrix: ")


def test_api_5xx_alarm_counts_the_apis_server_errors(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    _, api = _one(service_json, "AWS::ApiGateway::RestApi", "IntakeApi")
    alarm = _alarm(alarms, "ApiServerErrors")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/ApiGateway",
        "5XXError",
        "Sum",
    )
    assert alarm["Dimensions"] == [{"Name": "ApiName", "Value": api["Name"]}]


@pytest.mark.parametrize(
    ("alarm_name", "function", "metric"),
    [
        ("IngestErrors", "IntakeIngest", "Errors"),
        ("IngestThrottles", "IntakeIngest", "Throttles"),
        ("CancelErrors", "IntakeCancel", "Errors"),
        ("CancelThrottles", "IntakeCancel", "Throttles"),
        ("ProcessErrors", "ResultsPipelineProcessFunction", "Errors"),
        ("KeyRotationErrors", "IntakeJwtKeyRotationFunction", "Errors"),
    ],
)
def test_function_alarms_watch_their_function(
    service_json: dict[str, Any],
    alarms: dict[str, dict[str, Any]],
    alarm_name: str,
    function: str,
    metric: str,
) -> None:
    alarm = _alarm(alarms, alarm_name)
    function_ref = _ref(service_json, "AWS::Lambda::Function", function)
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/Lambda",
        metric,
        "Sum",
    )
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": function_ref}]


@pytest.mark.parametrize(
    ("alarm_name", "metric"),
    [
        ("ExecutionsFailed", "ExecutionsFailed"),
        ("ExecutionsTimedOut", "ExecutionsTimedOut"),
        ("ExecutionsAborted", "ExecutionsAborted"),
    ],
)
def test_execution_alarms_watch_the_results_state_machine(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]], alarm_name: str, metric: str
) -> None:
    alarm = _alarm(alarms, alarm_name)
    machine = _ref(service_json, "AWS::StepFunctions::StateMachine", "ResultsPipeline")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/States",
        metric,
        "Sum",
    )
    assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": machine}]


def test_the_dead_letter_alarm_watches_the_schedules_queue(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    alarm = _alarm(alarms, "ScheduleDeadLetters")
    queue_id, _ = _one(service_json, "AWS::SQS::Queue", "ScheduleDeadLetters")
    _, rule = _one(service_json, "AWS::Events::Rule", "Schedule")
    (target,) = rule["Targets"]
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert (alarm["MetricName"], alarm["Statistic"]) == (
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
    )
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
    ]


def test_authorizer_faults_are_its_errors_minus_its_token_refusals(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    alarm = _alarm(alarms, "AuthorizerErrors")
    metrics = {query["Id"]: query for query in alarm["Metrics"]}
    (expression,) = [q for q in alarm["Metrics"] if "Expression" in q]
    assert expression["Expression"] == "FILL(errors, 0) - FILL(refusals, 0)"
    assert expression["ReturnData"] is True
    errors = metrics["errors"]["MetricStat"]["Metric"]
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [
        {
            "Name": "FunctionName",
            "Value": _ref(service_json, "AWS::Lambda::Function", "IntakeAuthorizer"),
        }
    ]
    refusals = metrics["refusals"]["MetricStat"]["Metric"]
    _, metric_filter = _one(service_json, "AWS::Logs::MetricFilter", "AuthorizerRefusals")
    (transformation,) = metric_filter["MetricTransformations"]
    assert (refusals["Namespace"], refusals["MetricName"]) == (
        transformation["MetricNamespace"],
        transformation["MetricName"],
    )
    assert refusals["MetricName"] == AUTHORIZER_REFUSALS_METRIC
    assert refusals["Namespace"] == "Entrix/Entrix", "one namespace per stack"
    assert metric_filter["FilterPattern"] == f'"{AUTHORIZER_REFUSAL_LOG_TEXT}"'
    assert metric_filter["LogGroupName"] == _ref(
        service_json, "AWS::Logs::LogGroup", "IntakeAuthorizerLogs"
    )


def test_the_authorizer_logs_the_refusal_text_the_metric_filter_counts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The filter and the handler are coupled by this text: a rewording must fail here."""
    import importlib

    monkeypatch.setenv("JWT_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:k")
    authorizer = importlib.import_module("entrix.handlers.authorizer")
    event = {"headers": {}, "methodArn": "arn:x"}  # refused before any secret is read
    with caplog.at_level(logging.INFO), pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.handler(event, None)
    assert any(AUTHORIZER_REFUSAL_LOG_TEXT in record.getMessage() for record in caplog.records)


def test_lambda_b_store_faults_are_counted_from_its_log_and_alarmed(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    """A run whose Lambda B released orders it could not store or alert still succeeds: this
    alarm shows it (Lambda B logs each such fault with the error's name)."""
    _, metric_filter = _one(service_json, "AWS::Logs::MetricFilter", "StoreFaults")
    assert metric_filter["LogGroupName"] == _ref(
        service_json, "AWS::Logs::LogGroup", "ResultsPipelineProcessFunctionLogs"
    )
    # The Python runtime logs an unhandled exception with its class name (text or JSON format).
    terms = metric_filter["FilterPattern"].split()
    assert terms == [
        f"?{ResultStoreUnavailable.__name__}",
        f"?{OrderStoreUnavailable.__name__}",
        f"?{AlertsUnavailable.__name__}",
    ]
    (transformation,) = metric_filter["MetricTransformations"]
    alarm = _alarm(alarms, "ResultStoreFaults")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        transformation["MetricNamespace"],
        STORE_FAULTS_METRIC,
        "Sum",
    )


def test_one_dashboard_shows_every_alarm_and_the_services_metrics(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    (dashboard,) = _of_type(service_json, "AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    text = "".join(part if isinstance(part, str) else json.dumps(part) for part in parts)
    for logical_id in alarms:
        assert json.dumps({"Fn::GetAtt": [logical_id, "Arn"]}) in text
    for metric in (
        '"5XXError"',
        '"4XXError"',
        '"Latency"',
        '"Throttles"',
        '"Duration"',
        '"ExecutionsSucceeded"',
        '"ExecutionsFailed"',
        '"ThrottledRequests"',
        '"ApproximateNumberOfMessagesVisible"',
        f'"{AUTHORIZER_REFUSALS_METRIC}"',
        f'"{STORE_FAULTS_METRIC}"',
        *(f'"{name}"' for name in (*INGEST_METRICS, *PROCESS_METRICS)),
    ):
        assert metric in text, metric
    for function_id in _of_type(service_json, "AWS::Lambda::Function"):
        assert json.dumps({"Ref": function_id}) in text, f"{function_id} not on the dashboard"


def test_the_dashboard_graphs_the_metrics_the_ingest_handler_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    monkeypatch.setenv("ORDERS_TABLE_NAME", "t")
    ingest = importlib.import_module("entrix.handlers.ingest")
    written = set()
    # A reply naming one order of each outcome, at each status a POST is answered with.
    refused = [{"record_id": "b", "state": "accepted"}]
    body = {o: refused if o == "refused" else ["a"] for o in ingest.OUTCOMES}
    for status in (201, 409, 503):
        written |= set(ingest._order_counts({"statusCode": status, "body": json.dumps(body)}))
    written |= set(ingest._order_counts({"statusCode": 400, "body": "{}"}))
    assert written == set(INGEST_METRICS)


def test_the_ops_topic_and_dashboard_are_stack_outputs(service_json: dict[str, Any]) -> None:
    outputs = service_json["Outputs"]
    (topic_output,) = [v for k, v in outputs.items() if "OpsTopicArn" in k]
    assert topic_output["Value"] == _ref(service_json, "AWS::SNS::Topic", "OpsTopic")
    (dashboard_output,) = [v for k, v in outputs.items() if "DashboardName" in k]
    assert dashboard_output["Value"] == _ref(service_json, "AWS::CloudWatch::Dashboard", "")


def test_the_history_archivers_lag_pages_before_the_stream_forgets(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    (lag,) = [props for logical_id, props in alarms.items() if "HistoryLag" in logical_id]
    assert (lag["Namespace"], lag["MetricName"], lag["Statistic"]) == (
        "AWS/Lambda",
        "IteratorAge",
        "Maximum",
    )
    (archiver,) = [
        logical_id
        for logical_id, resource in service_json["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"].get("Handler") == "entrix.handlers.archive.handler"
    ]
    assert lag["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": archiver}}]


def test_the_cost_alarm_prices_both_tables_indexes_and_api_requests_per_hour(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    """The expression, evaluated on an hour's sums, is the dollars those units cost: a
    1,000-order POST a second for an hour (each new order one write to the table and one to
    each index; three usage writes per request) is about 6.8 dollars of writes."""
    alarm = _alarm(alarms, "ApiCost")
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["ReturnData"] is True
    metrics = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert all(stat["Period"] == 3600 and stat["Stat"] == "Sum" for stat in metrics.values())
    tables = {
        "orders": _ref(service_json, "AWS::DynamoDB::Table", "IntakeOrders"),
        "usage": _ref(service_json, "AWS::DynamoDB::Table", "IntakeClientUsage"),
    }
    watched = set()
    for stat in metrics.values():
        metric = stat["Metric"]
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        if metric["Namespace"] == "AWS/ApiGateway":
            assert metric["MetricName"] == "Count"
            watched.add("api")
            continue
        assert metric["Namespace"] == "AWS/DynamoDB"
        (table,) = [name for name, ref in tables.items() if dimensions["TableName"] == ref]
        index = dimensions.get("GlobalSecondaryIndexName", "")
        watched.add((table, index, metric["MetricName"]))
    assert watched == {
        "api",
        *(
            (table, index, f"Consumed{units}CapacityUnits")
            for table, index in (
                ("orders", ""),
                ("orders", "pending-results"),
                ("orders", "owner-orders"),
                ("usage", ""),
            )
            for units in ("Write", "Read")
        ),
    }

    hour = 3600
    sums = {name: 0.0 for name in metrics}
    for name, stat in metrics.items():
        metric = stat["Metric"]
        if metric["MetricName"] == "ConsumedWriteCapacityUnits":
            is_usage = any(d["Value"] == tables["usage"] for d in metric["Dimensions"])
            sums[name] = hour * (3 if is_usage else 1000)
        elif metric["MetricName"] == "Count":
            sums[name] = hour
    text = expression["Expression"]
    # CloudWatch metric math has no exponent notation: 6.25e-07 would read `e` as an identifier.
    assert not re.search(r"\d[eE][-+]?\d", text), text
    for name, value in sums.items():
        text = text.replace(f"FILL({name}, 0)", repr(value))
    dollars = eval(text)  # only numbers and + * ( ) are left
    writes = hour * (3 * 1000 + 3)
    assert dollars == pytest.approx(writes * 0.625e-6 + hour * 3.5e-6)
