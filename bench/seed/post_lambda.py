"""The seed's post_lambda: stores the POSTed orders with a boto3 resource Table.

The resource and Table are built at import; each request's orders go through the Table's
batch_writer (one BatchWriteItem for up to 25 orders, unconditional). One change to the seed:
each item carries the table's key, `order_key` (the caller's `sub` and the record_id), which the
table now requires; the seed stored the order under its record_id alone.
"""

import base64
import json
import os
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3

dynamodb = boto3.resource("dynamodb")
table: Any = dynamodb.Table(os.environ["ORDERS_TABLE_NAME"])


def lambda_handler(event, context):
    body = event["body"]
    if event.get("isBase64Encoded"):  # this API hands JSON bodies over base64-encoded
        body = base64.b64decode(body)
    orders = json.loads(body, parse_float=Decimal)
    owner = event["requestContext"]["authorizer"]["sub"]
    now = time.time()
    received_at = datetime.fromtimestamp(now, UTC).isoformat()
    with table.batch_writer() as batch:
        for order in orders:
            batch.put_item(
                Item={
                    **order,
                    "order_key": f"{owner}#{order['record_id']}",
                    "received_at": received_at,
                    "expires_at": int(now) + 86_400,
                    "result_status": "pending",
                }
            )
    return {"statusCode": 201, "body": json.dumps({"stored": len(orders)})}
