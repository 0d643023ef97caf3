"""The order history archive: the orders table's stream, read by the archiver into S3.

An event source mapping hands the archiver (entrix.handlers.archive) batches of the stream's
records; it writes each batch's changes that matter as one JSON Lines object under `history/`
in the results bucket (kept `history_retention_days`, results_storage). A batch it reports failed
is retried, split in halves on repeated failure (bisect), and what still fails after
RETRY_ATTEMPTS goes to a dead-letter queue (the stream's shard and sequence numbers, so the
records can be read again within the stream's 24 h) whose alarm pages operations: no change is
dropped unseen.

Claims and releases are skipped in code, not by filter criteria: a filter sees one image at a
time and cannot tell a release from an amend (both are a pending item without a claim). The
cost: every order's claim and release invoke the archiver too, in the same batches (about three
records an order where two matter).
"""

from __future__ import annotations

from aws_cdk import Duration, Names
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from constructs import Construct

from entrix import settings
from entrix.orders.history import HISTORY_PREFIX
from infra.config import ServiceConfig
from infra.constructs.dead_letters import dead_letter_queue
from infra.constructs.lambda_code import live_alias, python_function
from infra.nag import acknowledge, logical_id

# Tries of a failing batch (halves included) before its records go to the dead-letter queue.
RETRY_ATTEMPTS = 10


class HistoryArchive(Construct):
    """The archiver, its stream mapping and the mapping's dead-letter queue."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: ServiceConfig,
        table: dynamodb.ITable,
        bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, id)
        self.function = python_function(
            self,
            "ArchiveFunction",
            handler="entrix.handlers.archive.handler",
            description="Writes the orders table's stream (order history) to the results bucket",
            log_retention=config.log_retention,
            settings={settings.RESULTS_BUCKET_NAME: bucket.bucket_name},
            memory_size=256,
            timeout=Duration.minutes(1),
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{HISTORY_PREFIX}*")]
            )
        )
        self.dead_letter_queue = dead_letter_queue(
            self,
            "ArchiveDeadLetters",
            of="the on-failure destination of the history stream mapping",
        )
        # The mapping invokes the live alias, but stays where DynamoEventSource put it on the
        # function before the alias existed (the same construct id under the function): its
        # logical id is unchanged, so a deploy updates FunctionName in place. A new logical id
        # would make CloudFormation create a new mapping at TRIM_HORIZON, which re-reads the
        # stream's last 24 h (duplicate history objects) and trips HistoryLag mid-deploy.
        # (override_logical_id would pin one stack's id; the id holds the stage's path.)
        alias = live_alias(self.function)
        lambda_.EventSourceMapping(
            self.function,
            f"DynamoDBEventSource:{Names.node_unique_id(table.node)}",
            target=alias,
            event_source_arn=table.table_stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=config.history_batch_size,
            max_batching_window=Duration.seconds(config.history_batching_window_seconds),
            bisect_batch_on_error=True,
            retry_attempts=RETRY_ATTEMPTS,
            report_batch_item_failures=True,
            on_failure=sources.SqsDlq(self.dead_letter_queue),
        )
        # What DynamoEventSource grants; alias grants go to the function's role.
        table.grant_stream_read(alias)
        acknowledge(
            self.function.role,  # type: ignore[arg-type]
            f"AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/{HISTORY_PREFIX}*]",
            "The archiver writes one JSON Lines object per stream batch under history/ (keys "
            "hold the date and the batch's sequence numbers); s3:PutObject only.",
        )
