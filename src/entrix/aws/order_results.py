"""The orders table as the results pipeline sees it: pending orders in, one result per order out.

Pending orders are read from a sparse global secondary index keyed on `pending_shard` (sort key
`received_at`; see `entrix.orders.intake.pending_shard`), so a run reads only the orders still
waiting instead of scanning the table: one query per shard, merged oldest first.

Overlapping runs (the schedule fires every 5 minutes; a slow run may still be polling) must
process each order once. Every write here is conditional:

- `claim` marks a pending order as taken by a run until a lease ends (a run cannot outlive its
  state machine's timeout, which is the lease), before its result is stored or alerted;
- `record` stores the result; both succeed only for a pending order that no other live run has
  claimed, or again for the run that already claimed or recorded it, so a retried step of the
  same run goes through while another run's attempt is refused (`None`);
- `release` hands back an order a run claimed but could not finish, so the next run takes it
  without waiting for the lease to end.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from entrix.auction.platform import PendingOrder
from entrix.auction.results import OrderStoreUnavailable
from entrix.aws.orders_table import plain_item
from entrix.orders.intake import pending_shards
from entrix.orders.numbers import number_text

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PENDING = "pending"
# Taken by no live run: unclaimed, claimed by this run, or claimed by a run whose lease ended;
# or already recorded by this run (a retried step).
_AVAILABLE_TO_RUN = (
    "attribute_exists(record_id) AND ("
    "(result_status = :pending AND ("
    "attribute_not_exists(claimed_by) OR claimed_by = :run OR claim_expires_at < :now))"
    " OR result_run_id = :run)"
)
logger = logging.getLogger(__name__)


class OrderResults:
    """Pending orders and their results in the orders table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def pending_orders(self, index_name: str) -> Iterator[PendingOrder]:
        """Every order still waiting for a result, oldest first, page by page."""
        shards = [self._pending_in(index_name, shard) for shard in pending_shards()]
        for _, order in heapq.merge(*shards, key=lambda entry: entry[0]):
            yield order

    def _pending_in(self, index_name: str, shard: str) -> Iterator[tuple[str, PendingOrder]]:
        """One shard's waiting orders with their received_at, oldest first. The index projects
        the keys only: the order's id and the index's own keys are all a run needs."""
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table_name,
            IndexName=index_name,
            KeyConditionExpression="pending_shard = :shard",
            ExpressionAttributeValues={":shard": {"S": shard}},
        )
        try:
            for page in pages:
                for keys in page.get("Items", []):
                    record_id = keys["record_id"]["S"]
                    yield keys["received_at"]["S"], PendingOrder(record_id=record_id)
        except (ClientError, BotoCoreError) as error:
            raise OrderStoreUnavailable(f"reading pending orders failed: {error}") from error

    def claim(
        self, record_id: str, run_id: str, now: int, lease_seconds: int
    ) -> dict[str, Any] | None:
        """Take the order for `run_id`; the whole item, or None when another run has it."""
        return self._update(
            record_id,
            "SET claimed_by = :run, claim_expires_at = :until",
            run_id,
            now,
            {":until": {"N": str(now + lease_seconds)}},
        )

    def record(
        self,
        record_id: str,
        run_id: str,
        now: int,
        status: str,
        power: Decimal | int,
        result_at: str,
    ) -> dict[str, Any] | None:
        """Store the order's result; the whole item, or None when another run has it."""
        return self._update(
            record_id,
            "SET result_status = :status, power = :power, result_run_id = :run, "
            "result_at = :at REMOVE claimed_by, claim_expires_at, pending_shard",
            run_id,
            now,
            {
                ":status": {"S": status},
                ":power": {"N": number_text(power)},
                ":at": {"S": result_at},
            },
        )

    def release(self, record_id: str, run_id: str) -> bool:
        """Give up this run's claim on a still-pending order; False when that was not possible.

        Best effort: the order is released now, or when the lease ends.
        """
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={"record_id": {"S": record_id}},
                UpdateExpression="REMOVE claimed_by, claim_expires_at",
                ConditionExpression="result_status = :pending AND claimed_by = :run",
                ExpressionAttributeValues={":pending": {"S": PENDING}, ":run": {"S": run_id}},
            )
        except (ClientError, BotoCoreError) as error:
            logger.warning("order %r stays claimed until its lease ends: %s", record_id, error)
            return False
        return True

    def _update(
        self,
        record_id: str,
        update: str,
        run_id: str,
        now: int,
        values: dict[str, Any],
    ) -> dict[str, Any] | None:
        try:
            response = self._client.update_item(
                TableName=self._table_name,
                Key={"record_id": {"S": record_id}},
                UpdateExpression=update,
                ConditionExpression=_AVAILABLE_TO_RUN,
                ExpressionAttributeValues={
                    ":pending": {"S": PENDING},
                    ":run": {"S": run_id},
                    ":now": {"N": str(now)},
                    **values,
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise OrderStoreUnavailable(f"updating order {record_id!r} failed: {error}") from error
        except BotoCoreError as error:
            raise OrderStoreUnavailable(f"updating order {record_id!r} failed: {error}") from error
        return plain_item(response["Attributes"])
