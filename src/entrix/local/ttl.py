"""DynamoDB TTL, emulated: moto stores a table's TTL setting but never expires items.

Every `interval` seconds the sweeper deletes the items whose TTL attribute is a number of epoch
seconds at or before now, as DynamoDB does (DynamoDB may take up to a few days; here it is
seconds). Items without the attribute, or with a non-number, are left alone, as in DynamoDB.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from entrix.local.periodic import Periodic

logger = logging.getLogger(__name__)


def sweep(
    dynamodb: Any,
    table_name: str,
    ttl_attribute: str,
    now: float,
    deleted_key: Callable[[str, dict[str, Any]], None] | None = None,
) -> int:
    """Delete the expired items of one table; returns how many were deleted. `deleted_key` is
    told each deleted item's key (the stream poller marks those REMOVEs as TTL's).

    The scan's filter selects the expired items on the server and the projection returns only
    their keys and TTL: returning every item to compare here cost 3.4 s a sweep at 10,000 items
    (0.4 s now), which throttled the local API to a third while it ran. The type test comes
    first, as moto's comparison fails on a string TTL value. An item rewritten meanwhile with
    another TTL value is kept, by a condition.
    """
    key_names = [
        k["AttributeName"]
        for k in dynamodb.describe_table(TableName=table_name)["Table"]["KeySchema"]
    ]
    names = {"#ttl": ttl_attribute, **{f"#key{i}": name for i, name in enumerate(key_names)}}
    arguments: dict[str, Any] = {
        "TableName": table_name,
        "FilterExpression": "attribute_type(#ttl, :number) AND #ttl <= :now",
        "ProjectionExpression": ", ".join(["#ttl", *(f"#key{i}" for i in range(len(key_names)))]),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":number": {"S": "N"}, ":now": {"N": str(Decimal(str(now)))}},
    }
    deleted = 0
    while True:
        page = dynamodb.scan(**arguments)
        for item in page.get("Items", []):
            try:
                dynamodb.delete_item(
                    TableName=table_name,
                    Key={name: item[name] for name in key_names},
                    ConditionExpression="#ttl = :seen",
                    ExpressionAttributeNames={"#ttl": ttl_attribute},
                    ExpressionAttributeValues={":seen": item[ttl_attribute]},
                )
            except dynamodb.exceptions.ConditionalCheckFailedException:
                continue
            if deleted_key is not None:
                deleted_key(table_name, {name: item[name] for name in key_names})
            deleted += 1
        if "LastEvaluatedKey" not in page:
            return deleted
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class TtlSweeper(Periodic):
    """Sweeps every table that has a TTL attribute, on a background thread."""

    def __init__(
        self,
        dynamodb: Any,
        tables: Mapping[str, str | None],
        interval: float = 5.0,
        clock: Callable[[], float] = time.time,
        deleted_key: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__("ttl-sweeper", interval)
        self.dynamodb = dynamodb
        self.tables = {name: attribute for name, attribute in tables.items() if attribute}
        self.clock = clock
        self.deleted_key = deleted_key

    def tick(self) -> None:
        for table_name, attribute in self.tables.items():
            try:
                sweep(self.dynamodb, table_name, attribute, self.clock(), self.deleted_key)
            except Exception:
                logger.exception("TTL sweep of %s failed", table_name)
