"""Issue 18 in the deployed pipeline (moto): a result line read back from S3 carries the posted
number's exact text, and a client's queue subscribed with a filter policy on the alert topic
receives only its own rejections."""

from __future__ import annotations

import json
import time
from typing import Any

from entrix.aws.orders_table import OrdersTable
from entrix.handlers import ingest
from tests.pipeline.conftest import ACCEPT, READY, REJECT, Pipeline
from tests.support.api_events import api_event
from tests.support.moto_orders import OWNER
from tests.support.moto_usage import unlimited_usage

EXACT = "12345678901234567890.123456789"


def _post_text(pipeline: Pipeline, body: str, owner: str = OWNER) -> dict[str, Any]:
    """POST /orders of `owner` with `body` exactly as sent, through the ingest handler."""
    event = api_event(owner, headers={"Content-Type": "application/json"}, body=body)
    table = OrdersTable(pipeline.client("dynamodb"), pipeline.table)
    reply = ingest.handle(
        event, table, time.time(), usage=unlimited_usage(pipeline.client("dynamodb"))
    )
    assert reply["statusCode"] == 201, reply
    return reply


def test_a_result_line_in_s3_carries_the_posted_number_exactly(pipeline: Pipeline) -> None:
    _post_text(pipeline, f'[{{"record_id": "exact", "parameter_1": "p", "parameter_2": {EXACT}}}]')
    pipeline.script(READY, ACCEPT)

    assert pipeline.summary("run-1")["accepted"] == 1

    s3 = pipeline.client("s3")
    (key,) = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=pipeline.bucket)["Contents"]
        if o["Key"].startswith("results/")
    ]
    body = s3.get_object(Bucket=pipeline.bucket, Key=key)["Body"].read().decode()
    (line,) = body.splitlines()
    assert f'"parameter_2": {EXACT},' in line, line
    assert "e+19" not in line
    assert json.loads(line)["record_id"] == "exact"


def test_a_clients_filtered_subscription_receives_only_its_own_rejections(
    pipeline: Pipeline,
) -> None:
    sqs, sns = pipeline.client("sqs"), pipeline.client("sns")
    queue_url = sqs.create_queue(QueueName="desk-a-rejections")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=pipeline.topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={
            "RawMessageDelivery": "true",
            "FilterPolicy": json.dumps({"owner": ["desk-a"], "status": ["rejected"]}),
        },
    )
    pipeline.add_orders("a-1", "a-2", owner="desk-a")
    pipeline.add_orders("b-1", "b-2", owner="desk-b")
    pipeline.script(READY, REJECT, REJECT, REJECT, REJECT)

    assert pipeline.summary("run-1")["rejected"] == 4

    everything = pipeline.alerts()
    assert sorted(a["owner"] for a in everything) == ["desk-a", "desk-a", "desk-b", "desk-b"]
    received = []
    while messages := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages"):
        received.extend(messages)
    alerts = [json.loads(message["Body"]) for message in received]
    assert sorted(a["record_id"] for a in alerts) == ["a-1", "a-2"]
    assert {a["owner"] for a in alerts} == {"desk-a"}
    for message in received:
        attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
        assert attributes == {"owner": "desk-a", "status": "rejected", "run": "run-1"}
