"""The auction results pipeline: every 5 minutes, poll Lambda A, then run Lambda B per order.

A Standard state machine (exactly-once state transitions, 1 year maximum duration, execution
history kept 90 days) polls the simulated auction platform until results are ready, bounded by a
number of polls and an overall timeout; then an inline Map runs Lambda B on each order. A
rejected order is an outcome, not a failure: Lambda B raises `OrderRejected`, the Map iteration
catches it and publishes a Slack-style alert. Only transient errors are retried. The execution's
output counts the outcomes.

Results bucket lifecycle: result objects move to S3 Standard-IA after 30 days and expire after
`results_retention_days` (default 365); noncurrent versions expire after 30 days. The access log
bucket keeps its logs 90 days.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
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
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from entrix import environment
from entrix.auction.results import NOT_READY_TEXT, REJECTION_TEXT, RESULTS_PREFIX
from infra.constructs.lambda_code import python_function
from infra.nag import acknowledge

PENDING_INDEX_NAME = "pending-results"
# Error names Lambda B raises for transient faults (entrix.auction.results), and the Lambda
# service's own transient errors: only these are retried, never OrderRejected.
LAMBDA_TRANSIENT_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
STORE_TRANSIENT_ERRORS = ["ResultStoreUnavailable", "OrderStoreUnavailable"]
REJECTED_ERROR = "OrderRejected"
NOT_READY_ERROR = "AuctionResultsNotReady"
DEFAULT_POLL_INTERVAL = Duration.seconds(30)
DEFAULT_RETRY_INTERVAL = Duration.seconds(1)
# Also the lease of an order claimed by a run: no run outlives it.
DEFAULT_TIMEOUT = Duration.minutes(30)


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
        retry_interval: Duration = DEFAULT_RETRY_INTERVAL,
        retry_attempts: int = 3,
        timeout: Duration = DEFAULT_TIMEOUT,
        slack_webhook_secret_arn: str | None = None,
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
            },
            memory_size=512,
            timeout=Duration.seconds(60),
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
            description="Lambda B: stores an accepted order's result, raises OrderRejected",
            log_retention=log_retention,
            layers=[deps_layer],
            environment={
                environment.ORDERS_TABLE_NAME: table.table_name,
                environment.RESULTS_BUCKET_NAME: self.bucket.bucket_name,
                environment.RESULT_LEASE_SECONDS: str(int(timeout.to_seconds())),
            },
            memory_size=256,
            timeout=Duration.seconds(20),
        )
        self.process_function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[table.table_arn])
        )
        self.process_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{RESULTS_PREFIX}*")],
            )
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
            comment="Auction results: poll Lambda A until ready, then Lambda B for each order",
        )
        self._schedule()
        if slack_webhook_secret_arn:
            self._slack_subscriber(slack_webhook_secret_arn, log_retention)
        self._acknowledge_findings()

    @staticmethod
    def _add_pending_index(table: dynamodb.Table) -> None:
        """A GSI on result_status: a run queries the orders still pending instead of scanning.

        Only the order's parameters are projected, which is all Lambda A returns.
        """
        table.add_global_secondary_index(
            index_name=PENDING_INDEX_NAME,
            partition_key=dynamodb.Attribute(
                name="result_status", type=dynamodb.AttributeType.STRING
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
            # Bucket names are global: the configurable prefix plus account and region.
            bucket_name=f"{prefix}-{Aws.ACCOUNT_ID}-{Aws.REGION}",
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
                )
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
        poll = tasks.LambdaInvoke(
            self,
            "PollAuction",
            lambda_function=self.results_function,
            payload=sfn.TaskInput.from_object({"run_id": run_id}),
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path="$.auction",
        )
        poll.add_retry(
            errors=[*LAMBDA_TRANSIENT_ERRORS, "OrderStoreUnavailable"],
            interval=retry_interval,
            max_attempts=retry_attempts,
            backoff_rate=2,
        )
        wait = sfn.Wait(self, "WaitForResults", time=sfn.WaitTime.duration(poll_interval))
        count = sfn.Pass(
            self,
            "CountPoll",
            parameters={"count": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.poll.count"), 1)},
            result_path="$.poll",
        )
        notify_not_ready = tasks.SnsPublish(
            self,
            "AlertNotReady",
            topic=self.topic,
            message=sfn.TaskInput.from_object(
                {
                    "text": sfn.JsonPath.format(
                        NOT_READY_TEXT, sfn.JsonPath.string_at("$.poll.count"), run_id
                    ),
                    "status": "not_ready",
                    "run": run_id,
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        not_ready = sfn.Fail(
            self,
            "ResultsNeverReady",
            error=NOT_READY_ERROR,
            cause=f"The auction platform had no results after {max_polls} polls",
        )

        process = tasks.LambdaInvoke(
            self,
            "ProcessOrder",
            lambda_function=self.process_function,
            payload_response_only=True,
            retry_on_service_exceptions=False,
        )
        process.add_retry(
            errors=[*LAMBDA_TRANSIENT_ERRORS, *STORE_TRANSIENT_ERRORS],
            interval=retry_interval,
            max_attempts=retry_attempts,
            backoff_rate=2,
        )
        notify_rejected = tasks.SnsPublish(
            self,
            "AlertRejected",
            topic=self.topic,
            message=sfn.TaskInput.from_object(
                {
                    "text": sfn.JsonPath.format(
                        REJECTION_TEXT,
                        sfn.JsonPath.string_at("$.record_id"),
                        sfn.JsonPath.string_at("$.run_id"),
                        sfn.JsonPath.string_at("$.power"),
                    ),
                    "record_id": sfn.JsonPath.string_at("$.record_id"),
                    "status": "rejected",
                    "run": sfn.JsonPath.string_at("$.run_id"),
                    "power": sfn.JsonPath.number_at("$.power"),
                }
            ),
            result_selector={"rejected": 1},
        )
        notify_rejected.add_retry(
            errors=["States.TaskFailed"],
            interval=retry_interval,
            max_attempts=retry_attempts,
            backoff_rate=2,
        )
        failed = sfn.Pass(self, "CountFailure", result=sfn.Result.from_object({"failed": 1}))
        process.add_catch(notify_rejected, errors=[REJECTED_ERROR], result_path="$.error")
        process.add_catch(failed, errors=[sfn.Errors.ALL], result_path=sfn.JsonPath.DISCARD)
        # A rejection whose alert could not be published is counted, and fails the run once every
        # order has been processed: the other orders still complete, and the failure is visible
        # (ExecutionsFailed alarm) instead of a silently dropped notification.
        unalerted = sfn.Pass(
            self, "CountUnalerted", result=sfn.Result.from_object({"unalerted": 1})
        )
        notify_rejected.add_catch(
            unalerted, errors=[sfn.Errors.ALL], result_path=sfn.JsonPath.DISCARD
        )

        each_order = sfn.Map(
            self,
            "ProcessOrders",
            items_path="$.auction.orders",
            item_selector={
                "record_id": sfn.JsonPath.string_at("$$.Map.Item.Value.record_id"),
                "status": sfn.JsonPath.string_at("$$.Map.Item.Value.status"),
                "power": sfn.JsonPath.number_at("$$.Map.Item.Value.power"),
                "run_id": run_id,
            },
            max_concurrency=max_concurrency,
            result_path="$.outcomes",
        )
        each_order.item_processor(process)

        def count_of(outcome: str) -> str:
            return sfn.JsonPath.array_length(sfn.JsonPath.list_at(f"$.outcomes[*].{outcome}"))

        summarize = sfn.Pass(
            self,
            "Summarize",
            parameters={
                outcome: count_of(outcome)
                for outcome in ("accepted", "rejected", "failed", "skipped")
            },
        )
        count_unalerted = sfn.Pass(
            self,
            "CountUnalertedRejections",
            parameters={"count": count_of("unalerted")},
            result_path="$.unalerted",
        )
        alerts_published = (
            sfn.Choice(self, "EveryRejectionAlerted?")
            .when(
                sfn.Condition.number_greater_than("$.unalerted.count", 0),
                sfn.Fail(
                    self,
                    "RejectionAlertsFailed",
                    error="RejectionAlertNotPublished",
                    cause="rejected orders were recorded but their alerts could not be published; "
                    "the CountUnalerted states in this execution's history name them",
                ),
            )
            .otherwise(summarize)
        )

        ready = (
            sfn.Choice(self, "ResultsReady?")
            .when(
                sfn.Condition.boolean_equals("$.auction.results", True),
                each_order.next(count_unalerted).next(alerts_published),
            )
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
        for function in (self.results_function, self.process_function):
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
            self.process_function.role,  # type: ignore[arg-type]
            f"AwsSolutions-IAM5[Resource::<{_logical_id(self.bucket)}.Arn>/{RESULTS_PREFIX}*]",
            "Lambda B writes one object per order under results/ (keys are SHA-256 of the "
            "record_id, unknown in advance); s3:PutObject only, nothing else in the bucket.",
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the schedule's target.",
        )
