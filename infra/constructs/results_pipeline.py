"""The auction results pipeline: every 5 minutes, poll Lambda A, then process results in batches.

This construct puts the pieces together: the results bucket (results_storage), the trading
team's alert topic, Lambda A, Lambda B and the run-summary function with their permissions, the
state machine (results_workflow), the schedule that starts it, and the alert topic's
subscribers (e-mail, clients' own rejections filtered by owner, and the optional Slack
forwarder). The orders table, with the index Lambda A queries, belongs to the intake
(orders_table).
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import cast

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from entrix import settings
from entrix.auction.platform import Status
from entrix.auction.results import BATCHES_PREFIX, REJECTIONS_PREFIX, RESULTS_PREFIX
from infra.config import ServiceConfig
from infra.constructs.dead_letters import dead_letter_queue
from infra.constructs.key_policy import deny_grants_but_for_aws_resources
from infra.constructs.lambda_code import python_function
from infra.constructs.results_storage import results_bucket
from infra.constructs.results_workflow import results_state_machine
from infra.constructs.slack_forwarder import SlackForwarder, people_filter, slack_forwarder
from infra.nag import acknowledge, logical_id


def client_rejection_filter(owner: str) -> dict[str, sns.SubscriptionFilter]:
    """A subscription filter policy that lets through `owner`'s rejections only:
    {"owner": [owner], "status": ["rejected"]}."""
    return {
        "owner": sns.SubscriptionFilter.string_filter(allowlist=[owner]),
        "status": sns.SubscriptionFilter.string_filter(allowlist=[Status.REJECTED.value]),
    }


def _publish_with_key(key: kms.IKey) -> iam.PolicyStatement:
    """What a publisher to a topic encrypted with `key` needs besides sns:Publish: SNS asks KMS
    for a data key (and decrypts it) with the publisher's permissions."""
    return iam.PolicyStatement(
        actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn]
    )


