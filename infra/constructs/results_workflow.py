"""The results state machine: poll Lambda A until results are ready, then Lambda B per batch.

A Standard state machine (exactly-once state transitions, 1 year maximum duration, execution
history kept 90 days) polls the simulated auction platform until results are ready, bounded by a
number of polls and an overall timeout. Lambda A writes the run's results to the results bucket
as an array of batches; a Distributed Map reads that object (ItemReader) and runs Lambda B once
per batch, each in a child execution, so neither the 256 KiB state payload nor the 25,000
history events of one execution bound a run. Lambda B stores the batch's accepted results as one
JSON Lines object and publishes the rejection alerts itself, ten to an SNS request. A last step
adds up the batches' counts into the run's output and, when orders were rejected, returns the
run's one rejection digest, which the state machine publishes. Every message the state machine
publishes carries `status` and `run` as message attributes, like Lambda B's alerts, so
subscriptions can filter on them (the Slack forwarder's leaves out the per-order rejections).

Child executions are Standard: a batch of up to 1,000 orders costs a handful of transitions, the
same order of cost as an Express child, with exactly-once steps, execution history, and no
5-minute limit on a batch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from entrix.auction.outcomes import no_outcomes
from entrix.auction.results import CRASHED_BATCH_TEXT, NOT_READY_TEXT
from entrix.aws.alerts import ATTRIBUTES
from infra.config import ServiceConfig
from infra.constructs.lambda_code import live_alias
from infra.constructs.log_groups import acknowledge_log_controls
from infra.nag import acknowledge, logical_id, partition

# The Lambda service's own transient errors: the only ones retried for Lambda B and the summary
# (Lambda B handles its store faults order by order); Lambda A also retries its store errors.
LAMBDA_TRANSIENT_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# Logged by Lambda B (by these names) for an order it released because a store failed.
STORE_TRANSIENT_ERRORS = ["ResultStoreUnavailable", "OrderStoreUnavailable", "AlertsUnavailable"]
# SNS's own transient errors, as Step Functions names them: retried for the alert tasks.
SNS_TRANSIENT_ERRORS = [
    "SNS.SdkClientException",
    "SNS.InternalErrorException",
    "SNS.ThrottledException",
    "SNS.KMSThrottlingException",
]
NOT_READY_ERROR = "AuctionResultsNotReady"
BATCHES_LABEL = "Batches"


def results_state_machine(
    scope: Construct,
    *,
    results_function: lambda_.IFunction,
    process_function: lambda_.IFunction,
    summary_function: lambda_.IFunction,
    topic: sns.ITopic,
    bucket: s3.IBucket,
    config: ServiceConfig,
) -> sfn.StateMachine:
    """The state machine ("StateMachine" in `scope`) and its log group, with the cdk-nag
    findings on its role acknowledged. Its tasks invoke each function's `live` alias."""
    definition = _Definition(scope, topic, config)
    results_function, process_function, summary_function = (
        live_alias(f) for f in (results_function, process_function, summary_function)
    )
    machine = sfn.StateMachine(
        scope,
        "StateMachine",
        state_machine_type=sfn.StateMachineType.STANDARD,
        definition_body=sfn.DefinitionBody.from_chainable(
            definition.chain(results_function, process_function, summary_function, bucket)
        ),
        timeout=config.run_timeout,
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=logs.LogGroup(
                scope,
                "StateMachineLogs",
                retention=config.log_retention,
                removal_policy=RemovalPolicy.DESTROY,
            ),
            level=sfn.LogLevel.ALL,
            include_execution_data=False,
        ),
        comment="Auction results: poll Lambda A until ready, then Lambda B for each batch",
    )
    _acknowledge_findings(machine, bucket)
    acknowledge_log_controls(scope.node.find_child("StateMachineLogs"))
    return machine


