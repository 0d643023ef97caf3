"""The results pipeline in the synthesized Entrix stack: resources, permissions, cdk-nag, ASL."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from entrix import settings
from entrix.local.template import PseudoParameters, Resolver, Template
from infra.app import cdk_json_context
from infra.constructs.lambda_code import LIVE_ALIAS

STACK = "Entrix"
STATELINT = Path(sys.executable).parent / "statelint"


def _synth(outdir: Path, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The service stack as `cdk synth` builds it, with the AwsSolutions checks enforced."""
    from aws_cdk import App

    from infra.config import ServiceConfig
    from infra.nag import add_checks
    from infra.stacks.service import ServiceStack

    app = App(
        context={**cdk_json_context(), "aws:cdk:bundling-stacks": [], **(context or {})},
        outdir=str(outdir),
    )
    ServiceStack(app, STACK, config=ServiceConfig.from_context(app.node))
    add_checks(app)
    template: dict[str, Any] = app.synth().get_stack_by_name(STACK).template
    return template


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _synth(tmp_path_factory.mktemp("cdk.out"))


def resources(template: dict[str, Any], resource_type: str, contains: str = "") -> dict:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type and contains in logical_id
    }


def one(template: dict[str, Any], resource_type: str, contains: str = "") -> dict[str, Any]:
    (found,) = resources(template, resource_type, contains).values()
    return dict(found["Properties"])


def logical_id(template: dict[str, Any], resource_type: str, contains: str) -> str:
    (found,) = resources(template, resource_type, contains)
    return str(found)


@pytest.fixture(scope="module")
def asl(template: dict[str, Any]) -> dict[str, Any]:
    """The exact state machine definition, with local names for the functions, topic and bucket."""
    parsed = Template.from_dict(template)
    resolver = Resolver(parsed, PseudoParameters(region="eu-west-1"))
    for resource in parsed.of_type("AWS::Lambda::Function"):
        resolver.set_attribute(
            resource.logical_id,
            "Arn",
            f"arn:aws:lambda:eu-west-1:123456789012:function:{resource.logical_id}",
        )
    # The tasks name each function's alias: its ARN is the function's, qualified.
    for resource in parsed.of_type("AWS::Lambda::Alias"):
        function, alias = resource.properties["FunctionName"]["Ref"], resource.properties["Name"]
        resolver.set_ref(
            resource.logical_id,
            f"arn:aws:lambda:eu-west-1:123456789012:function:{function}:{alias}",
        )
    for resource in parsed.of_type("AWS::SNS::Topic"):
        resolver.set_ref(
            resource.logical_id, f"arn:aws:sns:eu-west-1:123456789012:{resource.logical_id}"
        )
    for resource in parsed.of_type("AWS::S3::Bucket"):
        resolver.set_ref(resource.logical_id, f"order-results-{resource.logical_id.lower()}")
    (machine,) = parsed.of_type("AWS::StepFunctions::StateMachine")
    definition: dict[str, Any] = json.loads(
        resolver.resolve(machine.properties["DefinitionString"])
    )
    return definition


def _policy_statements(template: dict[str, Any], role_contains: str) -> list[dict[str, Any]]:
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        roles = policy["Properties"]["Roles"]
        if any(role_contains in json.dumps(role) for role in roles):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found


# --- resources -------------------------------------------------------------------------------


