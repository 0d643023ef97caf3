"""The auction results pipeline: every 5 minutes, poll Lambda A, then process results in batches.

A Standard state machine (exactly-once state transitions, 1 year maximum duration, execution
history kept 90 days) polls the simulated auction platform until results are ready, bounded by a
number of polls and an overall timeout. Lambda A writes the run's results to the results bucket
as an array of batches; a Distributed Map reads that object (ItemReader) and runs Lambda B once
per batch, each in a child execution, so neither the 256 KiB state payload nor the 25,000
history events of one execution bound a run. Lambda B stores the batch's accepted results as one
JSON Lines object and publishes the rejection alerts itself, ten to an SNS request. A last step
adds up the batches' counts into the run's output.

Child executions are Standard: a batch of up to 1,000 orders costs a handful of transitions, the
same order of cost as an Express child, with exactly-once steps, execution history, and no
5-minute limit on a batch.

Results bucket lifecycle: result objects move to S3 Standard-IA after 30 days and expire after
`results_retention_days` (default 365); a run's batches object (`batches/`) expires after 7 days;
noncurrent versions expire after 30 days. The access log bucket keeps its logs 90 days.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from entrix import environment
from entrix.auction.batches import DEFAULT_MAX_BATCH_ORDERS
from entrix.auction.results import (
    BATCHES_PREFIX,
    FAILED_BATCH_TEXT,
    NOT_READY_TEXT,
    RESULTS_PREFIX,
)
from infra.constructs.lambda_code import python_function
from infra.nag import acknowledge

PENDING_INDEX_NAME = "pending-results"
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
DEFAULT_POLL_INTERVAL = Duration.seconds(30)
DEFAULT_RETRY_INTERVAL = Duration.seconds(1)
# Also the lease of an order claimed by a run: no run outlives it.
DEFAULT_TIMEOUT = Duration.minutes(30)
DEFAULT_MAX_ORDERS_PER_RUN = 200_000
BATCHES_RETENTION = Duration.days(7)
BATCHES_LABEL = "Batches"


# Longest account id and region name a bucket name must make room for (e.g. ap-southeast-2).
_ACCOUNT_CHARS = 12
_REGION_CHARS = 14
_MAX_BUCKET_NAME = 63


def _bucket_name(prefix: str, stack_name: str) -> str:
    """`<prefix>-<stack name>-<account>-<region>`: unique, since bucket names are global and a
    stack name is unique in its account and region (Dev and Prod may share both)."""
    fixed = f"{prefix}-{stack_name.lower()}"
    if len(fixed) + 2 + _ACCOUNT_CHARS + _REGION_CHARS > _MAX_BUCKET_NAME:
        raise ValueError(
            f"results bucket name {fixed}-<account>-<region> may exceed {_MAX_BUCKET_NAME} "
            "characters: shorten entrix:results_bucket_prefix or the stack name"
        )
    return f"{fixed}-{Aws.ACCOUNT_ID}-{Aws.REGION}"


def _publish_with_key(key: kms.IKey) -> iam.PolicyStatement:
    """What a publisher to a topic encrypted with `key` needs besides sns:Publish: SNS asks KMS
    for a data key (and decrypts it) with the publisher's permissions."""
    return iam.PolicyStatement(
        actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn]
    )


def _logical_id(construct: Construct) -> str:
    """The CloudFormation logical id of a construct's main resource, as cdk-nag names it."""
    stack = Stack.of(construct)
    return str(stack.resolve(stack.get_logical_id(construct.node.default_child)))  # type: ignore[arg-type]


