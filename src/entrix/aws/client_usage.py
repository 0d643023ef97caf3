"""DynamoDB access to the client usage table: each client's request and order counters.

Each charge is one UpdateItem whose ConditionExpression is the limit, never a read before a
write: concurrent requests of one client are serialised by DynamoDB on the item, so no more than
the limit are ever counted, and a refused charge adds nothing. The table is its own, not the
orders table, whose stream feeds the history archiver (a counter change per request would flood
it) and whose backups are business records.

A table that does not answer (throttled, or 5xx after botocore's retries) raises
`UsageUnavailable`, which the handlers answer 503: failing open would let a client past its
share exactly when the table is under most load.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from entrix.aws.clients import longest_call_seconds
from entrix.aws.orders_table import Deadline
from entrix.orders.usage import Counter, Limits, order_counter, rate_counter

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger(__name__)


class OverLimit(Exception):
    """A charge would take the client past its share; `retry_after` seconds until it resets."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(what)
        self.retry_after = retry_after


class RateLimited(OverLimit):
    """The client has made its requests of the current window."""


class QuotaExceeded(OverLimit):
    """The request's orders would take the client past its orders for the UTC day."""


class UsageUnavailable(Exception):
    """The usage table did not answer (after botocore's retries)."""


class OrderCharge(NamedTuple):
    """Orders charged to a day's counter, for a refund of those not stored."""

    counter: Counter
    orders: int


class ClientUsage:
    """Charges each request and each POST's orders to the caller's counters, within `limits`,
    or the caller's own in `overrides` (by subject)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        limits: Limits,
        overrides: Mapping[str, Limits] | None = None,
    ) -> None:
        self.client = client
        self.table_name = table_name
        self.limits = limits
        self.overrides = dict(overrides or {})

    def limits_of(self, subject: str) -> Limits:
        return self.overrides.get(subject, self.limits)

    def charge_request(self, subject: str, now: float) -> None:
        """Count one request of `subject` in the window holding `now`, or raise `RateLimited`
        (nothing counted) when the window's requests are made."""
        limits = self.limits_of(subject)
        counter = rate_counter(subject, now, limits.window_seconds)
        if not self._add(counter, "requests", 1, limits.rate_limit):
            raise RateLimited(
                f"at most {limits.rate_limit} requests per {limits.window_seconds} s",
                counter.retry_after(now),
            )

    def charge_orders(self, subject: str, now: float, orders: int) -> OrderCharge:
        """Count `orders` of `subject` on the UTC day holding `now`, or raise `QuotaExceeded`
        (nothing counted) when they would not all fit in the day's quota."""
        limits = self.limits_of(subject)
        counter = order_counter(subject, now)
        if not self._add(counter, "orders", orders, limits.daily_orders):
            # A request bigger than the whole day's quota never fits: say so, not just when.
            alone = (
                f"; this request alone has {orders}: send it in smaller requests"
                if orders > limits.daily_orders
                else ""
            )
            raise QuotaExceeded(
                f"at most {limits.daily_orders} orders per UTC day{alone}",
                counter.retry_after(now),
            )
        return OrderCharge(counter, orders)

    @cached_property
    def _longest_call(self) -> float:
        return longest_call_seconds(self.client)

    def refund_orders(self, charge: OrderCharge, orders: int, deadline: Deadline | None) -> None:
        """Give back `orders` of `charge` (stored nothing); skipped when the call could outlast
        `deadline`, and a failure logged, not raised: the reply does not depend on it, and a
        lost refund errs on the client's side (counted, not stored)."""
        if deadline is not None and not deadline.leaves(self._longest_call):
            logger.warning("no time left to refund %d orders to %s", orders, charge.counter.key)
            return
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"usage_key": {"S": charge.counter.key}},
                UpdateExpression="ADD orders :refund",
                ExpressionAttributeValues={":refund": {"N": str(-orders)}},
            )
        except (ClientError, BotoCoreError):
            logger.warning("refund of %d orders to %s failed", orders, charge.counter.key)

    def _add(self, counter: Counter, attribute: str, amount: int, limit: int) -> bool:
        """Add `amount` to the counter's `attribute` if it stays within `limit`; False if not."""
        if amount > limit:
            return False  # never fits; the condition below would let it into an empty counter
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"usage_key": {"S": counter.key}},
                UpdateExpression="ADD #count :amount SET expires_at = :expires_at",
                ConditionExpression="attribute_not_exists(#count) OR #count <= :room",
                ExpressionAttributeNames={"#count": attribute},
                ExpressionAttributeValues={
                    ":amount": {"N": str(amount)},
                    ":room": {"N": str(limit - amount)},
                    ":expires_at": {"N": str(counter.expires_at)},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise UsageUnavailable(str(error)) from error
        except BotoCoreError as error:
            raise UsageUnavailable(str(error)) from error
        return True
