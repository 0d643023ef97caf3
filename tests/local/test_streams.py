"""The local stream poller over moto's DynamoDB stream: Lambda's event shape, TTL deletions
marked as DynamoDB marks them, retries from the first failed record, the on-failure queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.moto_api._internal import moto_api_backend
from moto.server import ThreadedMotoServer

from entrix.local.harness import HOST, free_port
from entrix.local.lambda_runner import Invocation
from entrix.local.streams import TTL_IDENTITY, StreamMapping, StreamPoller, TtlDeletions
from entrix.local.ttl import sweep

REGION = "eu-west-1"


def client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """moto's server: its in-process mock does not route DynamoDB Streams' DescribeStream."""
    moto_api_backend.reset()
    port = free_port(HOST)
    server = ThreadedMotoServer(ip_address=HOST, port=port)
    server.start()
    url = f"http://{HOST}:{port}"
    try:
        dynamodb = client("dynamodb", url)
        table = dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        sqs = client("sqs", url)
        queue = sqs.create_queue(QueueName="dead")["QueueUrl"]
        yield {
            "dynamodb": dynamodb,
            "sqs": sqs,
            "queue": queue,
            "stream": table["LatestStreamArn"],
            "streams": client("dynamodbstreams", url),
        }
    finally:
        server.stop()


def poller(aws: dict[str, Any], replies: list[dict[str, Any]], retries: int = 1) -> Any:
    """A poller whose function records each event and answers the next of `replies`."""
    events: list[dict[str, Any]] = []

    def invoke(name: str, event: Any) -> Invocation:
        events.append(event)
        reply = replies.pop(0) if replies else {"batchItemFailures": []}
        return Invocation(payload=json.dumps(reply), errored=False)

    mapping = StreamMapping(
        logical_id="M",
        function_name="f",
        stream_arn=aws["stream"],
        batch_size=10,
        retry_attempts=retries,
        on_failure_arn=f"arn:aws:sqs:{REGION}:123456789012:dead",
    )
    deletions = TtlDeletions()
    instance = StreamPoller(aws["streams"], aws["sqs"], [mapping], invoke, REGION, deletions)
    return instance, mapping, events, deletions


def test_records_arrive_in_lambdas_shape_and_ttl_deletions_are_marked(aws: dict) -> None:
    dynamodb = aws["dynamodb"]
    for key in ("swept", "deleted"):
        dynamodb.put_item(TableName="t", Item={"id": {"S": key}, "ttl": {"N": "1"}})
    instance, mapping, events, deletions = poller(aws, [])
    assert sweep(dynamodb, "t", "ttl", now=1_000, deleted_key=deletions.add) == 2
    dynamodb.put_item(TableName="t", Item={"id": {"S": "deleted"}, "ttl": {"N": "5000"}})
    dynamodb.delete_item(TableName="t", Key={"id": {"S": "deleted"}})

    instance.poll(mapping)

    (event,) = events
    records = event["Records"]
    assert [r["eventName"] for r in records] == [
        "INSERT", "INSERT", "REMOVE", "REMOVE", "INSERT", "REMOVE",
    ]  # fmt: skip
    for record in records:
        assert record["eventSourceARN"] == aws["stream"] and record["awsRegion"] == REGION
        assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
        assert record["dynamodb"]["SequenceNumber"]
    marked = [r["dynamodb"]["Keys"]["id"]["S"] for r in records if "userIdentity" in r]
    assert sorted(marked) == ["deleted", "swept"], "both swept; the later delete is not TTL's"
    assert records[-1].get("userIdentity") is None
    assert all(r["userIdentity"] == TTL_IDENTITY for r in records if "userIdentity" in r)


def test_a_failed_batch_is_retried_from_its_failed_record_then_sent_to_the_queue(
    aws: dict,
) -> None:
    for key in ("a", "b", "c"):
        aws["dynamodb"].put_item(TableName="t", Item={"id": {"S": key}})
    instance, mapping, events, _ = poller(aws, [], retries=1)
    instance.poll(mapping)
    numbers = [r["dynamodb"]["SequenceNumber"] for r in events[0]["Records"]]
    events.clear()

    failing = {"batchItemFailures": [{"itemIdentifier": numbers[1]}]}
    instance, mapping, events, _ = poller(aws, [failing, failing])
    instance.poll(mapping)  # a, b, c: fails from b
    instance.poll(mapping)  # b, c again: fails again, retries spent
    instance.poll(mapping)  # nothing new

    assert [[r["dynamodb"]["SequenceNumber"] for r in e["Records"]] for e in events] == [
        numbers,
        numbers[1:],
    ]
    (message,) = aws["sqs"].receive_message(QueueUrl=aws["queue"])["Messages"]
    info = json.loads(message["Body"])["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (numbers[1], numbers[2])
    assert (info["batchSize"], info["streamArn"]) == (2, aws["stream"])
