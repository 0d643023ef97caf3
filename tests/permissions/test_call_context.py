"""What `entrix.local.call_log` keeps of a DynamoDB call for its condition keys: the attributes
it writes or projects and the key values it names, for the calls the scenario of
test_lambda_calls.py does not make (Lambda A's BatchWriteItem in random mode, a projected
BatchGetItem, an expression with placeholders)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from entrix.local import call_log
from entrix.local.call_log import Call


def _recorded(operation: str, response: dict[str, Any], **parameters: Any) -> Call:
    client = boto3.client(
        "dynamodb", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    with Stubber(client) as stub, call_log.recording() as calls, call_log.running("a-function"):
        stub.add_response(operation, response)
        getattr(client, operation)(**parameters)
    (call,) = calls
    return call


def test_a_batch_write_names_every_items_attributes_and_keys() -> None:
    call = _recorded(
        "batch_write_item",
        {},
        RequestItems={
            "orders": [
                {"PutRequest": {"Item": {"order_key": {"S": "a#1"}, "power": {"N": "2"}}}},
                {"DeleteRequest": {"Key": {"order_key": {"S": "a#2"}}}},
            ]
        },
    )
    p = call.parameters
    assert p["RequestItems"] == ["orders"]
    assert p["attributes"] == ["order_key", "power"]
    assert p["keys"] == [{"order_key": "a#1", "power": "2"}, {"order_key": "a#2"}]
    assert "Item" not in p and "projected" not in p


def test_an_update_names_the_attributes_it_sets_adds_and_removes() -> None:
    call = _recorded(
        "update_item",
        {},
        TableName="usage",
        Key={"usage_key": {"S": "desk-a#2026"}},
        UpdateExpression="ADD #count :amount SET expires_at = :at REMOVE old.part, tags[0]",
        ExpressionAttributeNames={"#count": "orders"},
        ExpressionAttributeValues={":amount": {"N": "1"}, ":at": {"N": "9"}},
        ReturnValues="UPDATED_NEW",
    )
    p = call.parameters
    assert p["attributes"] == ["expires_at", "old", "orders", "tags", "usage_key"]
    assert p["keys"] == [{"usage_key": "desk-a#2026"}]
    assert p["ReturnValues"] == "UPDATED_NEW"


@pytest.mark.parametrize("projection", ["order_key, #s", None])
def test_a_read_names_what_it_projects_and_its_keys(projection: str | None) -> None:
    wanted: dict[str, Any] = {"Keys": [{"order_key": {"S": "a#1"}}]}
    if projection:
        wanted |= {"ProjectionExpression": projection, "ExpressionAttributeNames": {"#s": "state"}}
    call = _recorded("batch_get_item", {}, RequestItems={"orders": wanted})
    p = call.parameters
    assert p["keys"] == [{"order_key": "a#1"}]
    assert bool(p.get("projected")) == bool(projection)
    if projection:
        assert p["attributes"] == ["order_key", "state"]


def test_a_query_names_the_partition_value_of_its_key_condition() -> None:
    call = _recorded(
        "query",
        {"Items": []},
        TableName="orders",
        IndexName="pending",
        KeyConditionExpression="#shard = :shard AND version >= :since",
        ExpressionAttributeNames={"#shard": "pending_shard"},
        ExpressionAttributeValues={":shard": {"S": "3"}, ":since": {"S": "2026"}},
    )
    assert call.parameters["keys"] == [{"pending_shard": "3"}]
    assert call.parameters["IndexName"] == "pending"
