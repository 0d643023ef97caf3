"""DynamoDB access to the orders table through a low-level boto3 client.

A client, not a resource: it imports and starts faster, which matters for a Lambda cold start.
Numbers are written as exact `N` text and read back as `Decimal`.

Writes may be given a `Deadline`: botocore retries inside each call, this adapter retries whole
calls on top, and neither may outlast the caller's own timeout (API Gateway gives up after 29 s).
A call is only started when the longest it can take (`longest_call_seconds`) fits.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from entrix.aws.clients import longest_call_seconds
from entrix.orders.numbers import number_text

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger(__name__)

BATCH_SIZE = 25  # DynamoDB's BatchWriteItem limit
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


def _attribute(value: str | Decimal | int) -> dict[str, str]:
    if isinstance(value, str):
        return {"S": value}
    return {"N": number_text(value)}


def _record_id(request: Mapping[str, Any]) -> str:
    return str(request["PutRequest"]["Item"]["record_id"]["S"])


def _written(batch: list[Any], unwritten: list[Any]) -> list[str]:
    """The record_ids of `batch` that are not among `unwritten`, in the batch's order."""
    left = {_record_id(request) for request in unwritten}
    return [_record_id(request) for request in batch if _record_id(request) not in left]


class OrdersTable:
    """The orders table: batched puts with retries, and consistent reads."""

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

    def get_item(self, record_id: str) -> dict[str, Any] | None:
        """The stored item (numbers as Decimal), or None when there is none."""
        response = self._client.get_item(
            TableName=self._table_name,
            Key={"record_id": {"S": record_id}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return None if item is None else plain_item(item)


def plain_item(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item in Python types (numbers as Decimal), from its typed attribute values."""
    return {name: _deserializer().deserialize(value) for name, value in attributes.items()}


@functools.cache
def _deserializer() -> TypeDeserializer:
    """Created on first use: boto3's types module loads all of boto3, and only reads need it."""
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()
