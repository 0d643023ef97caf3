"""The orders table as the results pipeline sees it: pending orders in, one result per order out.

Pending orders are read from a sparse global secondary index keyed on `pending_shard` (sort key
`version`, which begins with the receipt time; see `entrix.orders.lifecycle`), so a run reads
only the orders still waiting instead of scanning the table: one query per shard, merged oldest
first.

Overlapping runs (the schedule fires every 5 minutes; a slow run may still be polling) must
process each order once. Every write here is conditional:

- `claim` marks a pending order as taken by a run until a lease ends (a run cannot outlive its
  state machine's timeout, which is the lease), before its result is stored or alerted;
- `record` stores the result; both succeed only for the version of the order the run read
  (an amended or cancelled order is left alone), pending and claimed by no other live run, or
  again for the run that already claimed or recorded it, so a retried step of the same run goes
  through while another run's attempt is refused (`None`);
- `release` hands back an order a run claimed but could not finish, so the next run takes it
  without waiting for the lease to end.

A claim also names the object the run will write the order's line into (`stored_in`), unless an
earlier run named one: that run may have written the line before it failed, so the claimer looks
there first and `move_stored_in` only once it has seen the line is not there. `stored_in` stays
after the record (where the result is) and after a release, unless the run knows for certain
that no line of the order is there (S3 answered the put with an error, or no put followed the
claim that named the object or the read that found no line).

Before claiming, a run reads the batch's orders (`current`, BatchGetItem, 100 keys a request) so
that the orders another live run holds are skipped without one refused write each.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from entrix.auction.platform import PendingOrder
from entrix.auction.results import OrderStoreUnavailable
from entrix.aws.orders_table import BATCH_GET_SIZE, plain_item
from entrix.orders.lifecycle import PENDING, pending_shards
from entrix.orders.limits import TTL_SECONDS
from entrix.orders.numbers import number_text
from entrix.timestamps import iso_milliseconds

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Taken by no live run: unclaimed, claimed by this run, or claimed by a run whose lease ended;
# or already recorded by this run (a retried step).
# An expired order is not claimed: to its owner it no longer exists (404), and a resend creates
# it anew, which the next run processes.
_AVAILABLE_TO_RUN = (
    "version = :version AND ("
    "(result_status = :pending AND expires_at > :now AND ("
    "attribute_not_exists(claimed_by) OR claimed_by = :run OR claim_expires_at < :now))"
    " OR result_run_id = :run)"
)
# Recording needs this run's own live claim (or its earlier record) on that version.
_CLAIMED_BY_RUN = (
    "version = :version AND ("
    "(result_status = :pending AND claimed_by = :run) OR result_run_id = :run)"
)
# What `current` reads of each order: enough to tell whether another run has it.
_CURRENT = "order_key, version, claimed_by, claim_expires_at, result_status, result_run_id"
# BatchGetItem hands back what it could not read this time; asked again at most this often.
_READ_ATTEMPTS = 3
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

    def oldest_pending(self, index_name: str, now: float) -> PendingOrder | None:
        """The unexpired order waiting longest for a result (None: none waits): one item from
        each shard's query, a read of a few units whatever the backlog.

        An order that expired unprocessed keeps its `pending_shard` until the TTL deletes it
        (days later) and no run claims it: it is left out in the key condition, since its
        version begins with its receipt time and it expires TTL_SECONDS after that (a filter
        would not do: Limit applies before it, and the index holds no `expires_at`)."""
        received_since = iso_milliseconds(now - TTL_SECONDS)
        oldest: PendingOrder | None = None
        for shard in pending_shards():
            try:
                items = self._client.query(
                    TableName=self._table_name,
                    IndexName=index_name,
                    KeyConditionExpression="pending_shard = :shard AND version >= :since",
                    ExpressionAttributeValues={
                        ":shard": {"S": shard},
                        ":since": {"S": received_since},
                    },
                    Limit=1,
                )["Items"]
            except (ClientError, BotoCoreError) as error:
                raise OrderStoreUnavailable(f"reading pending orders failed: {error}") from error
            for keys in items:
                order = PendingOrder(order_key=keys["order_key"]["S"], version=keys["version"]["S"])
                if oldest is None or order.version < oldest.version:
                    oldest = order
        return oldest

    def _pending_in(self, index_name: str, shard: str) -> Iterator[tuple[str, PendingOrder]]:
        """One shard's waiting orders with their version, oldest first. The index projects the
        keys only: the order's key and version are all a run needs."""
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
                    version = keys["version"]["S"]
                    yield version, PendingOrder(order_key=keys["order_key"]["S"], version=version)
        except (ClientError, BotoCoreError) as error:
            raise OrderStoreUnavailable(f"reading pending orders failed: {error}") from error

    def current(self, order_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The claim and result attributes of each order that exists, by key; read
        BATCH_GET_SIZE keys a request, the requests in parallel (eventually consistent: a
        guide for skipping, the claim decides)."""
        chunks = [
            order_keys[start : start + BATCH_GET_SIZE]
            for start in range(0, len(order_keys), BATCH_GET_SIZE)
        ]
        found: dict[str, dict[str, Any]] = {}
        if len(chunks) == 1:
            found.update(self._current(chunks[0]))
            return found
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            for items in pool.map(self._current, chunks):
                found.update(items)
        return found

    def _current(self, order_keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        wanted: Any = {
            self._table_name: {
                "Keys": [{"order_key": {"S": key}} for key in dict.fromkeys(order_keys)],
                "ProjectionExpression": _CURRENT,
            }
        }
        found: dict[str, dict[str, Any]] = {}
        try:
            for _ in range(_READ_ATTEMPTS):
                response = self._client.batch_get_item(RequestItems=wanted)
                for raw in response.get("Responses", {}).get(self._table_name, []):
                    item = plain_item(raw)
                    found[item["order_key"]] = item
                wanted = response.get("UnprocessedKeys") or {}
                if not wanted:
                    return found
        except (ClientError, BotoCoreError) as error:
            raise OrderStoreUnavailable(f"reading orders failed: {error}") from error
        raise OrderStoreUnavailable("reading orders failed: keys left unprocessed")

    def claim(
        self,
        order_key: str,
        version: str,
        run_id: str,
        now: int,
        lease_seconds: int,
        stored_in: str,
    ) -> tuple[dict[str, Any], bool] | None:
        """Take `version` of the order for `run_id`, naming `stored_in` as the object its line
        goes into unless an earlier claim named one; the whole item and whether this claim named
        it (then no line of the order can be stored yet, but by another invocation of this run
        claiming after it), or None when another run has it, or the order was amended, cancelled
        or processed since the run read it."""
        before = self._update(
            order_key,
            version,
            "SET claimed_by = :run, claim_expires_at = :until, "
            "stored_in = if_not_exists(stored_in, :key)",
            _AVAILABLE_TO_RUN,
            run_id,
            {
                ":until": {"N": str(now + lease_seconds)},
                ":now": {"N": str(now)},
                ":key": {"S": stored_in},
            },
            returned="ALL_OLD",
        )
        if before is None:
            return None
        named_now = "stored_in" not in before
        claimed = {
            **before,
            "claimed_by": run_id,
            "claim_expires_at": Decimal(now + lease_seconds),
            "stored_in": stored_in if named_now else before["stored_in"],
        }
        return claimed, named_now

    def move_stored_in(self, order_key: str, run_id: str, old: str, new: str) -> bool:
        """Name `new` as the order's object, once `old` was seen not to hold its line; False
        when the run no longer holds the order, or another run moved it meanwhile."""
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={"order_key": {"S": order_key}},
                UpdateExpression="SET stored_in = :new",
                ConditionExpression="claimed_by = :run AND stored_in = :old",
                ExpressionAttributeValues={
                    ":run": {"S": run_id},
                    ":old": {"S": old},
                    ":new": {"S": new},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise OrderStoreUnavailable(f"updating order {order_key!r} failed: {error}") from error
        except BotoCoreError as error:
            raise OrderStoreUnavailable(f"updating order {order_key!r} failed: {error}") from error
        return True

    def record(
        self,
        order_key: str,
        version: str,
        run_id: str,
        status: str,
        power: Decimal | int,
        result_at: str,
        result_run_id: str | None = None,
    ) -> dict[str, Any] | None:
        """Store the result on the version this run claimed; the whole item, or None when the
        run no longer holds that version (another run took it over after the lease ended).
        `result_run_id`: the run whose stored line this is, when not this run's (a line an
        earlier run stored before it failed)."""
        return self._update(
            order_key,
            version,
            "SET result_status = :status, power = :power, result_run_id = :result_run, "
            "result_at = :at REMOVE claimed_by, claim_expires_at, pending_shard",
            _CLAIMED_BY_RUN,
            run_id,
            {
                ":status": {"S": status},
                ":power": {"N": number_text(power)},
                ":at": {"S": result_at},
                ":result_run": {"S": result_run_id or run_id},
            },
        )

    def release(self, order_key: str, run_id: str, nothing_written_to: str | None = None) -> bool:
        """Give up this run's claim on an order; False when that was not possible.

        Best effort: the order is released now, or when the lease ends. An order this run has
        already recorded (a retried batch claims it again) loses the claim too, instead of
        keeping it past its result. `stored_in` stays (a line may be there), unless the run
        knows that nothing was written to `nothing_written_to`, the object the order names.
        """
        update, condition = "REMOVE claimed_by, claim_expires_at", "claimed_by = :run"
        values = {":run": {"S": run_id}}
        if nothing_written_to is not None:
            update += ", stored_in"
            condition += " AND stored_in = :key"
            values[":key"] = {"S": nothing_written_to}
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={"order_key": {"S": order_key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except (ClientError, BotoCoreError) as error:
            logger.warning("order %r stays claimed until its lease ends: %s", order_key, error)
            return False
        return True

    def _update(
        self,
        order_key: str,
        version: str,
        update: str,
        condition: str,
        run_id: str,
        values: dict[str, Any],
        returned: Literal["ALL_NEW", "ALL_OLD"] = "ALL_NEW",
    ) -> dict[str, Any] | None:
        """The item after the update (or before it: `returned`), None when refused."""
        try:
            response = self._client.update_item(
                TableName=self._table_name,
                Key={"order_key": {"S": order_key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues={
                    ":pending": {"S": PENDING},
                    ":run": {"S": run_id},
                    ":version": {"S": version},
                    **values,
                },
                ReturnValues=returned,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise OrderStoreUnavailable(f"updating order {order_key!r} failed: {error}") from error
        except BotoCoreError as error:
            raise OrderStoreUnavailable(f"updating order {order_key!r} failed: {error}") from error
        return plain_item(response["Attributes"])