class ResultsPipeline(Construct):
    """Results bucket, alert topic, Lambda A and B, the state machine and its schedule."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ServiceConfig,
        table: dynamodb.ITable,
        deps_layer: lambda_.ILayerVersion,
    ) -> None:
        super().__init__(scope, id)
        self.bucket = results_bucket(self, config=config)
        self.topic_key = kms.Key(
            self,
            "AlertKey",
            description="Encrypts the auction alert topic",
            enable_key_rotation=True,
            removal_policy=config.data_removal_policy,
        )
        deny_grants_but_for_aws_resources(self.topic_key)
        self.topic = sns.Topic(
            self,
            "AlertTopic",
            display_name="Entrix auction alerts",
            master_key=self.topic_key,
            enforce_ssl=True,
        )
        function = functools.partial(python_function, self, log_retention=config.log_retention)

        pending_index = settings.ORDERS_PENDING_INDEX_NAME.text()
        self.results_function = function(
            "ResultsFunction",
            handler="entrix.handlers.results.handler",
            description="Lambda A: the simulated auction platform (results for pending orders)",
            layers=[deps_layer],
            settings={
                settings.ORDERS_TABLE_NAME: table.table_name,
                settings.ORDERS_PENDING_INDEX_NAME: pending_index,
                settings.RESULTS_READY_PROBABILITY: config.results_ready_probability,
                settings.AUCTION_MODE: config.auction_mode,
                settings.RANDOM_ORDER_COUNT: config.random_order_count,
                settings.RESULTS_BUCKET_NAME: self.bucket.bucket_name,
                settings.MAX_ORDERS_PER_RUN: config.results_max_orders_per_run,
                settings.BATCH_MAX_ORDERS: config.results_batch_max_orders,
                settings.ALERT_TOPIC_ARN: self.topic.topic_arn,
                settings.EXPIRY_WARNING_SECONDS: config.expiry_warning_seconds,
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
                resources=[f"{table.table_arn}/index/{pending_index}"],
            )
        )
        # The `expiring` alert of orders a run takes close to their expiry.
        self.results_function.add_to_role_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        self.results_function.add_to_role_policy(_publish_with_key(self.topic_key))
        if config.auction_mode == "random":
            self.results_function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:BatchWriteItem"], resources=[table.table_arn]
                )
            )

        self.process_function = function(
            "ProcessFunction",
            handler="entrix.handlers.process.handler",
            description="Lambda B: stores a batch's results and rejections, alerts its rejected",
            layers=[deps_layer],
            settings={
                settings.ORDERS_TABLE_NAME: table.table_name,
                settings.RESULTS_BUCKET_NAME: self.bucket.bucket_name,
                settings.ALERT_TOPIC_ARN: self.topic.topic_arn,
                # A run's claim on an order lasts as long as the run may.
                settings.RESULT_LEASE_SECONDS: int(config.run_timeout.to_seconds()),
            },
            # Calls 32 at a time (two conditional writes per order, one read of the batch's
            # orders per 100, an object read and put per batch): 1,000 orders take ~1-2 s. Each
            # phase starts only if its longest call (34 s, entrix.aws.clients.PROCESS_CONFIG)
            # still ends 34 s + 2 s before the timeout, which is kept to release its claims.
            memory_size=256,
            timeout=Duration.minutes(2),
        )
        # Publishing to a KMS-encrypted topic: SNS needs a data key from the topic's key.
        self.process_function.add_to_role_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        self.process_function.add_to_role_policy(_publish_with_key(self.topic_key))
        self.process_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem", "dynamodb:BatchGetItem"],
                resources=[table.table_arn],
            )
        )
        # Reads an object before adding to it (and another run's, to find a line it stored).
        # Reading a key that does not exist yet (every batch's first write) answers 404 only to
        # a role that may list the bucket; without s3:ListBucket S3 answers 403 AccessDenied,
        # which Lambda B must treat as a fault, so no batch could ever be stored. Key names
        # are all it lists; the objects stay readable under the two prefixes only.
        self.process_function.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn])
        )
        self.process_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[
                    self.bucket.arn_for_objects(f"{RESULTS_PREFIX}*"),
                    self.bucket.arn_for_objects(f"{REJECTIONS_PREFIX}*"),
                ],
            )
        )

        self.summary_function = function(
            "RunSummaryFunction",
            handler="entrix.handlers.run_summary.handler",
            description="Adds up a results run's batches and writes its rejection digest",
            # Only to name the run's rejections in the digest: it reads nothing there.
            settings={settings.RESULTS_BUCKET_NAME: self.bucket.bucket_name},
            memory_size=128,
            timeout=Duration.seconds(10),
        )

        self.state_machine = results_state_machine(
            self,
            results_function=self.results_function,
            process_function=self.process_function,
            summary_function=self.summary_function,
            topic=self.topic,
            bucket=self.bucket,
            config=config,
        )
        # Its execution events: the operations alarms count the runs never ready from them.
        self.state_machine_logs = cast(logs.ILogGroup, self.node.find_child("StateMachineLogs"))
        # The SnsPublish tasks (results never ready, a failed batch, the digest) publish to the
        # encrypted topic as the state machine's role: SNS then needs a data key from the
        # topic's key on its behalf, which CDK's SnsPublish task does not grant.
        self.state_machine.add_to_role_policy(_publish_with_key(self.topic_key))
        self._schedule()
        # People read e-mail too: the digest, not 50,000 rejections a run.
        for address in config.alert_email_addresses:
            self.topic.add_subscription(
                subscriptions.EmailSubscription(address, filter_policy=people_filter())
            )
        self._client_rejection_subscriptions(config)
        self.slack: SlackForwarder | None = None
        if config.slack_webhook_secret_arn:
            self.slack = slack_forwarder(
                self, topic=self.topic, secret_arn=config.slack_webhook_secret_arn, config=config
            )
        self._acknowledge_findings()

    def _client_rejection_subscriptions(self, config: ServiceConfig) -> None:
        """Each configured client's endpoint (an SQS queue or HTTPS URL) receives its own
        rejections only: a filter policy on the message attributes every alert carries
        (entrix.aws.alerts), delivered raw (the alert's JSON as the body)."""
        for owner, endpoint in config.client_rejection_subscriptions:
            readable = re.sub(r"[^A-Za-z0-9]", "", owner)[:40]
            digest = hashlib.sha256(owner.encode()).hexdigest()[:8]
            sns.Subscription(
                self,
                f"ClientRejections{readable}{digest}",
                topic=self.topic,
                endpoint=endpoint,
                protocol=(
                    sns.SubscriptionProtocol.SQS
                    if endpoint.startswith("arn:")
                    else sns.SubscriptionProtocol.HTTPS
                ),
                raw_message_delivery=True,
                filter_policy=client_rejection_filter(owner),
            )

    def _schedule(self) -> None:
        """EventBridge starts a run every 5 minutes; starts it cannot deliver land in a DLQ."""
        self.dead_letter_queue = dead_letter_queue(
            self, "ScheduleDeadLetters", of="the dead-letter queue of the schedule's target"
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

    def _acknowledge_findings(self) -> None:
        bucket = logical_id(self.bucket)
        acknowledge(
            self.results_function.role,  # type: ignore[arg-type]
            f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{BATCHES_PREFIX}*]",
            "Lambda A writes each run's batches object under batches/ (keys hold the run's date "
            "and id); s3:PutObject only, nothing else in the bucket.",
        )
        for prefix in (RESULTS_PREFIX, REJECTIONS_PREFIX):
            acknowledge(
                self.process_function.role,  # type: ignore[arg-type]
                f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{prefix}*]",
                f"Lambda B reads and writes one JSON Lines object per batch under {prefix} (keys "
                "hold the run's date and id); s3:GetObject and s3:PutObject only, nothing else "
                "in the bucket.",
            )
