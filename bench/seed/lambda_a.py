"""Seed-style Lambda A: the same AWS calls as `entrix.handlers.results`, through boto3 resources.

One Query per pending-index shard (paged), oldest first, a result drawn for each order, and the
run's batches written as one S3 object. A result is the seed's shape with the order's key and
version, `{"order_key", "version", "status", "power"}` (the batch item of
`entrix.auction.batch_item`): the index projects keys only, and Lambda B writes an accepted
order's line from the item it claims, so neither Lambda A reads an order's fields.
"""

import json
import os
import random
import time
from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

PENDING_SHARDS = 16  # entrix.orders.intake.PENDING_SHARDS

dynamodb = boto3.resource("dynamodb")
table: Any = dynamodb.Table(os.environ["ORDERS_TABLE_NAME"])
s3 = boto3.resource("s3")
bucket: Any = s3.Bucket(os.environ["RESULTS_BUCKET_NAME"])


def pending_orders():
    orders = []
    for shard in range(PENDING_SHARDS):
        arguments = {
            "IndexName": os.environ["ORDERS_PENDING_INDEX_NAME"],
            "KeyConditionExpression": Key("pending_shard").eq(f"{shard:02d}"),
        }
        while True:
            page = table.query(**arguments)
            orders.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(orders, key=lambda order: order["version"])


def lambda_handler(event, context):
    if random.random() >= float(os.environ.get("RESULTS_READY_PROBABILITY", "0.5")):
        return {"results": False}
    run_id = str((event or {}).get("run_id") or time.time_ns())
    results = [
        {
            "order_key": order["order_key"],
            "version": order["version"],
            "status": random.choice(["accepted", "rejected"]),
            "power": random.randint(1, 100),
        }
        for order in pending_orders()
    ]
    if not results:
        return {"results": True, "order_count": 0, "batch_count": 0}
    run_date = datetime.now(UTC).strftime("%Y-%m-%d")
    size = int(os.environ.get("BATCH_MAX_ORDERS", "1000"))
    batches = [
        {
            "results_key": f"results/date={run_date}/run={run_id}/batch-{number:05d}.jsonl",
            "orders": results[start : start + size],
        }
        for number, start in enumerate(range(0, len(results), size), start=1)
    ]
    key = f"batches/date={run_date}/{run_id}.json"
    bucket.put_object(Key=key, Body=json.dumps(batches).encode(), ContentType="application/json")
    return {
        "results": True,
        "order_count": len(results),
        "batch_count": len(batches),
        "batches_key": key,
    }
