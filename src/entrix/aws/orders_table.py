"""DynamoDB access to the orders table through a low-level boto3 client.

A client, not a resource: it imports and starts faster, which matters for a Lambda cold start.
Numbers are written as exact `N` text and read back as `Decimal`.

The order lifecycle (entrix.orders.lifecycle) is enforced by DynamoDB's conditions, never by a
read before a write: a client's order is one conditional PutItem (BatchWriteItem takes no
conditions; a transaction would cost twice the write units), run in parallel; a cancel is one
conditional UpdateItem. A refused write returns the stored item (ReturnValuesOnConditionCheck
Failure), which says why: the same content (nothing to do) or the order's state.

Writes may be given a `Deadline`: botocore retries inside each call, this adapter retries whole
calls on top, and neither may outlast the caller's own timeout (API Gateway gives up after 29 s).
A call is only started when the longest it can take (`longest_call_seconds`) fits.
"""

from __future__ import annotations

import functools
import heapq
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from entrix.aws.clients import longest_call_seconds
from entrix.orders import lifecycle
from entrix.orders.numbers import number_text
from entrix.orders.order_schema import FIELDS

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger(__name__)

BATCH_SIZE = 25  # DynamoDB's BatchWriteItem limit
BATCH_GET_SIZE = 100  # DynamoDB's BatchGetItem limit
# Index entries a listing reads per shard query at least, whatever the page size.
MIN_LISTING_READ = 25
# Conditional puts of one request in flight at once (the client's connection pool must allow as
# many: entrix.handlers.ingest.DYNAMODB_CONFIG).
PARALLEL_PUTS = 32
# Whole-batch errors worth another try once botocore's own retries are spent.
_TRANSIENT_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


@dataclass(frozen=True)
class Backoff:
    """Bounded exponential backoff with full jitter (sleep uniformly in 0..min(cap, base*2^n))."""

    max_attempts: int = 8
    base_seconds: float = 0.05
    cap_seconds: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = random.random

    def seconds(self, attempt: int) -> float:
        """How long to sleep before retry number `attempt` (1 for the first retry)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2**attempt)
        return ceiling * self.random()


# Left after the writes for the reply itself, the metrics and the way back through API Gateway
# (whose 29 s also count the invocation's start, which the function's timeout does not).
REPLY_MARGIN_SECONDS = 2.0


class RemainingTime(Protocol):
    """What a deadline needs of a Lambda context object."""

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Deadline:
    """The time (on `clock`) by which the writes must be over, successful or not."""

    at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def from_context(
        cls, context: RemainingTime, margin_seconds: float = REPLY_MARGIN_SECONDS
    ) -> Deadline:
        """The invocation's own end (its remaining time) less `margin_seconds`."""
        remaining = context.get_remaining_time_in_millis() / 1000
        return cls(time.monotonic() + remaining - margin_seconds)

    def leaves(self, seconds: float) -> bool:
        """Whether work of `seconds` started now would be over by the deadline."""
        return self.clock() + seconds <= self.at


class OrderTableUnavailable(Exception):
    """The table could not answer a read (after retries)."""