class _Definition:
    """Builds the states in `scope`; every task retries only the transient errors it names."""

    def __init__(self, scope: Construct, topic: sns.ITopic, config: ServiceConfig) -> None:
        self.scope = scope
        self.topic = topic
        self.config = config

    def _retry(self, task: sfn.TaskStateBase, errors: list[str]) -> None:
        task.add_retry(
            errors=errors,
            interval=Duration.seconds(self.config.results_retry_interval_seconds),
            max_attempts=self.config.results_retry_attempts,
            backoff_rate=2,
        )

    def _invoke(
        self, id: str, function: lambda_.IFunction, transient: list[str], **options: Any
    ) -> tasks.LambdaInvoke:
        """A Lambda task returning the function's reply."""
        task = tasks.LambdaInvoke(
            self.scope,
            id,
            lambda_function=function,
            payload_response_only=True,
            retry_on_service_exceptions=False,
            **options,
        )
        self._retry(task, transient)
        return task

    def _alert(self, id: str, message: dict[str, Any]) -> tasks.SnsPublish:
        """Publish `message` to the alert topic, its status and run (those of ATTRIBUTES it
        has) also as message attributes, keeping the state."""
        attributes = {name: message[name] for name in ATTRIBUTES if name in message}
        return self._publish(id, sfn.TaskInput.from_object(message), attributes)

    def _publish(
        self, id: str, message: sfn.TaskInput, attributes: Mapping[str, str]
    ) -> tasks.SnsPublish:
        """Publish `message` with String message attributes, as Lambda B publishes its alerts
        (entrix.aws.alerts): subscriptions filter on them, the Slack forwarder's among them."""
        task = tasks.SnsPublish(
            self.scope,
            id,
            topic=self.topic,
            message=message,
            message_attributes={
                name: tasks.MessageAttribute(
                    value=value, data_type=tasks.MessageAttributeDataType.STRING
                )
                for name, value in attributes.items()
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        self._retry(task, SNS_TRANSIENT_ERRORS)
        return task

    def chain(
        self,
        results_function: lambda_.IFunction,
        process_function: lambda_.IFunction,
        summary_function: lambda_.IFunction,
        bucket: s3.IBucket,
    ) -> sfn.IChainable:
        scope = self.scope
        max_polls = self.config.results_max_polls
        run_id = sfn.JsonPath.execution_name

        start = sfn.Pass(
            scope,
            "StartRun",
            comment="Discard the scheduler's event; count polls from 1",
            result=sfn.Result.from_object({"poll": {"count": 1}}),
            result_path="$",
        )
        poll = self._invoke(
            "PollAuction",
            results_function,
            [*LAMBDA_TRANSIENT_ERRORS, "OrderStoreUnavailable", "ResultStoreUnavailable"],
            payload=sfn.TaskInput.from_object({"run_id": run_id}),
            result_path="$.auction",
        )
        wait = sfn.Wait(
            scope,
            "WaitForResults",
            time=sfn.WaitTime.duration(Duration.seconds(self.config.results_poll_seconds)),
        )
        count = sfn.Pass(
            scope,
            "CountPoll",
            parameters={"count": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.poll.count"), 1)},
            result_path="$.poll",
        )
        notify_not_ready = self._alert(
            "AlertNotReady",
            {
                "text": sfn.JsonPath.format(
                    NOT_READY_TEXT, sfn.JsonPath.string_at("$.poll.count"), run_id
                ),
                "status": "not_ready",
                "run": run_id,
            },
        )
        not_ready = sfn.Fail(
            scope,
            "ResultsNeverReady",
            error=NOT_READY_ERROR,
            cause=f"The auction platform had no results after {max_polls} polls",
        )

        process = self._invoke("ProcessBatch", process_function, LAMBDA_TRANSIENT_ERRORS)
        # Lambda B counts (and alerts) the orders it could not finish itself; this catches the
        # batch as a whole failing (a crash or timeout): its orders stay claimed until the run's
        # lease ends, then are pending again for the next run, and the trading team is told.
        count_failed = sfn.Pass(
            scope,
            "CountFailedBatch",
            parameters={
                "failed": sfn.JsonPath.array_length(sfn.JsonPath.list_at("$.orders")),
                "run_id": sfn.JsonPath.string_at("$.run_id"),
                "batch": sfn.JsonPath.string_at("$.results_key"),
                "reason": sfn.JsonPath.string_at("$.error.Error"),
            },
        )
        alert_failed = self._alert(
            "AlertFailedBatch",
            {
                "text": sfn.JsonPath.format(
                    CRASHED_BATCH_TEXT,
                    sfn.JsonPath.string_at("$.run_id"),
                    sfn.JsonPath.string_at("$.batch"),
                    sfn.JsonPath.string_at("$.reason"),
                    sfn.JsonPath.string_at("$.failed"),
                ),
                "status": "batch_failed",
                "run": sfn.JsonPath.string_at("$.run_id"),
                "batch": sfn.JsonPath.string_at("$.batch"),
                "reason": sfn.JsonPath.string_at("$.reason"),
                "orders_to_retry": sfn.JsonPath.number_at("$.failed"),
            },
        )
        batch_failed = sfn.Pass(
            scope,
            "BatchFailed",
            parameters={**no_outcomes(), "failed": sfn.JsonPath.number_at("$.failed")},
        )
        process.add_catch(count_failed, errors=[sfn.Errors.ALL], result_path="$.error")
        count_failed.next(alert_failed).next(batch_failed)

        each_batch = sfn.DistributedMap(
            scope,
            "ProcessBatches",
            item_reader=sfn.S3JsonItemReader(
                bucket=bucket,
                key=sfn.JsonPath.string_at("$.auction.batches_key"),
            ),
            item_selector={
                "run_id": run_id,
                "results_key": sfn.JsonPath.string_at("$$.Map.Item.Value.results_key"),
                "orders": sfn.JsonPath.list_at("$$.Map.Item.Value.orders"),
            },
            max_concurrency=self.config.results_max_concurrency,
            map_execution_type=sfn.StateMachineType.STANDARD,
            label=BATCHES_LABEL,
            result_path="$.outcomes",
        )
        each_batch.item_processor(process)

        summarize = self._invoke(
            "Summarize",
            summary_function,
            LAMBDA_TRANSIENT_ERRORS,
            payload=sfn.TaskInput.from_object(
                {
                    "orders": sfn.JsonPath.number_at("$.auction.order_count"),
                    "batches": sfn.JsonPath.list_at("$.outcomes"),
                    "run": run_id,
                    "rejections_prefix": sfn.JsonPath.string_at("$.auction.rejections_prefix"),
                }
            ),
        )
        # People read one message about a run's rejections, not one per rejected order.
        publish_digest = self._publish(
            "PublishDigest",
            sfn.TaskInput.from_json_path_at("$.digest"),
            {name: sfn.JsonPath.string_at(f"$.digest.{name}") for name in ("status", "run")},
        )
        totals = sfn.Pass(
            scope,
            "RunTotals",
            comment="The run's output: its counts, without the digest",
            parameters={name + ".$": f"$.{name}" for name in ("orders", *no_outcomes(), "batches")},
        )
        digest = (
            sfn.Choice(scope, "AnyRejected?")
            .when(
                sfn.Condition.number_greater_than("$.rejected", 0),
                publish_digest.next(totals),
            )
            .otherwise(totals)
        )
        nothing_to_do = sfn.Pass(
            scope,
            "NothingToProcess",
            comment="Results are ready and no order is waiting for one",
            parameters={"orders": 0, **no_outcomes(), "batches": 0},
        )
        process_results = (
            sfn.Choice(scope, "AnyOrders?")
            .when(
                sfn.Condition.number_greater_than("$.auction.order_count", 0),
                each_batch.next(summarize).next(digest),
            )
            .otherwise(nothing_to_do)
        )

        ready = (
            sfn.Choice(scope, "ResultsReady?")
            .when(sfn.Condition.boolean_equals("$.auction.results", True), process_results)
            .when(
                sfn.Condition.number_greater_than_equals("$.poll.count", max_polls),
                notify_not_ready.next(not_ready),
            )
            .otherwise(wait.next(count).next(poll))
        )
        return start.next(poll).next(ready)


def _acknowledge_findings(machine: sfn.StateMachine, bucket: s3.IBucket) -> None:
    # The tasks invoke the functions' aliases, on which CDK grants lambda:InvokeFunction by
    # their exact ARN: no function-wide `<ARN>:*` to acknowledge.
    acknowledge(
        machine.role,
        "AwsSolutions-IAM5[Resource::*]",
        "X-Ray tracing (xray:PutTraceSegments and friends) and delivery to CloudWatch Logs "
        "(logs:CreateLogDelivery and friends) support no resource-level permissions.",
    )
    acknowledge(
        machine.role,
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<{logical_id(bucket)}>/*]",
        "The Distributed Map's ItemReader reads the run's batches object, whose key Lambda A "
        "returns at run time (batches/date=.../<run>.json); CDK grants s3:GetObject on the "
        "bucket's objects for a key given as a JSON path. Read-only, this bucket only.",
    )
    # CDK scopes the Distributed Map's own permissions (start, describe and stop child
    # executions) to execution ARNs of this machine; cdk-nag names them as rendered here.
    stack = Stack.of(machine)
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    machine_name = json.dumps(
        {"Fn::Select": [6, {"Fn::Split": [":", {"Ref": logical_id(machine)}]}]},
        separators=(",", ":"),
    )
    executions = f"arn:{partition(machine)}:states:{region}:{account}:execution:{machine_name}"
    for resource in (f"{executions}:*", f"{executions}/{BATCHES_LABEL}:*"):
        acknowledge(
            machine.node.find_child("DistributedMapPolicy"),
            f"AwsSolutions-IAM5[Resource::{resource}]",
            "The Distributed Map starts, describes and stops child executions of this state "
            "machine itself; their names are generated per run, and this policy holds "
            "nothing else.",
        )
