"""Each client's fair share of the API: the arithmetic, with no AWS in it.

A client (the token's subject) may make `rate_limit` requests per fixed window of
`window_seconds`, and store `daily_orders` orders per UTC day. Each is a counter item of the
client usage table (entrix.aws.client_usage), keyed on the subject, the kind and the window or
day it counts, so a new window is a new item and an old one is never read again: DynamoDB's TTL
deletes it some time after `expires_at`, and until then it does no harm.

A fixed window rather than a sliding one or a token bucket: one conditional UpdateItem decides
it, with no read first. At a window's edge a client can make up to twice its rate in a short
time; the stage-wide throttle still bounds that.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import NamedTuple

DAY_SECONDS = 86_400
# How long a counter item outlives its window or day before the TTL may delete it: long enough
# that a request finishing a moment late (a refund after a slow write) still finds its item.
EXPIRY_GRACE_SECONDS = 3_600


class Limits(NamedTuple):
    """One client's share: requests per window, the window, and orders per UTC day."""

    rate_limit: int
    window_seconds: int
    daily_orders: int


def limits_by_subject(
    default: Limits, overrides: Mapping[str, Mapping[str, int]]
) -> dict[str, Limits]:
    """The share of each client that has one of its own: the default with its overrides (any of
    `rate_limit` and `daily_orders`; the window is the same for every client)."""
    return {subject: default._replace(**fields) for subject, fields in overrides.items()}


class Counter(NamedTuple):
    """One counter item: its key, when it stops counting (epoch seconds), and when the TTL may
    delete it."""

    key: str
    ends_at: int
    expires_at: int

    def retry_after(self, now: float) -> int:
        """Whole seconds until the counter stops counting (a `Retry-After` value, at least 1)."""
        return max(1, math.ceil(self.ends_at - now))


def rate_counter(subject: str, now: float, window_seconds: int) -> Counter:
    """The counter of `subject`'s requests in the fixed window holding `now`."""
    start = int(now) // window_seconds * window_seconds
    end = start + window_seconds
    return Counter(f"{subject}#rate#{start}", end, end + EXPIRY_GRACE_SECONDS)


def order_counter(subject: str, now: float) -> Counter:
    """The counter of `subject`'s orders on the UTC day holding `now`."""
    start = int(now) // DAY_SECONDS * DAY_SECONDS
    end = start + DAY_SECONDS
    day = time.strftime("%Y-%m-%d", time.gmtime(start))
    return Counter(f"{subject}#orders#{day}", end, end + EXPIRY_GRACE_SECONDS)


def refund(outcomes: dict[str, int]) -> int:
    """The orders of a request to give back to the day's count: those it stored nothing for.

    `unchanged` (an identical retry) and `not_stored` (DynamoDB failed; the client is asked to
    send them again) would otherwise be counted twice; `refused` ones are not given back: the
    client sent a change the lifecycle does not allow, and sending it again is its own doing.
    """
    return outcomes.get("unchanged", 0) + outcomes.get("not_stored", 0)
