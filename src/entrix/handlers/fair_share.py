"""The API functions' share of each client: the usage table made from settings, and the replies
of a charge refused (429) or not made (503), both with `Retry-After`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.config import Config

from entrix import settings
from entrix.aws.client_usage import ClientUsage, QuotaExceeded, RateLimited, UsageUnavailable
from entrix.aws.clients import client
from entrix.http import DAILY_ORDER_QUOTA_EXCEEDED, RATE_LIMITED, USAGE_UNAVAILABLE, error
from entrix.orders.usage import Limits, limits_by_subject

# Seconds a client should wait after a 503 of the usage table (as after ORDERS_NOT_STORED).
UNAVAILABLE_RETRY_AFTER_SECONDS = 1
# One UpdateItem of a small item, one attempt of 1 s: an ADD is not idempotent, and a timeout or
# a 500 may come after DynamoDB applied it, so botocore must not replay it (a 1,000-order POST
# would be counted twice, or refused for orders it never stored). The request answers 503 and the
# client's retry is counted once more: at most one extra charge per failure, never silent.
USAGE_CONFIG = Config(
    connect_timeout=1, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 1}
)


def client_usage() -> ClientUsage:
    """The usage table and limits of this function's settings (the default share, and the
    clients' own), with a client of its own."""
    limits = Limits(
        rate_limit=settings.CLIENT_RATE_LIMIT.read(),
        window_seconds=settings.CLIENT_RATE_WINDOW_SECONDS.read(),
        daily_orders=settings.CLIENT_DAILY_ORDER_QUOTA.read(),
    )
    overrides = limits_by_subject(limits, json.loads(settings.CLIENT_LIMITS.read()))
    return ClientUsage(
        client("dynamodb", USAGE_CONFIG),
        settings.CLIENT_USAGE_TABLE_NAME.read(),
        limits,
        overrides,
    )


def charge_request(
    event: Mapping[str, Any], usage: ClientUsage, subject: str, now: float
) -> dict[str, Any] | None:
    """None when the request is counted; else the 429 (over the rate) or 503 to answer."""
    try:
        usage.charge_request(subject, now)
    except RateLimited as limited:
        return error(
            event,
            429,
            RATE_LIMITED,
            f"too many requests: {limited}; retry after the window",
            headers={"Retry-After": str(limited.retry_after)},
        )
    except UsageUnavailable:
        return unavailable(event)
    return None


def quota_exceeded(event: Mapping[str, Any], exceeded: QuotaExceeded) -> dict[str, Any]:
    """The 429 of a POST whose orders would not fit in the client's day: none is stored."""
    return error(
        event,
        429,
        DAILY_ORDER_QUOTA_EXCEEDED,
        f"daily order quota exceeded: {exceeded}; no order of this request was stored",
        headers={"Retry-After": str(exceeded.retry_after)},
    )


def unavailable(event: Mapping[str, Any]) -> dict[str, Any]:
    """The 503 when the client's usage could not be counted: nothing was done, send it again."""
    return error(
        event,
        503,
        USAGE_UNAVAILABLE,
        "the request could not be counted against the client's share; nothing was done, send "
        "it again",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )
