"""Orders a run takes close to their expiry: the trading team's alert and the oldest one's age.

No AWS here. A pending order's `version` begins with its `received_at`
(entrix.orders.lifecycle.version) and it expires TTL_SECONDS later, so the keys a run reads from
the pending index (oldest first) tell each order's age without reading its item.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from entrix.auction.platform import PendingOrder
from entrix.orders.limits import TTL_SECONDS

EXPIRING = "expiring"
# Orders an alert names; the count says how many there are in all.
EXAMPLES = 5
EXPIRING_TEXT = "Run {}: {} orders waited so long they expire within {} minutes"


def received_at(order: PendingOrder) -> float | None:
    """Epoch seconds of the order's receipt, from the start of its version (None when it does
    not start with a time: no writer of the table makes such a version, and an alert must not
    fail a run)."""
    text = order.version.split("/", 1)[0]
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _expiries(orders: Sequence[PendingOrder]) -> list[tuple[PendingOrder, int]]:
    """Each order whose version tells its receipt, with its expiry (the intake's `expires_at`)."""
    return [
        (order, int(received) + TTL_SECONDS)
        for order in orders
        if (received := received_at(order)) is not None
    ]


def oldest_age_seconds(orders: Sequence[PendingOrder], now: float) -> int:
    """How long the oldest of `orders` (a run's, oldest first) has waited; 0 when none."""
    times = (received for order in orders if (received := received_at(order)) is not None)
    oldest = next(times, None)
    return 0 if oldest is None else max(0, int(now - oldest))


def expiring_alert(
    orders: Sequence[PendingOrder], run_id: str, now: float, warning_seconds: int
) -> dict[str, object] | None:
    """The alert for the orders of a run (oldest first) that expire within `warning_seconds`
    of `now`, naming the oldest EXAMPLES of them; None when there are none."""
    expiring = [(o, at) for o, at in _expiries(orders) if at - now <= warning_seconds]
    if not expiring:
        return None
    return {
        "text": EXPIRING_TEXT.format(run_id, len(expiring), warning_seconds // 60),
        "status": EXPIRING,
        "run": run_id,
        "count": len(expiring),
        "oldest": [
            {
                "owner": order.order_key.split("#", 1)[0],
                "record_id": order.order_key.split("#", 1)[1],
                "expires_at": expires,
            }
            for order, expires in expiring[:EXAMPLES]
        ],
    }
