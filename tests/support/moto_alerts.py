"""An SQS queue subscribed to a moto SNS topic: how tests read what was published to it."""

from __future__ import annotations

from typing import Any


def subscribe_queue(sns: Any, sqs: Any, topic_arn: str, name: str = "alerts") -> str:
    """Create a queue receiving the topic's messages raw (the message body as published)."""
    queue_url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return queue_url
