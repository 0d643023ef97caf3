"""SQS queues: the template's queue properties are passed on as the queue attributes they name."""

from __future__ import annotations

import json
from typing import Any

from entrix.local.deploy.deployment import physical_name
from entrix.local.deploy.registry import DeployContext, creates
from entrix.local.template import Resource

# Queue properties that are SQS queue attributes of the same name (KMS is not emulated).
QUEUE_ATTRIBUTES = frozenset(
    {
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
        "RedrivePolicy",
        "RedriveAllowPolicy",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "SqsManagedSseEnabled",
    }
)


@creates("AWS::SQS::Queue")
def create_queue(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    name = p.get("QueueName") or physical_name(deployer.pseudo.stack_name, resource.logical_id, 80)
    if p.get("FifoQueue") and not name.endswith(".fifo"):
        name = name[:75] + ".fifo"
    deployer.name(resource, name)
    attributes = {
        key: _attribute_text(value) for key, value in p.items() if key in QUEUE_ATTRIBUTES
    }
    url = deployer.clients("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    deployer.provide(resource, url, QueueUrl=url, QueueName=name, Arn=deployer.arn("sqs", name))


def _attribute_text(value: Any) -> str:
    """SQS attributes are strings: JSON for policies, lowercase for booleans."""
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
