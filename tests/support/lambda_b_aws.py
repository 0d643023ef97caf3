"""What Lambda B works on, inside a moto mock: the orders table with its pending index, the
results bucket, and the alert topic with a queue that receives what is published to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from tests.support.moto_alerts import subscribe_queue
from tests.support.moto_orders import create_orders_table

REGION = "eu-west-1"


@dataclass(frozen=True)
class LambdaBAws:
    dynamodb: Any
    s3: Any
    sqs: Any
    topic_arn: str
    queue_url: str


def lambda_b_aws(bucket: str) -> LambdaBAws:
    """Create them (call inside `mock_aws()`); the test's clients and the topic and queue."""
    dynamodb, s3, sns, sqs = (
        boto3.client(service, region_name=REGION) for service in ("dynamodb", "s3", "sns", "sqs")
    )
    create_orders_table(dynamodb)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    topic_arn = sns.create_topic(Name="alerts")["TopicArn"]
    return LambdaBAws(dynamodb, s3, sqs, topic_arn, subscribe_queue(sns, sqs, topic_arn))
