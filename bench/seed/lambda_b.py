"""Seed-style Lambda B: the same AWS calls as `entrix.handlers.process`, through boto3 resources.

Per order a conditional UpdateItem to claim the version the batch names; one PutObject of the
accepted results as JSON Lines; one PublishBatch per ten rejected orders (the SNS Topic resource
has no PublishBatch action, so its client makes the call); then a conditional UpdateItem
recording each result. The owner and record_id come from the claimed item, as ours take them.
"""

import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

AVAILABLE_TO_RUN = (
    "version = :version AND ("
    "(result_status = :pending AND ("
    "attribute_not_exists(claimed_by) OR claimed_by = :run OR claim_expires_at < :now))"
    " OR result_run_id = :run)"
)

dynamodb = boto3.resource("dynamodb")
table: Any = dynamodb.Table(os.environ["ORDERS_TABLE_NAME"])
s3 = boto3.resource("s3")
bucket: Any = s3.Bucket(os.environ["RESULTS_BUCKET_NAME"])
sns = boto3.resource("sns")
topic: Any = sns.Topic(os.environ["ALERT_TOPIC_ARN"])


def update(order, expression, run_id, now, values):
    try:
        return table.update_item(
            Key={"order_key": order["order_key"]},
            UpdateExpression=expression,
            ConditionExpression=AVAILABLE_TO_RUN,
            ExpressionAttributeValues={
                ":version": order["version"],
                ":pending": "pending",
                ":run": run_id,
                ":now": now,
                **values,
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise


def lambda_handler(event, context):
    run_id = event["run_id"]
    clock = time.time()
    now = int(clock)
    result_at = datetime.fromtimestamp(clock, UTC).isoformat(timespec="milliseconds")
    lease = int(os.environ.get("RESULT_LEASE_SECONDS", "3600"))
    counts = {"accepted": 0, "rejected": 0, "skipped": 0, "failed": 0}
    accepted, rejected = [], []
    for order in event["orders"]:
        claim = "SET claimed_by = :run, claim_expires_at = :until"
        item = update(order, claim, run_id, now, {":until": now + lease})
        if item is None:
            counts["skipped"] += 1
        elif order["status"] == "accepted":
            accepted.append((order, item))
        else:
            rejected.append((order, item))
    if accepted:
        lines = [
            json.dumps(
                {**item, "status": "accepted", "power": order["power"], "run_id": run_id},
                default=str,
            )
            for order, item in accepted
        ]
        bucket.put_object(
            Key=event["results_key"],
            Body="".join(f"{line}\n" for line in lines).encode(),
            ContentType="application/x-ndjson",
        )
    for start in range(0, len(rejected), 10):
        entries = [
            {
                "Id": str(position),
                "Message": json.dumps(
                    {
                        "text": f"Order {item['record_id']} of {item['owner']} was rejected "
                        f"in run {run_id}",
                        "record_id": item["record_id"],
                        "owner": item["owner"],
                        "status": "rejected",
                        "run": run_id,
                        "power": order["power"],
                    }
                ),
            }
            for position, (order, item) in enumerate(rejected[start : start + 10])
        ]
        topic.meta.client.publish_batch(TopicArn=topic.arn, PublishBatchRequestEntries=entries)
    record = (
        "SET result_status = :status, power = :power, result_run_id = :run, result_at = :at "
        "REMOVE claimed_by, claim_expires_at, pending_shard"
    )
    for order, _ in accepted + rejected:
        values = {":status": order["status"], ":power": order["power"], ":at": result_at}
        recorded = update(order, record, run_id, now, values)
        counts[order["status"] if recorded is not None else "skipped"] += 1
    return counts
