"""The last step of a results run: adds up the outcome counts of its batches, and writes the
run's rejection digest.

The Distributed Map's output is one reply per batch; JSONPath intrinsics can count array items
but not add numbers (JSONata could, but the local interpreter does not run it), so this small
function does. When orders were rejected it also returns the run's digest
(entrix.auction.digest), which the state machine publishes: people read one message per run
instead of one per rejected order. It imports nothing beyond the standard library.
"""

from __future__ import annotations

from typing import Any

from entrix import settings
from entrix.auction.digest import rejection_digest
from entrix.auction.outcomes import add_up


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """`{"orders": N, "batches": [{"accepted": 1, ...}, ...], "run": id, "rejections_prefix":
    p}` -> the run's totals, plus `digest` when any order was rejected."""
    batches = event.get("batches") or []
    orders = int(event.get("orders", 0))
    summary: dict[str, Any] = {"orders": orders, **add_up(batches), "batches": len(batches)}
    digest = rejection_digest(
        str(event.get("run", "")),
        orders,
        batches,
        settings.RESULTS_BUCKET_NAME.read(),
        str(event.get("rejections_prefix", "")),
    )
    if digest is not None:
        summary["digest"] = digest
    return summary
