"""Seed-style GET /orders/{record_id}: one GetItem through a boto3 resource Table, under the
caller's key (the authorizer's `sub` and the record_id), as ours reads it."""

import json
import os
import time
from typing import Any

import boto3

dynamodb = boto3.resource("dynamodb")
table: Any = dynamodb.Table(os.environ["ORDERS_TABLE_NAME"])


def lambda_handler(event, context):
    record_id = (event.get("pathParameters") or {}).get("record_id")
    owner = event["requestContext"]["authorizer"]["sub"]
    item = table.get_item(Key={"order_key": f"{owner}#{record_id}"}).get("Item")
    if item is None or item.get("expires_at", 0) <= time.time():
        return {"statusCode": 404, "body": json.dumps({"message": "no such order"})}
    return {"statusCode": 200, "body": json.dumps(item, default=str)}