class ResultsPipeline(Construct):
    """Results bucket, alert topic, Lambda A and B, the state machine and its schedule."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        table: dynamodb.Table,
        deps_layer: lambda_.ILayerVersion,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        bucket_name_prefix: str = "order-results",
        results_retention_days: int = 365,
        ready_probability: float = 0.5,
        auction_mode: str = "orders",
        random_order_count: int = 10,
        poll_interval: Duration = DEFAULT_POLL_INTERVAL,
        max_polls: int = 10,
        max_concurrency: int = 10,
        batch_max_orders: int = DEFAULT_MAX_BATCH_ORDERS,
        max_orders_per_run: int = DEFAULT_MAX_ORDERS_PER_RUN,
        retry_interval: Duration = DEFAULT_RETRY_INTERVAL,
        retry_attempts: int = 3,
        timeout: Duration = DEFAULT_TIMEOUT,
        slack_webhook_secret_arn: str | None = None,
        alert_email_addresses: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, id)
        if auction_mode not in ("orders", "random"):
            raise ValueError(f"auction_mode must be 'orders' or 'random', not {auction_mode!r}")

        self._add_pending_index(table)
        self.bucket = self._results_bucket(
            bucket_name_prefix, results_retention_days, removal_policy
        )
        self.topic_key = kms.Key(
            self,
            "AlertKey",
            description="Encrypts the auction alert topic",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.topic = sns.Topic(
            self,
            "AlertTopic",
            display_name="Entrix auction alerts",
            master_key=self.topic_key,
            enforce_ssl=True,
        )

        self.results_function = python_function(
            self,
            "ResultsFunction",
            handler="entrix.handlers.results.handler",
            description="Lambda A: the simulated auction platform (results for pending orders)",
            log_retention=log_retention,
            layers=[deps_layer],
            environment={
                environment.ORDERS_TABLE_NAME: table.table_name,
                environment.ORDERS_PENDING_INDEX_NAME: PENDING_INDEX_NAME,
                environment.RESULTS_READY_PROBABILITY: str(ready_probability),
                environment.AUCTION_MODE: auction_mode,
                environment.RANDOM_ORDER_COUNT: str(random_order_count),
                environment.RESULTS_BUCKET_NAME: self.bucket.bucket_name,
                environment.MAX_ORDERS_PER_RUN: str(max_orders_per_run),
                environment.BATCH_MAX_ORDERS: str(batch_max_orders),
            },
            # Holds a run's results (up to max_orders_per_run) while it batches them.
            memory_size=1024,
            timeout=Duration.minutes(5),
        )
        self.results_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{BATCHES_PREFIX}*")],
            )
        )
        self.results_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[f"{table.table_arn}/index/{PENDING_INDEX_NAME}"],
            )
        )
        if auction_mode == "random":
            self.results_function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:BatchWriteItem"], resources=[table.table_arn]
                )
            )

        self.process_function = python_function(
            self,
            "ProcessFunction",
            handler="entrix.handlers.process.handler",
            description="Lambda B: stores a batch's accepted results, alerts its rejected orders",
            log_retention=log_retention,
            layers=[deps_layer],
            environment={
                environment.ORDERS_TABLE_NAME: table.table_name,
                environment.RESULTS_BUCKET_NAME: self.bucket.bucket_name,
                environment.ALERT_TOPIC_ARN: self.topic.topic_arn,
                environment.RESULT_LEASE_SECONDS: str(int(timeout.to_seconds())),
            },
            memory_size=256,
            # Two conditional writes per order, one after the other: 1,000 orders take ~10 s.
            timeout=Duration.minutes(2),
        )
        # Publishing to a KMS-encrypted topic: SNS needs a data key from the topic's key.
        self.process_function.add_to_role_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        self.process_function.add_to_role_policy(_publish_with_key(self.topic_key))
        self.process_function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[table.table_arn])
        )
        self.process_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{RESULTS_PREFIX}*")],
            )
        )

        self.summary_function = python_function(
            self,
            "RunSummaryFunction",
            handler="entrix.handlers.run_summary.handler",
            description="Adds up the outcome counts of a results run's batches",
            log_retention=log_retention,
            memory_size=128,
            timeout=Duration.seconds(10),
        )

        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(
                self._definition(
                    poll_interval=poll_interval,
                    max_polls=max_polls,
                    max_concurrency=max_concurrency,
                    retry_interval=retry_interval,
                    retry_attempts=retry_attempts,
                )
            ),
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=logs.LogGroup(
                    self,
                    "StateMachineLogs",
                    retention=log_retention,
                    removal_policy=RemovalPolicy.DESTROY,
                ),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
            comment="Auction results: poll Lambda A until ready, then Lambda B for each batch",
        )
        # The SnsPublish tasks (results never ready, a failed batch) publish to the encrypted
        # topic as the state machine's role: SNS then needs a data key from the topic's key on
        # its behalf, which CDK's SnsPublish task does not grant.
        self.state_machine.add_to_role_policy(_publish_with_key(self.topic_key))
        self._schedule()
        for address in alert_email_addresses:
            self.topic.add_subscription(subscriptions.EmailSubscription(address))
        if slack_webhook_secret_arn:
            self._slack_subscriber(slack_webhook_secret_arn, log_retention)
        self._acknowledge_findings()

    @staticmethod
    def _add_pending_index(table: dynamodb.Table) -> None:
        """A sparse GSI of the orders waiting for a result: a run queries it instead of scanning.

        Keyed on `pending_shard` (16 values, set by the intake, removed when the result is
        recorded), so waiting orders spread over 16 index partitions and a recorded order costs
        one index write (its removal). Only the order's parameters are projected, which is all
        Lambda A reads.
        """
        table.add_global_secondary_index(
            index_name=PENDING_INDEX_NAME,
            partition_key=dynamodb.Attribute(
                name="pending_shard", type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name="received_at", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=["parameter_1", "parameter_2"],
        )

    def _results_bucket(
        self, prefix: str, retention_days: int, removal_policy: RemovalPolicy
    ) -> s3.Bucket:
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(90))
            ],
            removal_policy=removal_policy,
        )
        acknowledge(
            access_logs,
            "AwsSolutions-S1",
            "This is the server access log bucket of the results bucket; logging its own "
            "access would recurse.",
        )
        return s3.Bucket(
            self,
            "Results",
            bucket_name=_bucket_name(prefix, Stack.of(self).stack_name),
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="results/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="age-out-results",
                    prefix=RESULTS_PREFIX,
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(30),
                        )
                    ],
                    expiration=Duration.days(retention_days),
                    noncurrent_version_expiration=Duration.days(30),
                ),
                s3.LifecycleRule(
                    id="expire-run-batches",
                    prefix=BATCHES_PREFIX,
                    expiration=BATCHES_RETENTION,
                    noncurrent_version_expiration=Duration.days(1),
                ),
            ],
            removal_policy=removal_policy,
        )

    def _definition(
        self,
        *,
        poll_interval: Duration,
        max_polls: int,
        max_concurrency: int,
        retry_interval: Duration,
        retry_attempts: int,
    ) -> sfn.IChainable:
        run_id = sfn.JsonPath.execution_name

        start = sfn.Pass(
            self,
            "StartRun",
            comment="Discard the scheduler's event; count polls from 1",
            result=sfn.Result.from_object({"poll": {"count": 1}}),
            result_path="$",
        )

        def invoke(
            id: str, function: lambda_.IFunction, transient: list[str], **options: Any
        ) -> tasks.LambdaInvoke:
            """A Lambda task returning the function's reply, retrying only `transient` errors."""
            task = tasks.LambdaInvoke(
                self,
                id,
                lambda_function=function,
                payload_response_only=True,
                retry_on_service_exceptions=False,
                **options,
            )
            task.add_retry(
                errors=transient,
                interval=retry_interval,
                max_attempts=retry_attempts,
                backoff_rate=2,
            )
            return task

        poll = invoke(
            "PollAuction",
            self.results_function,
            [*LAMBDA_TRANSIENT_ERRORS, "OrderStoreUnavailable", "ResultStoreUnavailable"],
            payload=sfn.TaskInput.from_object({"run_id": run_id}),
            result_path="$.auction",
        )
        wait = sfn.Wait(self, "WaitForResults", time=sfn.WaitTime.duration(poll_interval))
        count = sfn.Pass(
            self,
            "CountPoll",
            parameters={"count": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.poll.count"), 1)},
            result_path="$.poll",
        )

        def alert(id: str, message: dict[str, Any]) -> tasks.SnsPublish:
            """Publish `message` to the alert topic, keeping the state; SNS's transient errors
            are retried."""
            task = tasks.SnsPublish(
                self,
                id,
                topic=self.topic,
                message=sfn.TaskInput.from_object(message),
                result_path=sfn.JsonPath.DISCARD,
            )
            task.add_retry(
                errors=SNS_TRANSIENT_ERRORS,
                interval=retry_interval,
                max_attempts=retry_attempts,
                backoff_rate=2,
            )
            return task

        notify_not_ready = alert(
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
            self,
            "ResultsNeverReady",
            error=NOT_READY_ERROR,
            cause=f"The auction platform had no results after {max_polls} polls",
        )

        process = invoke("ProcessBatch", self.process_function, LAMBDA_TRANSIENT_ERRORS)
        # Lambda B counts (and alerts) the orders it could not finish itself; this catches the
        # batch as a whole failing (a crash or timeout): its orders stay claimed until the run's
        # lease ends, then are pending again for the next run, and the trading team is told.
        count_failed = sfn.Pass(
            self,
            "CountFailedBatch",
            parameters={
                "failed": sfn.JsonPath.array_length(sfn.JsonPath.list_at("$.orders")),
                "run_id": sfn.JsonPath.string_at("$.run_id"),
                "batch": sfn.JsonPath.string_at("$.results_key"),
                "reason": sfn.JsonPath.string_at("$.error.Error"),
            },
        )
        alert_failed = alert(
            "AlertFailedBatch",
            {
                "text": sfn.JsonPath.format(
                    FAILED_BATCH_TEXT,
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
            self,
            "BatchFailed",
            parameters={
                "accepted": 0,
                "rejected": 0,
                "skipped": 0,
                "failed": sfn.JsonPath.number_at("$.failed"),
            },
        )
        process.add_catch(count_failed, errors=[sfn.Errors.ALL], result_path="$.error")
        count_failed.next(alert_failed).next(batch_failed)

        each_batch = sfn.DistributedMap(
            self,
            "ProcessBatches",
            item_reader=sfn.S3JsonItemReader(
                bucket=self.bucket,
                key=sfn.JsonPath.string_at("$.auction.batches_key"),
            ),
            item_selector={
                "run_id": run_id,
                "results_key": sfn.JsonPath.string_at("$$.Map.Item.Value.results_key"),
                "orders": sfn.JsonPath.list_at("$$.Map.Item.Value.orders"),
            },
            max_concurrency=max_concurrency,
            map_execution_type=sfn.StateMachineType.STANDARD,
            label=BATCHES_LABEL,
            result_path="$.outcomes",
        )
        each_batch.item_processor(process)

        summarize = invoke(
            "Summarize",
            self.summary_function,
            LAMBDA_TRANSIENT_ERRORS,
            payload=sfn.TaskInput.from_object(
                {
                    "orders": sfn.JsonPath.number_at("$.auction.order_count"),
                    "batches": sfn.JsonPath.list_at("$.outcomes"),
                }
            ),
        )
        nothing_to_do = sfn.Pass(
            self,
            "NothingToProcess",
            comment="Results are ready and no order is waiting for one",
            parameters={
                "orders": 0,
                "accepted": 0,
                "rejected": 0,
                "failed": 0,
                "skipped": 0,
                "batches": 0,
            },
        )
        process_results = (
            sfn.Choice(self, "AnyOrders?")
            .when(
                sfn.Condition.number_greater_than("$.auction.order_count", 0),
                each_batch.next(summarize),
            )
            .otherwise(nothing_to_do)
        )

        ready = (
            sfn.Choice(self, "ResultsReady?")
            .when(sfn.Condition.boolean_equals("$.auction.results", True), process_results)
            .when(
                sfn.Condition.number_greater_than_equals("$.poll.count", max_polls),
                notify_not_ready.next(not_ready),
            )
            .otherwise(wait.next(count).next(poll))
        )
        return start.next(poll).next(ready)

    def _schedule(self) -> None:
        """EventBridge starts a run every 5 minutes; starts it cannot deliver land in a DLQ."""
        self.dead_letter_queue = sqs.Queue(
            self,
            "ScheduleDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.rule = events.Rule(
            self,
            "Schedule",
            description="Start an auction results run",
            schedule=events.Schedule.rate(Duration.minutes(5)),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=4,
                    max_event_age=Duration.hours(1),
                )
            ],
        )

    def _slack_subscriber(
        self,
        secret_arn: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        """Forward every alert to Slack; the webhook URL is a secret created outside the stack."""
        secret = secretsmanager.Secret.from_secret_complete_arn(self, "SlackWebhook", secret_arn)
        self.slack_function = python_function(
            self,
            "SlackFunction",
            handler="entrix.handlers.slack.handler",
            description="Posts auction alerts to the Slack webhook",
            log_retention=log_retention,
            environment={environment.SLACK_WEBHOOK_SECRET_ARN: secret_arn},
            timeout=Duration.seconds(15),
        )
        secret.grant_read(self.slack_function)
        self.slack_function.add_event_source(event_sources.SnsEventSource(self.topic))

    def _acknowledge_findings(self) -> None:
        for function in (self.results_function, self.process_function, self.summary_function):
            acknowledge(
                self.state_machine.role,
                f"AwsSolutions-IAM5[Resource::<{_logical_id(function)}.Arn>:*]",
                "CDK grants lambda:InvokeFunction on the function and its versions and aliases "
                "(ARN:*), so the task keeps working when a version is published; the function "
                "is this pipeline's own.",
            )
        acknowledge(
            self.state_machine.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing (xray:PutTraceSegments and friends) and delivery to CloudWatch Logs "
            "(logs:CreateLogDelivery and friends) support no resource-level permissions.",
        )
        acknowledge(
            self.state_machine.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<{_logical_id(self.bucket)}>/*]",
            "The Distributed Map's ItemReader reads the run's batches object, whose key Lambda A "
            "returns at run time (batches/date=.../<run>.json); CDK grants s3:GetObject on the "
            "bucket's objects for a key given as a JSON path. Read-only, this bucket only.",
        )
        # CDK scopes the Distributed Map's own permissions (start, describe and stop child
        # executions) to execution ARNs of this machine; cdk-nag names them as rendered here.
        stack = Stack.of(self)
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
        machine_name = json.dumps(
            {"Fn::Select": [6, {"Fn::Split": [":", {"Ref": _logical_id(self.state_machine)}]}]},
            separators=(",", ":"),
        )
        executions = f"arn:<AWS::Partition>:states:{region}:{account}:execution:{machine_name}"
        for resource in (f"{executions}:*", f"{executions}/{BATCHES_LABEL}:*"):
            acknowledge(
                self.state_machine.node.find_child("DistributedMapPolicy"),
                f"AwsSolutions-IAM5[Resource::{resource}]",
                "The Distributed Map starts, describes and stops child executions of this state "
                "machine itself; their names are generated per run, and this policy holds "
                "nothing else.",
            )
        acknowledge(
            self.results_function.role,  # type: ignore[arg-type]
            f"AwsSolutions-IAM5[Resource::<{_logical_id(self.bucket)}.Arn>/{BATCHES_PREFIX}*]",
            "Lambda A writes each run's batches object under batches/ (keys hold the run's date "
            "and id); s3:PutObject only, nothing else in the bucket.",
        )
        acknowledge(
            self.process_function.role,  # type: ignore[arg-type]
            f"AwsSolutions-IAM5[Resource::<{_logical_id(self.bucket)}.Arn>/{RESULTS_PREFIX}*]",
            "Lambda B writes one JSON Lines object per batch under results/ (keys hold the run's "
            "date and id); s3:PutObject only, nothing else in the bucket.",
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the schedule's target.",
        )