class _Refused(Exception):
    """A conditional write's condition failed; `item` is the stored item (None: no item)."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


class _GaveUp(Exception):
    """A batch abandoned with `pending` still unwritten (the rest of the batch is stored)."""

    def __init__(self, pending: list[Any], reason: str) -> None:
        super().__init__(reason)
        self.pending = pending
        self.reason = reason


@dataclass
class WriteOutcome:
    """Which record_ids DynamoDB confirmed and which it did not."""

    stored: list[str] = field(default_factory=list)
    not_stored: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PutOutcome:
    """What one conditional put did: `created`, `amended`, `unchanged`, `refused` (with the
    order's `state`) or `not_stored` (DynamoDB failed; sending it again is safe)."""

    record_id: str
    outcome: str
    state: str | None = None


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did: `cancelled` (now or before), `not_found`, or `refused` with `state`."""

    outcome: str
    state: str | None = None


@dataclass(frozen=True)
class OrdersPage:
    """One page of an owner's orders, newest first; `next_before` continues after it."""

    items: list[dict[str, Any]]
    next_before: str | None


def _attribute(value: str | Decimal | int) -> dict[str, str]:
    if isinstance(value, str):
        return {"S": value}
    return {"N": number_text(value)}


def _typed(item: Mapping[str, str | Decimal | int]) -> dict[str, dict[str, str]]:
    return {name: _attribute(value) for name, value in item.items()}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# A put of a client's order goes through when the key is free (new, or its 24 hours are over and
# no live run holds it: a run that claimed it just before it expired records its result), or when
# the stored order is pending, held by no live run, and differs from the one sent (amend). An
# order a run may have stored a line for (`stored_in`, left by a run that failed after writing)
# is the next run's to settle first: amended or cancelled now, that line would stay in S3 for a
# version that no longer exists.
_NO_LIVE_CLAIM = "(attribute_not_exists(claimed_by) OR claim_expires_at < :now)"
_PUT_ALLOWED = (
    f"attribute_not_exists(order_key) OR (expires_at <= :now AND {_NO_LIVE_CLAIM}) OR "
    f"(result_status = :pending AND {_NO_LIVE_CLAIM} AND attribute_not_exists(stored_in) AND "
    f"({{differs}}))"
)
# A cancel goes through for a pending, unexpired order that no live run holds and no run may
# have stored a line for.
_CANCEL_ALLOWED = (
    "result_status = :pending AND expires_at > :now AND "
    "(attribute_not_exists(claimed_by) OR claim_expires_at < :now) AND "
    "attribute_not_exists(stored_in)"
)


def _differs(item: Mapping[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A condition true when the stored order's client fields differ from `item`'s, with its
    attribute names and values (every field of the model: an optional one left out differs
    from a stored one)."""
    clauses, names, values = [], {}, {}
    for position, name in enumerate(FIELDS):
        if name == "record_id":
            continue
        names[f"#f{position}"] = name
        if name in item:
            values[f":f{position}"] = _attribute(item[name])
            clauses.append(f"#f{position} <> :f{position}")
        else:
            clauses.append(f"attribute_exists(#f{position})")
    return " OR ".join(clauses) or "attribute_exists(order_key)", names, values


def _record_id(request: Mapping[str, Any]) -> str:
    return str(request["PutRequest"]["Item"]["record_id"]["S"])


def _written(batch: list[Any], unwritten: list[Any]) -> list[str]:
    """The record_ids of `batch` that are not among `unwritten`, in the batch's order."""
    left = {_record_id(request) for request in unwritten}
    return [_record_id(request) for request in batch if _record_id(request) not in left]


class OrdersTable:
    """The orders table: clients' conditional puts, cancels and reads, and batched puts."""

    def __init__(
        self, client: DynamoDBClient, table_name: str, backoff: Backoff | None = None
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._backoff = backoff or Backoff()

    @cached_property
    def _longest_call(self) -> float:
        """What the client's config allows one BatchWriteItem, botocore's retries included."""
        return longest_call_seconds(self._client)

    def put_items(
        self,
        items: Sequence[Mapping[str, str | Decimal | int]],
        deadline: Deadline | None = None,
    ) -> WriteOutcome:
        """Put every item (overwriting same keys), 25 per BatchWriteItem, retrying leftovers.

        An item lands in `stored` only once DynamoDB has accepted it. On a non-transient error,
        on transient errors past the last attempt, or when the next call or pause could not end
        by `deadline`, the items not yet written are left so and reported in `not_stored`.
        """
        outcome = WriteOutcome()
        requests: list[Any] = [
            {"PutRequest": {"Item": {name: _attribute(value) for name, value in item.items()}}}
            for item in items
        ]
        for start in range(0, len(requests), BATCH_SIZE):
            batch = requests[start : start + BATCH_SIZE]
            try:
                left = self._write_batch(batch, deadline)
            except _GaveUp as gave_up:
                unwritten = [*gave_up.pending, *requests[start + BATCH_SIZE :]]
                logger.error(
                    "BatchWriteItem given up (%s); %d orders not stored",
                    gave_up.reason,
                    len(unwritten),
                    exc_info=gave_up.__cause__,
                )
                outcome.stored.extend(_written(batch, gave_up.pending))
                outcome.not_stored.extend(_record_id(request) for request in unwritten)
                return outcome
            outcome.stored.extend(_written(batch, left))
            outcome.not_stored.extend(_record_id(request) for request in left)
        return outcome

    def _write_batch(self, batch: list[Any], deadline: Deadline | None) -> list[Any]:
        """Write one batch; return the requests still unprocessed after the last attempt.

        Raises `_GaveUp` when no further attempt may be made.
        """
        pending = batch
        for attempt in range(self._backoff.max_attempts):
            pause = self._backoff.seconds(attempt) if attempt else 0.0
            if deadline is not None and not deadline.leaves(pause + self._longest_call):
                raise _GaveUp(pending, "no time left for another call")
            if pause:
                self._backoff.sleep(pause)
            try:
                response = self._client.batch_write_item(RequestItems={self._table_name: pending})
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code not in _TRANSIENT_ERRORS or attempt + 1 == self._backoff.max_attempts:
                    raise _GaveUp(pending, code or "ClientError") from error
                logger.warning("BatchWriteItem %s; retrying %d orders", code, len(pending))
                continue
            except BotoCoreError as error:
                raise _GaveUp(pending, type(error).__name__) from error
            pending = list(response.get("UnprocessedItems", {}).get(self._table_name, []))
            if not pending:
                return []
            logger.warning("BatchWriteItem left %d orders unprocessed", len(pending))
        return pending

    def put_orders(
        self,
        items: Sequence[Mapping[str, str | Decimal | int]],
        now: float,
        deadline: Deadline | None = None,
    ) -> list[PutOutcome]:
        """Put each client order (a `lifecycle.stored_item`) under the lifecycle's rules, in
        parallel; the outcome of each, in `items`' order."""
        if len(items) <= 1:
            return [self._put_order(item, now, deadline) for item in items]
        workers = min(PARALLEL_PUTS, len(items))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda item: self._put_order(item, now, deadline), items))

    def _put_order(
        self, item: Mapping[str, str | Decimal | int], now: float, deadline: Deadline | None
    ) -> PutOutcome:
        record_id = str(item["record_id"])
        now = int(now)  # what the condition compares, so that the verdict and the state agree
        differs, names, values = _differs(item)
        request = {
            "TableName": self._table_name,
            "Item": _typed(item),
            "ConditionExpression": _PUT_ALLOWED.format(differs=differs),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {
                ":now": {"N": str(int(now))},
                ":pending": {"S": lifecycle.PENDING},
                **values,
            },
            "ReturnValues": "ALL_OLD",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            response = self._call(self._client.put_item, request, deadline)
        except _Refused as refused:
            old = refused.item
            if old is not None and lifecycle.same_content(old, item):
                return PutOutcome(record_id, "unchanged")
            state = lifecycle.state(old, now) if old is not None else None
            return PutOutcome(record_id, "refused", state)
        except _GaveUp as gave_up:
            logger.error("PutItem of order %r given up (%s)", record_id, gave_up.reason)
            return PutOutcome(record_id, "not_stored")
        old_item = response.get("Attributes")
        if old_item and not lifecycle.expired(plain_item(old_item), now):
            return PutOutcome(record_id, "amended")
        return PutOutcome(record_id, "created")

    def cancel(self, owner: str, record_id: str, now: float, cancelled_at: str) -> CancelOutcome:
        """Cancel `owner`'s pending order `record_id` so that no run processes it."""
        now = int(now)  # what the condition compares, so that the verdict and the state agree
        request = {
            "TableName": self._table_name,
            "Key": {"order_key": {"S": lifecycle.order_key(owner, record_id)}},
            "UpdateExpression": (
                "SET result_status = :cancelled, cancelled_at = :at "
                "REMOVE pending_shard, claimed_by, claim_expires_at"
            ),
            "ConditionExpression": _CANCEL_ALLOWED,
            "ExpressionAttributeValues": {
                ":cancelled": {"S": lifecycle.CANCELLED},
                ":pending": {"S": lifecycle.PENDING},
                ":at": {"S": cancelled_at},
                ":now": {"N": str(int(now))},
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            self._call(self._client.update_item, request, None)
        except _Refused as refused:
            old = refused.item
            if old is None or lifecycle.expired(old, now):
                return CancelOutcome("not_found")
            state = lifecycle.state(old, now)
            if state == lifecycle.CANCELLED:
                return CancelOutcome("cancelled")
            return CancelOutcome("refused", state)
        return CancelOutcome("cancelled")

    def _call(
        self, operation: Callable[..., Any], request: Mapping[str, Any], deadline: Deadline | None
    ) -> Any:
        """One conditional write, whole calls retried on transient errors while `deadline`
        allows. Raises `_Refused` when the condition fails, `_GaveUp` when no attempt is left."""
        for attempt in range(self._backoff.max_attempts):
            pause = self._backoff.seconds(attempt) if attempt else 0.0
            if deadline is not None and not deadline.leaves(pause + self._longest_call):
                raise _GaveUp([], "no time left for another call")
            if pause:
                self._backoff.sleep(pause)
            try:
                return operation(**request)
            except ClientError as error:
                code = _error_code(error)
                if code == "ConditionalCheckFailedException":
                    old: Any = error.response.get("Item")
                    raise _Refused(None if old is None else plain_item(old)) from None
                if code not in _TRANSIENT_ERRORS or attempt + 1 == self._backoff.max_attempts:
                    raise _GaveUp([], code or "ClientError") from error
                logger.warning("%s %s; retrying", operation.__name__, code)
            except BotoCoreError as error:
                raise _GaveUp([], type(error).__name__) from error
        raise _GaveUp([], "no attempt left")

    def get_order(self, owner: str, record_id: str) -> dict[str, Any] | None:
        """`owner`'s stored order `record_id` (numbers as Decimal), or None when there is none."""
        response = self._client.get_item(
            TableName=self._table_name,
            Key={"order_key": {"S": lifecycle.order_key(owner, record_id)}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return None if item is None else plain_item(item)

    def list_orders(
        self,
        index_name: str,
        owner: str,
        limit: int,
        before: str | None,
        wanted: Callable[[Mapping[str, Any]], bool],
        max_examined: int,
    ) -> OrdersPage:
        """Up to `limit` of `owner`'s orders that are `wanted`, newest first, received before
        the version `before` (None: from the newest). At most `max_examined` index entries are
        looked at, so a page may be short; `next_before` is None once nothing is left."""
        # Reads do not shrink with `limit`: a filtered page of one would otherwise take a Query
        # and a BatchGetItem per order examined.
        page_size = min(max(limit, MIN_LISTING_READ), BATCH_GET_SIZE)
        shards = [
            self._owner_keys(index_name, shard, before, page_size)
            for shard in lifecycle.owner_shards(owner)
        ]
        entries = heapq.merge(*shards, key=lambda entry: entry[0], reverse=True)
        found: list[dict[str, Any]] = []
        examined = 0
        last: str | None = None
        while examined < max_examined:
            size = min(max_examined - examined, BATCH_GET_SIZE)
            chunk = [entry for _, entry in zip(range(size), entries, strict=False)]
            if not chunk:
                return OrdersPage(found, None)
            items = self._get_items([key for _, key in chunk])
            for version, key in chunk:
                examined += 1
                last = version
                item = items.get(key)
                if item is not None and wanted(item):
                    found.append(item)
                    if len(found) == limit:
                        return OrdersPage(found, last)
        return OrdersPage(found, last)

    def _owner_keys(
        self, index_name: str, shard: str, before: str | None, page_size: int
    ) -> Iterator[tuple[str, str]]:
        """One owner-orders partition's (version, order_key), newest first, page by page."""
        condition = "owner_shard = :shard"
        values: dict[str, Any] = {":shard": {"S": shard}}
        if before is not None:
            condition += " AND version < :before"
            values[":before"] = {"S": before}
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table_name,
            IndexName=index_name,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            PaginationConfig={"PageSize": page_size},
        )
        for page in pages:
            for keys in page.get("Items", []):
                yield keys["version"]["S"], keys["order_key"]["S"]

    def _get_items(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The items of `keys` (at most BATCH_GET_SIZE) by key, unprocessed keys retried."""
        wanted: Any = {self._table_name: {"Keys": [{"order_key": {"S": key}} for key in keys]}}
        items: dict[str, dict[str, Any]] = {}
        for attempt in range(self._backoff.max_attempts):
            if attempt:
                self._backoff.sleep(self._backoff.seconds(attempt))
            response = self._client.batch_get_item(RequestItems=wanted)
            for found in response.get("Responses", {}).get(self._table_name, []):
                item = plain_item(found)
                items[item["order_key"]] = item
            wanted = response.get("UnprocessedKeys") or {}
            if not wanted:
                return items
        raise OrderTableUnavailable(f"{len(keys) - len(items)} orders could not be read")


def plain_item(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item in Python types (numbers as exact Decimal), from its typed values."""
    return {name: _plain(value) for name, value in attributes.items()}


def _plain(value: Any) -> Any:
    """Strings and numbers directly: boto3's deserializer reads numbers in a 38-digit context
    that raises `Rounded` on values DynamoDB holds, such as 4.6E+38 (written back as its digits);
    anything else through boto3's."""
    if "S" in value:
        return value["S"]
    if "N" in value:
        return Decimal(value["N"])
    return _deserializer().deserialize(value)


@functools.cache
def _deserializer() -> TypeDeserializer:
    """Created on first use: boto3's types module loads all of boto3, and only reads need it."""
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()
