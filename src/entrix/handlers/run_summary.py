"""The last step of a results run: adds up the outcome counts of its batches.

The Distributed Map's output is one count object per batch; JSONPath intrinsics can count array
items but not add numbers (JSONata could, but the local interpreter does not run it), so this
small function does. It imports nothing beyond the standard library.
"""

from __future__ import annotations

from typing import Any

from entrix.auction.outcomes import add_up


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    """`{"orders": N, "batches": [{"accepted": 1, ...}, ...]}` -> the run's totals."""
    batches = event.get("batches") or []
    return {"orders": int(event.get("orders", 0)), **add_up(batches), "batches": len(batches)}
