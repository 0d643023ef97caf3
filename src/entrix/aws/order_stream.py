"""The orders table's DynamoDB stream: its records as the history's changes.

A record's images are DynamoDB JSON (numbers as `N` text); they are read with
entrix.aws.orders_table.plain_item, so numbers stay exact Decimal, never a float. DynamoDB marks
the deletions its TTL makes with `userIdentity` {"type": "Service", "principalId":
"dynamodb.amazonaws.com"}; the local runtime's stream sends the same for its sweeper's deletions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from entrix.aws.orders_table import plain_item
from entrix.orders.history import Change

TTL_PRINCIPAL = "dynamodb.amazonaws.com"
TTL_IDENTITY = {"type": "Service", "principalId": TTL_PRINCIPAL}


def change(record: Mapping[str, Any]) -> Change:
    """The change a stream record (as Lambda's event source mapping delivers it) describes."""
    dynamodb = record["dynamodb"]
    identity = record.get("userIdentity") or {}
    return Change(
        event_name=record["eventName"],
        sequence_number=dynamodb["SequenceNumber"],
        created_at=float(dynamodb["ApproximateCreationDateTime"]),
        new=_image(dynamodb.get("NewImage")),
        old=_image(dynamodb.get("OldImage")),
        by_ttl=identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL,
    )


def _image(image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if image is None else plain_item(image)
