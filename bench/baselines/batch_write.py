"""The write path of POST /orders before issue 17 (commit 721c531), kept as the ingest rows'
baseline: every order put unconditionally, 25 a BatchWriteItem, the items DynamoDB leaves
unprocessed sent again after a pause (`OrdersTable.put_items` and `intake.stored_item` there,
without the deadline and the retries of whole failed calls, which a healthy run never needs).

Its items are that commit's (`stored_item`: the order's fields, `received_at`, `expires_at`,
`result_status`, `pending_shard`), with one change: they carry the table's key today,
`order_key`, since they are written to today's table. That design's table had one index,
`pending-results` (`pending_shard`, sorted on `received_at`, keys only: `infra/constructs/
orders_table.py` at 721c531); `INDEXES` describes it for the write-unit count.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from entrix.orders.numbers import number_text

BATCH_SIZE = 25
MAX_ATTEMPTS = 8
PENDING_SHARDS = 16
# (index name, hash key, range key) of the design's table; every index projected keys only.
INDEXES = (("pending-results", "pending_shard", "received_at"),)


def pending_shard(record_id: str) -> str:
    digest = hashlib.sha256(record_id.encode("utf-8")).digest()
    return f"{int.from_bytes(digest[:4], 'big') % PENDING_SHARDS:02d}"


def stored_item(
    order: Mapping[str, Any], order_key: str, received_at: str, expires_at: int
) -> dict[str, Any]:
    """The item 721c531 stored for a newly received order, under today's key."""
    return {
        "order_key": order_key,
        "record_id": order["record_id"],
        "parameter_1": order["parameter_1"],
        "parameter_2": order["parameter_2"],
        "received_at": received_at,
        "expires_at": expires_at,
        "result_status": "pending",
        "pending_shard": pending_shard(order["record_id"]),
    }


def _attribute(value: str | Decimal | int) -> dict[str, str]:
    return {"S": value} if isinstance(value, str) else {"N": number_text(value)}


def put_items(client: Any, table_name: str, items: Sequence[Mapping[str, Any]]) -> int:
    """Put every item, 25 a BatchWriteItem, unprocessed ones retried (backoff from 50 ms up to
    2 s); the number of items left unwritten after the last attempt."""
    requests = [
        {"PutRequest": {"Item": {name: _attribute(value) for name, value in item.items()}}}
        for item in items
    ]
    left = 0
    for start in range(0, len(requests), BATCH_SIZE):
        pending = requests[start : start + BATCH_SIZE]
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                time.sleep(min(2.0, 0.05 * 2**attempt))
            response = client.batch_write_item(RequestItems={table_name: pending})
            pending = response.get("UnprocessedItems", {}).get(table_name, [])
            if not pending:
                break
        left += len(pending)
    return left
