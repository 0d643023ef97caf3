"""Alarms, the operations topic and the dashboard in the synthesized Entrix stack."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from entrix.auction.outcomes import OUTCOMES
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
    NEVER_READY_METRIC,
    NEVER_READY_STATE,
    OLDEST_PENDING_METRIC,
    PROCESS_METRICS,
    STORE_FAULTS_METRIC,
)
from infra.constructs.results_workflow import NOT_READY_ERROR


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
        if logical_id.startswith(
            "Observability"
        )  # not the verification probe's, nor the rollback alarms
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


def test_every_alarm_notifies_the_ops_topic_only(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]], ops_topic: str
) -> None:
    """Every alarm is a fault of the service, for operations: the business events (results
    never ready, orders close to expiry, rejections) reach the trading team's alert topic from
    the pipeline itself, never from an alarm."""
    topics = set(_of_type(service_json, "AWS::SNS::Topic"))
    assert ops_topic in topics and len(topics) > 1, "the alert topic is in the template too"
    assert alarms
    for logical_id, props in alarms.items():
        assert props["AlarmActions"] == [{"Ref": ops_topic}], logical_id
        assert props["OKActions"] == [{"Ref": ops_topic}], logical_id
        assert "InsufficientDataActions" not in props, logical_id
        named = re.findall(r'"Ref": "([^"]+)"', json.dumps(props))
        assert not (set(named) & topics) - {ops_topic}, f"{logical_id} names another topic"


# Each alarm's decision: (datapoints to alarm, of evaluation periods), missing data, and its
# comparison. An alarm missing here fails: a new alarm needs its own decision.
GTE = "GreaterThanOrEqualToThreshold"
DECISIONS = {
    "OldestPendingOrder": ((2, 3), "breaching", GTE),
    "NoSuccessfulRun": ((12, 12), "breaching", "LessThanThreshold"),
    "ApiServerErrors": ((2, 3), "notBreaching", GTE),
    "AuthorizerErrors": ((2, 3), "notBreaching", GTE),
    "IngestErrors": ((2, 3), "notBreaching", GTE),
    "IngestThrottles": ((2, 3), "notBreaching", GTE),
    "CancelErrors": ((2, 3), "notBreaching", GTE),
    "CancelThrottles": ((2, 3), "notBreaching", GTE),
    "KeyRotationErrors": ((1, 1), "notBreaching", GTE),
    "ExecutionsFailed": ((2, 3), "notBreaching", GTE),
    "ExecutionsTimedOut": ((1, 1), "notBreaching", GTE),
    "ExecutionsAborted": ((1, 1), "notBreaching", GTE),
    "ProcessErrors": ((2, 3), "notBreaching", GTE),
    "ResultStoreFaults": ((2, 3), "notBreaching", GTE),
    "ScheduleDeadLetters": ((1, 1), "notBreaching", GTE),
    "HistoryDeadLetters": ((1, 1), "notBreaching", GTE),
    "HistoryErrors": ((2, 3), "notBreaching", GTE),
    "HistoryLag": ((1, 1), "notBreaching", GTE),
    "ApiCost": ((1, 1), "notBreaching", GTE),
    "SlackErrors": ((2, 3), "notBreaching", GTE),
    "SlackDeadLetters": ((1, 1), "notBreaching", GTE),
}


def _name(logical_id: str) -> str:
    (name,) = [name for name in DECISIONS if logical_id.startswith(f"Observability{name}")]
    return name


def test_each_alarm_has_its_own_datapoints_and_missing_data_decision(
    alarms: dict[str, dict[str, Any]],
) -> None:
    """Only the two alarms on orders not moving treat silence as trouble; a self-healing fault
    (a retried request, a released order) pages after two of three periods, a level or a rare
    event (dead letters, a timed-out run, a rotation) at the first."""
    for logical_id, props in alarms.items():
        (m, n), missing, comparison = DECISIONS[_name(logical_id)]
        assert (props["DatapointsToAlarm"], props["EvaluationPeriods"]) == (m, n), logical_id
        assert props["TreatMissingData"] == missing, logical_id
        assert props["ComparisonOperator"] == comparison, logical_id
        assert props["AlarmDescription"].startswith("Entrix: ")
        # The history archiver's lag alarms at 6 h of the stream's 24 h; the API path's cost at
        # cdk.json's dollars per hour; the oldest pending order at cdk.json's minutes.
        thresholds = {
            "OldestPendingOrder": ServiceConfig().oldest_pending_alarm_minutes * 60,
            "HistoryLag": 6 * 3600 * 1000,
            "ApiCost": ServiceConfig().cost_alarm_dollars_per_hour,
        }
        assert props["Threshold"] == thresholds.get(_name(logical_id), 1), logical_id


def test_the_oldest_pending_order_alarm_watches_lambda_as_measurement_well_before_the_ttl(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    alarm = _alarm(alarms, "OldestPendingOrder")
    results = _ref(service_json, "AWS::Lambda::Function", "ResultsPipelineResultsFunction")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "Entrix",
        OLDEST_PENDING_METRIC,
        "Maximum",
    )
    assert sorted(alarm["Dimensions"], key=lambda d: d["Name"]) == [
        {"Name": "function", "Value": results},
        {"Name": "service", "Value": "results"},
    ]
    # Within the hour by default, far from the trading team's expiry alert (22 h).
    assert alarm["Threshold"] <= 3600 < ServiceConfig().expiry_warning_seconds * 11
    # Silence for two of three 5-minute periods (no poll) is trouble, not calm.
    assert alarm["Period"] == 300
    assert alarm["TreatMissingData"] == "breaching"


def test_no_run_succeeded_or_ended_never_ready_for_the_configured_window_alarms(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    """Runs that end never ready are the trading team's business event: they count like a
    success. A period without a success is 0 succeeded; a period in which no run logged
    anything has no never-ready count (the filter's 0 needs a log event), so the sum is
    missing and breaches: none started is still trouble."""
    alarm = _alarm(alarms, "NoSuccessfulRun")
    machine = _ref(service_json, "AWS::StepFunctions::StateMachine", "ResultsPipeline")
    (expression,) = [q for q in alarm["Metrics"] if "Expression" in q]
    assert expression["Expression"] == "FILL(succeeded, 0) + never_ready"
    assert expression["ReturnData"] is not False
    queries = {q["Id"]: q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q}
    assert set(queries) == {"succeeded", "never_ready"}
    succeeded = queries["succeeded"]
    assert (succeeded["Metric"]["Namespace"], succeeded["Metric"]["MetricName"]) == (
        "AWS/States",
        "ExecutionsSucceeded",
    )
    assert succeeded["Metric"]["Dimensions"] == [{"Name": "StateMachineArn", "Value": machine}]
    assert succeeded["Stat"] == "Sum"
    _, metric_filter = _one(service_json, "AWS::Logs::MetricFilter", "NeverReady")
    (transformation,) = metric_filter["MetricTransformations"]
    assert transformation["DefaultValue"] == 0
    assert queries["never_ready"]["Metric"] == {
        "Namespace": transformation["MetricNamespace"],
        "MetricName": NEVER_READY_METRIC,
    }
    assert queries["never_ready"]["Stat"] == "Sum"
    # Every period of the window without either (none started: no data) breaches.
    periods = {q["Period"] for q in queries.values()}
    assert periods == {300}
    assert 300 * alarm["EvaluationPeriods"] == ServiceConfig().no_successful_run_alarm_minutes * 60
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"]
    assert alarm["TreatMissingData"] == "breaching"


def test_runs_never_ready_do_not_page_operations(
    service_json: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    """A run the auction platform never answered ends in NEVER_READY_STATE after the state
    machine alerted the trading team; the failed-runs alarm subtracts those runs, counted from
    the state machine's own log."""
    (machine,) = _of_type(service_json, "AWS::StepFunctions::StateMachine").values()
    definition = "".join(
        part if isinstance(part, str) else json.dumps(part)
        for part in machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    )
    fail_state = f'"{NEVER_READY_STATE}":{{"Type":"Fail","Error":"{NOT_READY_ERROR}"'
    assert fail_state in definition
    _, metric_filter = _one(service_json, "AWS::Logs::MetricFilter", "NeverReady")
    log_config = machine["Properties"]["LoggingConfiguration"]
    (destination,) = log_config["Destinations"]
    assert metric_filter["LogGroupName"] == {
        "Ref": destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    }
    assert log_config["Level"] == "ALL", "FailStateEntered events are logged"
    assert metric_filter["FilterPattern"] == (
        f'{{ ($.type = "FailStateEntered") && ($.details.name = "{NEVER_READY_STATE}") }}'
    )
    (transformation,) = metric_filter["MetricTransformations"]
    assert transformation["MetricName"] == NEVER_READY_METRIC

    alarm = _alarm(alarms, "ExecutionsFailed")
    (expression,) = [q for q in alarm["Metrics"] if "Expression" in q]
    assert expression["Expression"] == "FILL(failed, 0) - FILL(never_ready, 0)"
    metrics = {q["Id"]: q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q}
    assert (metrics["failed"]["Namespace"], metrics["failed"]["MetricName"]) == (
        "AWS/States",
        "ExecutionsFailed",
    )
    assert metrics["never_ready"]["MetricName"] == NEVER_READY_METRIC
    assert metrics["never_ready"]["Namespace"] == transformation["MetricNamespace"]


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
    service_json: dict[str, Any],
) -> None:
    """Every alarm of the stack, the rollback alarms and the verification probe's included."""
    (dashboard,) = _of_type(service_json, "AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    text = "".join(part if isinstance(part, str) else json.dumps(part) for part in parts)
    every_alarm = _of_type(service_json, "AWS::CloudWatch::Alarm")
    assert any(logical_id.startswith("GradualDeploy") for logical_id in every_alarm)
    assert any(logical_id.startswith("VerificationProbe") for logical_id in every_alarm)
    for logical_id in every_alarm:
        assert json.dumps({"Fn::GetAtt": [logical_id, "Arn"]}) in text, logical_id
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
        f'"{NEVER_READY_METRIC}"',
        f'"{OLDEST_PENDING_METRIC}"',
        *(f'"{name}"' for name in (*INGEST_METRICS, *PROCESS_METRICS)),
    ):
        assert metric in text, metric
    for function_id in _of_type(service_json, "AWS::Lambda::Function"):
        assert json.dumps({"Ref": function_id}) in text, f"{function_id} not on the dashboard"


def test_the_dashboard_graphs_every_outcome_lambda_b_counts() -> None:
    assert tuple(f"Results{outcome.capitalize()}" for outcome in OUTCOMES) == PROCESS_METRICS


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
