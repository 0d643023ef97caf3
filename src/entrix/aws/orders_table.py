"""DynamoDB access to the orders table through a low-level boto3 client.

A client, not a resource: it imports and starts faster, which matters for a Lambda cold start.
Numbers are written as exact `N` text and read back as `Decimal`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from entrix.orders.numbers import number_text

if TYPE_CHECKING:
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

    def pause(self, attempt: int) -> None:
        """Sleep before retry number `attempt` (1 for the first retry)."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2**attempt)
        self.sleep(ceiling * self.random())


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


class OrdersTable:
    """The orders table: batched puts with retries, and consistent reads."""

    def __init__(
        self, client: DynamoDBClient, table_name: str, backoff: Backoff | None = None
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._backoff = backoff or Backoff()

    def put_items(self, items: Sequence[Mapping[str, str | Decimal | int]]) -> WriteOutcome:
        """Put every item (overwriting same keys), 25 per BatchWriteItem, retrying leftovers.

        An item lands in `stored` only once DynamoDB has accepted it; on a non-transient error
        the remaining items are left unwritten and reported in `not_stored`.
        """
        outcome = WriteOutcome()
        requests: list[Any] = [
            {"PutRequest": {"Item": {name: _attribute(value) for name, value in item.items()}}}
            for item in items
        ]
        for start in range(0, len(requests), BATCH_SIZE):
            batch = requests[start : start + BATCH_SIZE]
            try:
                left = self._write_batch(batch)
            except (ClientError, BotoCoreError):
                logger.exception(
                    "BatchWriteItem failed; %d orders not stored", len(requests) - start
                )
                outcome.not_stored.extend(_record_id(request) for request in requests[start:])
                return outcome
            left_ids = {_record_id(request) for request in left}
            outcome.stored.extend(_record_id(r) for r in batch if _record_id(r) not in left_ids)
            outcome.not_stored.extend(_record_id(request) for request in left)
        return outcome

    def _write_batch(self, batch: list[Any]) -> list[Any]:
        """Write one batch; return the requests still unprocessed after the last attempt."""
        pending = batch
        for attempt in range(self._backoff.max_attempts):
            if attempt:
                self._backoff.pause(attempt)
            try:
                response = self._client.batch_write_item(RequestItems={self._table_name: pending})
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code not in _TRANSIENT_ERRORS or attempt + 1 == self._backoff.max_attempts:
                    raise
                logger.warning("BatchWriteItem %s; retrying %d orders", code, len(pending))
                continue
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
        if item is None:
            return None
        # Imported here: boto3's types module loads all of boto3, and only reads need it.
        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        return {name: deserializer.deserialize(value) for name, value in item.items()}