def test_results_bucket_is_private_encrypted_tls_only_logged_with_a_lifecycle(template) -> None:
    bucket = one(template, "AWS::S3::Bucket", "PipelineResults")
    name = json.dumps(bucket["BucketName"])
    assert "order-results-" in name and "AWS::AccountId" in name and "AWS::Region" in name
    assert (
        bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        == "AES256"
    )
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["LoggingConfiguration"]["DestinationBucketName"]["Ref"] == logical_id(
        template, "AWS::S3::Bucket", "AccessLogs"
    )
    rules = {rule["Prefix"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert set(rules) == {"results/", "rejections/", "batches/", "history/"}
    assert rules["history/"]["ExpirationInDays"] == 400
    # A run's digest points at its rejections/: they live as long as its results.
    for prefix in ("results/", "rejections/"):
        rule = rules[prefix]
        assert rule["Status"] == "Enabled"
        assert rule["ExpirationInDays"] == 365
        assert rule["Transitions"] == [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    batches_rule = rules["batches/"]
    assert batches_rule["ExpirationInDays"] == 7

    policy = json.dumps(one(template, "AWS::S3::BucketPolicy", "PipelineResults"))
    assert '"aws:SecureTransport": "false"' in policy and '"Effect": "Deny"' in policy


def test_alert_topic_is_kms_encrypted_and_tls_only(template) -> None:
    topic = one(template, "AWS::SNS::Topic", "AlertTopic")
    assert topic["KmsMasterKeyId"]["Fn::GetAtt"][0] == logical_id(
        template, "AWS::KMS::Key", "AlertKey"
    )
    assert one(template, "AWS::KMS::Key", "AlertKey")["EnableKeyRotation"] is True
    policy = json.dumps(one(template, "AWS::SNS::TopicPolicy", "AlertTopic"))
    assert '"aws:SecureTransport": "false"' in policy and '"Effect": "Deny"' in policy


def test_orders_table_gets_the_pending_index(template) -> None:
    table = one(template, "AWS::DynamoDB::Table", "Orders")
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    index = indexes["pending-results"]
    assert index["KeySchema"] == [
        {"AttributeName": "pending_shard", "KeyType": "HASH"},
        {"AttributeName": "version", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}, "Lambda A reads keys only"


def test_functions_run_the_handlers_with_their_environment(template) -> None:
    functions = {
        f["Properties"]["Handler"]: f["Properties"]
        for f in resources(template, "AWS::Lambda::Function").values()
    }
    results = functions["entrix.handlers.results.handler"]
    process = functions["entrix.handlers.process.handler"]
    summary = functions["entrix.handlers.run_summary.handler"]
    assert "entrix.handlers.slack.handler" not in functions, "Slack is off unless configured"
    for function in (results, process, summary):
        assert function["Runtime"] == "python3.13"
        assert function["Architectures"] == ["arm64"]
    assert set(results["Environment"]["Variables"]) == {
        "ORDERS_TABLE_NAME",
        "ORDERS_PENDING_INDEX_NAME",
        "RESULTS_READY_PROBABILITY",
        "AUCTION_MODE",
        "RANDOM_ORDER_COUNT",
        "RESULTS_BUCKET_NAME",
        "MAX_ORDERS_PER_RUN",
        "BATCH_MAX_ORDERS",
        "ALERT_TOPIC_ARN",
        "EXPIRY_WARNING_SECONDS",
    }
    assert results["Environment"]["Variables"]["EXPIRY_WARNING_SECONDS"] == "7200"
    assert results["Environment"]["Variables"]["AUCTION_MODE"] == "orders"
    assert results["Environment"]["Variables"]["BATCH_MAX_ORDERS"] == "1000"
    assert results["Environment"]["Variables"]["MAX_ORDERS_PER_RUN"] == "200000"
    variables = process["Environment"]["Variables"]
    assert set(variables) == {
        "ORDERS_TABLE_NAME",
        "RESULTS_BUCKET_NAME",
        "ALERT_TOPIC_ARN",
        "RESULT_LEASE_SECONDS",
    }
    assert variables["RESULT_LEASE_SECONDS"] == "1800"
    assert "Layers" not in summary, "standard library only"
    # The digest names where the run's rejections are; the function reads nothing there.
    assert summary["Environment"]["Variables"] == {
        "RESULTS_BUCKET_NAME": {"Ref": logical_id(template, "AWS::S3::Bucket", "PipelineResults")}
    }
    reads = _actions(_policy_statements(template, "RunSummaryFunctionRole"))
    assert not {action for action in reads if action.startswith(("s3:", "sns:"))}


def test_lambda_a_may_only_query_the_pending_index_put_batches_and_alert(template) -> None:
    statements = _policy_statements(template, "ResultsFunctionRole")
    dynamodb = [s for s in statements if any(a.startswith("dynamodb:") for a in _actions([s]))]
    assert _actions(dynamodb) == {"dynamodb:Query"}
    assert "/index/pending-results" in json.dumps(dynamodb)
    (put,) = [s for s in statements if s["Action"] == "s3:PutObject"]
    assert json.dumps(put["Resource"]).endswith('"/batches/*"]]}')
    # The `expiring` alert: publish to the alert topic only.
    (publish,) = [s for s in statements if any(a.startswith("sns:") for a in _actions([s]))]
    assert publish["Action"] == "sns:Publish"
    assert "AlertTopic" in json.dumps(publish["Resource"])


def test_lambda_b_may_only_read_and_update_orders_read_and_put_its_objects_and_publish(
    template,
) -> None:
    statements = _policy_statements(template, "ProcessFunctionRole")
    actions = _actions(statements)
    assert {a for a in actions if a.startswith(("dynamodb:", "s3:", "sns:"))} == {
        "dynamodb:UpdateItem",
        "dynamodb:BatchGetItem",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        "sns:Publish",
    }
    # Without ListBucket, S3 answers a read of a key not written yet (every batch's first
    # write reads its key) with 403 instead of 404, and no batch could be stored.
    (listing,) = [s for s in statements if "s3:ListBucket" in _actions([s])]
    assert _actions([listing]) == {"s3:ListBucket"}
    (bucket,) = [
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::S3::Bucket" and name.startswith("ResultsPipelineResults")
    ]
    assert listing["Resource"] == {"Fn::GetAtt": [bucket, "Arn"]}
    (objects,) = [s for s in statements if "s3:PutObject" in _actions([s])]
    assert _actions([objects]) == {"s3:GetObject", "s3:PutObject"}
    resources = sorted(json.dumps(resource) for resource in objects["Resource"])
    assert [r.rpartition(",")[2] for r in resources] == [' "/rejections/*"]]}', ' "/results/*"]]}']
    (publish,) = [s for s in statements if s["Action"] == "sns:Publish"]
    assert publish["Resource"] == {"Ref": logical_id(template, "AWS::SNS::Topic", "AlertTopic")}
    (key_use,) = [s for s in statements if "kms:Decrypt" in _actions([s])]
    assert key_use["Resource"]["Fn::GetAtt"][0] == logical_id(template, "AWS::KMS::Key", "AlertKey")


def test_state_machine_is_standard_traced_and_logged(template) -> None:
    machine = one(template, "AWS::StepFunctions::StateMachine")
    assert machine["StateMachineType"] == "STANDARD"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"


def test_schedule_starts_the_state_machine_every_5_minutes_with_retries_and_a_dlq(
    template,
) -> None:
    rule = one(template, "AWS::Events::Rule", "Schedule")
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    (target,) = rule["Targets"]
    assert target["Arn"]["Ref"] == logical_id(
        template, "AWS::StepFunctions::StateMachine", "StateMachine"
    )
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 4}
    dlq = logical_id(template, "AWS::SQS::Queue", "ScheduleDeadLetters")
    assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] == dlq
    assert one(template, "AWS::SQS::Queue", "ScheduleDeadLetters")["SqsManagedSseEnabled"] is True


def test_outputs_name_the_bucket_topic_and_state_machine(template) -> None:
    assert {"ResultsBucketName", "AlertTopicArn", "ResultsStateMachineArn"} <= set(
        template["Outputs"]
    )


def _acknowledged(template: dict[str, Any], logical_id: str) -> dict[str, str]:
    rules = template["Resources"][logical_id].get("Metadata", {}).get("cdk_nag", {})
    return {rule["id"]: rule["reason"] for rule in rules.get("rules_to_suppress", [])}


def test_each_cdk_nag_finding_is_acknowledged_individually_with_a_reason(template) -> None:
    # Synthesis raises ValidationFailed on any open finding; these are the accepted ones, each
    # recorded in the template with its reason.
    bucket = logical_id(template, "AWS::S3::Bucket", "PipelineResults")
    expected = {
        logical_id(template, "AWS::IAM::Policy", "StateMachineRoleDefaultPolicy"): {
            "AwsSolutions-IAM5[Resource::*]",
        },
        logical_id(template, "AWS::IAM::Policy", "ProcessFunctionRoleDefaultPolicy"): {
            f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/results/*]",
            f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/rejections/*]",
        },
        logical_id(template, "AWS::S3::Bucket", "AccessLogs"): {"AwsSolutions-S1"},
        logical_id(template, "AWS::SQS::Queue", "ScheduleDeadLetters"): {"AwsSolutions-SQS3"},
    }
    for resource_id, findings in expected.items():
        acknowledged = _acknowledged(template, resource_id)
        assert findings <= set(acknowledged), resource_id
        assert all(len(acknowledged[finding]) > 40 for finding in findings)


def test_slack_subscriber_is_deployed_only_when_configured(configured: dict[str, Any]) -> None:
    """Deployed in the configured stack; the default one has none (see
    test_functions_run_the_handlers_with_their_environment)."""
    (slack,) = [
        f["Properties"]
        for f in resources(configured, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "entrix.handlers.slack.handler"
    ]
    assert slack["Environment"]["Variables"] == {
        "SLACK_WEBHOOK_SECRET_ARN": SLACK_SECRET,
        "SECRET_CACHE_TTL_SECONDS": settings.SECRET_CACHE_TTL_SECONDS.text(),
        "SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP": "False",  # deployed: https:// only
    }
    subscription = one(configured, "AWS::SNS::Subscription")
    assert subscription["Protocol"] == "lambda"
    # Every message but the per-order rejections, which are for clients' own subscriptions.
    assert subscription["FilterPolicy"] == {"status": [{"anything-but": ["rejected"]}]}
    assert subscription.get("FilterPolicyScope", "MessageAttributes") == "MessageAttributes"
    reads = _policy_statements(configured, "SlackFunctionRole")
    assert "secretsmanager:GetSecretValue" in _actions(reads)
    assert SLACK_SECRET in json.dumps(reads)


def test_alerts_slack_never_took_go_to_an_encrypted_tls_only_queue(
    configured: dict[str, Any],
) -> None:
    """SNS invokes the forwarder asynchronously: Lambda retries a failed event twice, then sends
    it to the on-failure destination, an SSE-SQS, TLS-only queue the function's role may send
    to; the function has time to wait out a few of Slack's Retry-After answers."""
    function_id = logical_id(configured, "AWS::Lambda::Function", "SlackFunction")
    assert one(configured, "AWS::Lambda::Function", "SlackFunction")["Timeout"] == 60
    queue_id = logical_id(configured, "AWS::SQS::Queue", "SlackDeadLetters")
    queue = one(configured, "AWS::SQS::Queue", "SlackDeadLetters")
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    invoke = one(configured, "AWS::Lambda::EventInvokeConfig")
    assert invoke["FunctionName"] == {"Ref": function_id}
    assert invoke["MaximumRetryAttempts"] == 2
    assert invoke["MaximumEventAgeInSeconds"] == 6 * 3600
    assert invoke["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}
    }
    (policy,) = resources(configured, "AWS::SQS::QueuePolicy", "SlackDeadLetters").values()
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    sends = [
        statement
        for statement in _policy_statements(configured, "SlackFunctionRole")
        if "sqs:SendMessage" in _actions([statement])
    ]
    assert [statement["Resource"] for statement in sends] == [{"Fn::GetAtt": [queue_id, "Arn"]}]
    assert "AwsSolutions-SQS3" in _acknowledged(configured, queue_id)


def test_operations_hear_of_the_forwarders_errors_and_dead_letters(
    configured: dict[str, Any],
) -> None:
    alarms = {
        name: alarm["Properties"]
        for name, alarm in resources(configured, "AWS::CloudWatch::Alarm").items()
    }
    ops_topic = {"Ref": logical_id(configured, "AWS::SNS::Topic", "OpsTopic")}
    (errors,) = [props for name, props in alarms.items() if "ObservabilitySlackErrors" in name]
    (letters,) = [
        props for name, props in alarms.items() if "ObservabilitySlackDeadLetters" in name
    ]
    function = {"Ref": logical_id(configured, "AWS::Lambda::Function", "SlackFunction")}
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": function}]
    queue_id = logical_id(configured, "AWS::SQS::Queue", "SlackDeadLetters")
    assert (letters["MetricName"], letters["Statistic"]) == (
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
    )
    assert letters["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
    ]
    for alarm in (errors, letters):
        assert alarm["Threshold"] == 1 and alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [ops_topic] and alarm["OKActions"] == [ops_topic]


SLACK_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:slack-webhook-AbCdEf"


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every pipeline setting changed, as `cdk synth -c key=value` passes them (strings)."""
    return _synth(
        tmp_path_factory.mktemp("configured"),
        {
            "entrix:results_bucket_prefix": "acme-auction",
            "entrix:results_retention_days": "90",
            "entrix:results_transition_days": "45",
            "entrix:results_ready_probability": "0.9",
            "entrix:auction_mode": "random",
            "entrix:random_order_count": "250",
            "entrix:results_poll_seconds": "5",
            "entrix:results_max_polls": "4",
            "entrix:results_timeout_minutes": "10",
            "entrix:results_max_concurrency": "3",
            "entrix:results_batch_max_orders": "500",
            "entrix:results_max_orders_per_run": "50000",
            "entrix:slack_webhook_secret_arn": SLACK_SECRET,
        },
    )


def test_settings_reach_the_template(configured: dict[str, Any]) -> None:
    bucket = one(configured, "AWS::S3::Bucket", "PipelineResults")
    assert "acme-auction-" in json.dumps(bucket["BucketName"])
    rules = {rule["Prefix"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    for prefix in ("results/", "rejections/"):
        assert rules[prefix]["ExpirationInDays"] == 90
        assert rules[prefix]["Transitions"] == [
            {"StorageClass": "STANDARD_IA", "TransitionInDays": 45}
        ]
    assert rules["batches/"]["ExpirationInDays"] == 7
    functions = {
        f["Properties"]["Handler"]: f["Properties"]
        for f in resources(configured, "AWS::Lambda::Function").values()
    }
    variables = functions["entrix.handlers.results.handler"]["Environment"]["Variables"]
    assert variables["AUCTION_MODE"] == "random"
    assert variables["RANDOM_ORDER_COUNT"] == "250"
    assert variables["RESULTS_READY_PROBABILITY"] == "0.9"
    assert variables["BATCH_MAX_ORDERS"] == "500"
    assert variables["MAX_ORDERS_PER_RUN"] == "50000"
    process = functions["entrix.handlers.process.handler"]["Environment"]["Variables"]
    assert process["RESULT_LEASE_SECONDS"] == "600"
    slack = functions["entrix.handlers.slack.handler"]["Environment"]["Variables"]
    assert slack == {
        "SLACK_WEBHOOK_SECRET_ARN": SLACK_SECRET,
        "SECRET_CACHE_TTL_SECONDS": settings.SECRET_CACHE_TTL_SECONDS.text(),
        "SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP": "False",  # deployed: https:// only
    }
    fragments = one(configured, "AWS::StepFunctions::StateMachine")["DefinitionString"]
    definition = "".join(part for part in fragments["Fn::Join"][1] if isinstance(part, str))
    for setting in (
        '"Seconds":5',
        '"NumericGreaterThanEquals":4',
        '"MaxConcurrency":3',
        '"TimeoutSeconds":600',
    ):
        assert setting in definition


def test_random_mode_may_also_store_its_made_up_orders(configured: dict[str, Any]) -> None:
    statements = _policy_statements(configured, "ResultsFunctionRole")
    actions = _actions(statements)
    assert {a for a in actions if a.startswith("dynamodb:")} == {
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
    }


# --- the state machine definition ------------------------------------------------------------


# statelint 3.1 predates two Distributed Map fields that AWS documents and accepts: the Map Run
# `Label` and the ItemReader's `ReaderConfig.InputType` (JSON, JSONL, CSV, MANIFEST).
STATELINT_UNKNOWN_FIELDS = {
    'Field "Label" not allowed in State Machine.States.ProcessBatches',
    'Field "InputType" not allowed in State Machine.States.ProcessBatches.ItemReader.ReaderConfig',
}


def _statelint(definition: dict[str, Any], path: Path) -> list[str]:
    path.write_text(json.dumps(definition))
    report = subprocess.run(
        [str(STATELINT), str(path)], capture_output=True, text=True, check=False
    )
    return [line.strip() for line in report.stdout.splitlines()[1:] if line.strip()]


def test_asl_passes_statelint_apart_from_integer_backoff_rates(asl, tmp_path: Path) -> None:
    """statelint wants BackoffRate written as a float; CDK writes 2, which AWS accepts.

    So statelint must report exactly those (and the fields it does not know yet) and nothing
    else, and accept the definition once they are written as 2.0.
    """
    problems = set(_statelint(asl, tmp_path / "as-written.json")) - STATELINT_UNKNOWN_FIELDS
    assert problems, "expected statelint to flag CDK's integer BackoffRate"
    assert all(re.fullmatch(r".*\.BackoffRate is 2 but should be a Float", p) for p in problems)

    floats = json.loads(json.dumps(asl).replace('"BackoffRate": 2}', '"BackoffRate": 2.0}'))
    assert set(_statelint(floats, tmp_path / "float-backoff.json")) == STATELINT_UNKNOWN_FIELDS


def test_polling_is_bounded_by_count_wait_and_timeout(asl) -> None:
    states = asl["States"]
    assert asl["TimeoutSeconds"] == 1800
    assert states["WaitForResults"]["Seconds"] == 30
    ready = states["ResultsReady?"]
    assert ready["Choices"][0] == {
        "Variable": "$.auction.results",
        "BooleanEquals": True,
        "Next": "AnyOrders?",
    }
    assert ready["Choices"][1]["NumericGreaterThanEquals"] == 10
    assert ready["Choices"][1]["Next"] == "AlertNotReady"
    assert states["AlertNotReady"]["Next"] == "ResultsNeverReady"
    (retry,) = states["AlertNotReady"]["Retry"]
    assert "SNS.ThrottledException" in retry["ErrorEquals"], "SNS's transient errors retried"
    assert states["ResultsNeverReady"]["Error"] == "AuctionResultsNotReady"
    assert states["CountPoll"]["Parameters"] == {"count.$": "States.MathAdd($.poll.count, 1)"}
    (retry,) = states["PollAuction"]["Retry"]
    assert {"OrderStoreUnavailable", "ResultStoreUnavailable"} <= set(retry["ErrorEquals"])


def test_a_distributed_map_reads_the_runs_batches_from_the_results_bucket(asl) -> None:
    states = asl["States"]
    assert states["AnyOrders?"]["Choices"] == [
        {"Variable": "$.auction.order_count", "NumericGreaterThan": 0, "Next": "ProcessBatches"}
    ]
    assert states["AnyOrders?"]["Default"] == "NothingToProcess"
    each = states["ProcessBatches"]
    assert each["Type"] == "Map"
    assert each["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    reader = each["ItemReader"]
    assert reader["Resource"] == "arn:aws:states:::s3:getObject"
    assert reader["ReaderConfig"] == {"InputType": "JSON"}
    assert reader["Parameters"]["Key.$"] == "$.auction.batches_key"
    assert reader["Parameters"]["Bucket"].startswith("order-results-")
    assert each["ItemSelector"] == {
        "run_id.$": "$$.Execution.Name",
        "results_key.$": "$$.Map.Item.Value.results_key",
        "orders.$": "$$.Map.Item.Value.orders",
    }
    assert each["MaxConcurrency"] == 10
    assert "ItemBatcher" not in each, "Lambda A batches; moto's interpreter has no ItemBatcher"
    assert each["Next"] == "Summarize"


def test_only_transient_errors_are_retried_and_a_failed_batch_is_counted(asl) -> None:
    child = asl["States"]["ProcessBatches"]["ItemProcessor"]["States"]
    process = child["ProcessBatch"]
    (retry,) = process["Retry"]
    assert set(retry["ErrorEquals"]) == {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    }
    assert retry["BackoffRate"] >= 2 and retry["MaxAttempts"] == 3
    (catch,) = process["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"]
    assert catch["Next"] == "CountFailedBatch"
    assert child["CountFailedBatch"]["Parameters"]["failed.$"] == "States.ArrayLength($.orders)"
    assert set(child) == {"ProcessBatch", "CountFailedBatch", "AlertFailedBatch", "BatchFailed"}
    # A failed batch is alerted (run, batch, how many orders wait) and counted failed.
    assert child["CountFailedBatch"]["Next"] == "AlertFailedBatch"
    alert = child["AlertFailedBatch"]
    assert alert["Resource"] == "arn:aws:states:::sns:publish"
    assert alert["ResultPath"] is None and alert["Next"] == "BatchFailed"
    message = alert["Parameters"]["Message"]
    assert message["orders_to_retry.$"] == "$.failed" and message["run.$"] == "$.run_id"
    assert message["text.$"].startswith("States.Format('Run {} could not finish batch {}")
    assert child["BatchFailed"]["Parameters"] == {
        "accepted": 0,
        "rejected": 0,
        "skipped": 0,
        "failed.$": "$.failed",
    }
    assert child["BatchFailed"]["End"] is True


def test_the_summary_adds_up_the_batches_and_an_empty_run_counts_zero(asl) -> None:
    states = asl["States"]
    summarize = states["Summarize"]
    # The task invokes the run-summary function's live alias, never $LATEST.
    *_, kind, function, alias = summarize["Resource"].split(":")
    assert (kind, alias) == ("function", LIVE_ALIAS) and "RunSummary" in function
    assert summarize["Parameters"] == {
        "orders.$": "$.auction.order_count",
        "batches.$": "$.outcomes",
        "run.$": "$$.Execution.Name",
        "rejections_prefix.$": "$.auction.rejections_prefix",
    }
    assert summarize["Next"] == "AnyRejected?"
    assert "End" not in summarize and "ResultPath" not in summarize
    assert states["NothingToProcess"]["Parameters"] == {
        "orders": 0,
        "accepted": 0,
        "rejected": 0,
        "failed": 0,
        "skipped": 0,
        "batches": 0,
    }


def _attributes(state: dict[str, Any]) -> dict[str, Any]:
    return dict(state["Parameters"]["MessageAttributes"])


def test_a_run_with_rejections_publishes_its_one_digest_with_status_and_run(asl) -> None:
    states = asl["States"]
    assert states["AnyRejected?"]["Choices"] == [
        {"Variable": "$.rejected", "NumericGreaterThan": 0, "Next": "PublishDigest"}
    ]
    assert states["AnyRejected?"]["Default"] == "RunTotals"
    publish = states["PublishDigest"]
    assert publish["Resource"] == "arn:aws:states:::sns:publish"
    assert publish["Parameters"]["Message.$"] == "$.digest"
    assert _attributes(publish) == {
        "status": {"DataType": "String", "StringValue.$": "$.digest.status"},
        "run": {"DataType": "String", "StringValue.$": "$.digest.run"},
    }
    assert publish["ResultPath"] is None and publish["Next"] == "RunTotals"
    (retry,) = publish["Retry"]
    assert "SNS.ThrottledException" in retry["ErrorEquals"]
    # The run's output is its counts; the digest went to the topic.
    assert states["RunTotals"]["Parameters"] == {
        f"{name}.$": f"$.{name}"
        for name in ("orders", "accepted", "rejected", "skipped", "failed", "batches")
    }
    assert states["RunTotals"]["End"] is True


def test_every_alert_the_state_machine_publishes_carries_status_and_run(asl) -> None:
    """The Slack subscription's filter lets through only messages with a status attribute."""
    states = asl["States"]
    child = states["ProcessBatches"]["ItemProcessor"]["States"]
    assert _attributes(states["AlertNotReady"]) == {
        "status": {"DataType": "String", "StringValue": "not_ready"},
        "run": {"DataType": "String", "StringValue.$": "$$.Execution.Name"},
    }
    assert _attributes(child["AlertFailedBatch"]) == {
        "status": {"DataType": "String", "StringValue": "batch_failed"},
        "run": {"DataType": "String", "StringValue.$": "$.run_id"},
    }
    publishes = [
        state
        for group in (states, child)
        for state in group.values()
        if state.get("Resource") == "arn:aws:states:::sns:publish"
    ]
    assert len(publishes) == 3
    assert all("status" in _attributes(state) for state in publishes)
