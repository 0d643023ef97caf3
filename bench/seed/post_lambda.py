"""The seed's post_lambda as it loads: boto3 resource and Table built at import time."""

import json  # noqa: F401  (the seed imports it at module level)
import os

import boto3

dynamodb = boto3.resource("dynamodb")
table = dynamodb.Table(os.environ.get("TABLE_NAME", "orders"))
