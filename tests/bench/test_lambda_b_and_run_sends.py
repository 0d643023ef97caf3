"""The parts of the Lambda B latency row and the run-sends row that decide their figures: the
baseline copy does Lambda B's work, the endpoint's delay holds every request back, the Slack
filter is the forwarder's subscription's, half the orders are rejected, and the projection is the
line through the two measurements. (`tests/bench/test_smoke.py` runs both rows once.)"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bench import lambda_b_latency, run_sends
from bench.baselines import lambda_b_sequential
from entrix.auction.platform import AuctionPlatform, PendingOrder, Status
from tests.support.lambda_b_aws import LambdaBAws, lambda_b_aws
from tests.support.moto_orders import TABLE, order_key, put_order, table_items

BUCKET = "bench-results"
KEY = "results/date=2026-12-06/run=run-1/batch-00001.jsonl"


@pytest.fixture
def aws() -> Iterator[LambdaBAws]:
    with mock_aws():
        yield lambda_b_aws(BUCKET)


def _batch(made: LambdaBAws, statuses: list[str]) -> dict[str, Any]:
    orders = []
    for number, status in enumerate(statuses):
        item = put_order(made.dynamodb, f"order-{number}")
        orders.append(
            {
                "order_key": order_key(f"order-{number}"),
                "version": item["version"],
                "status": status,
                "power": number + 1,
            }
        )
    return {"run_id": "run-1", "results_key": KEY, "orders": orders}


def test_the_sequential_baseline_stores_alerts_and_records_as_lambda_b_does(
    aws: LambdaBAws,
) -> None:
    statuses = ["accepted", "rejected"] * 6
    stores = lambda_b_sequential.Stores(
        dynamodb=aws.dynamodb,
        s3=aws.s3,
        sns=boto3.client("sns", region_name="eu-west-1"),
        table_name=TABLE,
        bucket=BUCKET,
        topic_arn=aws.topic_arn,
        lease_seconds=1800,
    )

    reply = lambda_b_sequential.handler(_batch(aws, statuses), stores)

    assert reply == {"accepted": 6, "rejected": 6, "skipped": 0, "failed": 0}
    lines = aws.s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read().decode().splitlines()
    assert sorted(json.loads(line)["record_id"] for line in lines) == sorted(
        f"order-{n}" for n in range(0, 12, 2)
    )
    alerts = []
    while received := aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        alerts += [json.loads(message["Body"])["record_id"] for message in received]
        for message in received:
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(alerts) == sorted(f"order-{n}" for n in range(1, 12, 2))
    items = table_items(aws.dynamodb, TABLE)
    assert {item["result_status"] for item in items.values()} == {"accepted", "rejected"}
    assert not any("claimed_by" in item or "pending_shard" in item for item in items.values())


def test_the_delayed_endpoint_holds_each_request_back_before_moto_answers() -> None:
    with lambda_b_latency.delayed_endpoint() as (url, delay):
        delay.seconds = 0.01
        held: list[str] = []
        original = delay.app
        delay.app = lambda environ, start: (
            held.append(environ["PATH_INFO"]) or original(environ, start)
        )
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=10) as reply:
            assert reply.status == 200
    assert held == ["/moto-api/data.json"]


def test_the_table_is_created_as_the_template_defines_it() -> None:
    template = {
        "Resources": {
            "Orders": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "KeySchema": [{"AttributeName": "order_key", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "order_key", "AttributeType": "S"}],
                    "GlobalSecondaryIndexes": [
                        {
                            "IndexName": "pending-results",
                            "KeySchema": [{"AttributeName": "pending_shard", "KeyType": "HASH"}],
                            "Projection": {"ProjectionType": "KEYS_ONLY"},
                            "ContributorInsightsSpecification": {"Enabled": True},
                        }
                    ],
                    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                },
            }
        }
    }

    definition = lambda_b_latency.table_definition(template)

    assert definition["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "pending-results",
            "KeySchema": [{"AttributeName": "pending_shard", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ]
    assert definition["KeySchema"] == [{"AttributeName": "order_key", "KeyType": "HASH"}]


def _slack_template(subscription: dict[str, Any]) -> dict[str, Any]:
    return {
        "Resources": {
            "SlackFunction1": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Handler": run_sends.SLACK_HANDLER},
            },
            "ClientQueue": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {"Endpoint": "arn:aws:sqs:x", "FilterPolicy": {"owner": ["b"]}},
            },
            "SlackFunctionLiveAlias": {
                "Type": "AWS::Lambda::Alias",
                "Properties": {"FunctionName": {"Ref": "SlackFunction1"}, "Name": "live"},
            },
            # SNS delivers to the forwarder's alias, as every caller invokes one.
            "SlackSubscription": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {"Endpoint": {"Ref": "SlackFunctionLiveAlias"}, **subscription},
            },
        }
    }


def test_the_slack_filter_is_the_forwarders_subscriptions() -> None:
    policy = {"status": [{"anything-but": ["rejected"]}]}

    found = run_sends.slack_filter_of(
        _slack_template({"FilterPolicy": policy, "FilterPolicyScope": "MessageAttributes"})
    )
    unfiltered = run_sends.slack_filter_of(_slack_template({}))

    assert found.policy == policy
    assert list(found.attributes()) == ["FilterPolicyScope", "FilterPolicy"]
    assert unfiltered.policy is None and unfiltered.attributes() == {}


def test_lambda_a_rejects_every_other_order_with_the_alternating_source() -> None:
    platform = AuctionPlatform(run_sends.Alternating(), ready_probability=1.0)
    assert platform.results_ready()

    statuses = [
        platform.result_for(PendingOrder(order_key=f"o{n}", version="v")).status for n in range(100)
    ]

    assert statuses.count(Status.REJECTED) == 50
    assert statuses[:4] == [Status.REJECTED, Status.ACCEPTED, Status.REJECTED, Status.ACCEPTED]


def test_counts_are_projected_on_the_line_through_both_runs() -> None:
    small = run_sends.Sent(2_000, None, {"dynamodb Query requests": 16, "messages": 1_000})  # type: ignore[arg-type]
    large = run_sends.Sent(4_000, None, {"dynamodb Query requests": 16, "messages": 2_000})  # type: ignore[arg-type]

    assert run_sends.projected(small, large, "dynamodb Query requests", 100_000) == 16
    assert run_sends.projected(small, large, "messages", 100_000) == 50_000
