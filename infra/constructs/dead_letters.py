"""The one shape of a dead-letter queue: what an AWS service could not deliver waits here 14 days
(encrypted, TLS only) for an alarm to page someone and a person to replay it.

Each says it is a dead-letter queue (`RedriveAllowPolicy` allowAll: SQS's default, written out),
which is what Control Tower's CT.SQS.PR.1 accepts from a queue that has no dead-letter queue of
its own."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge


def dead_letter_queue(scope: Construct, id: str, *, of: str) -> sqs.Queue:
    """A queue ("`id`" in `scope`) holding what `of` (e.g. "the Slack forwarder's on-failure
    destination") could not deliver; it has no dead-letter queue of its own, which cdk-nag is
    told."""
    queue = sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
        redrive_allow_policy=sqs.RedriveAllowPolicy(
            redrive_permission=sqs.RedrivePermission.ALLOW_ALL
        ),
    )
    acknowledge(queue, "AwsSolutions-SQS3", f"This queue is itself {of}.")
    return queue
