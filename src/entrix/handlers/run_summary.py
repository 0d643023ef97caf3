"""The last step of a results run: adds up the outcome counts of its batches.

The Distributed Map's output is one count object per batch; JSONPath intrinsics can count array
items but not add numbers (JSONata could, but the local interpreter does not run it), so this
small function does. It imports nothing beyond the standard library.
"""

from __future__ import annotations

from typing import Any

OUTCOMES = ("accepted", "rejected", "failed", "skipped")


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    """`{"orders": N, "batches": [{"accepted": 1, ...}, ...]}` -> the run's totals."""
    batches = event.get("batches") or []
    totals = {outcome: 0 for outcome in OUTCOMES}
    for batch in batches:
        for outcome in OUTCOMES:
            totals[outcome] += int(batch.get(outcome, 0))
    return {"orders": int(event.get("orders", 0)), **totals, "batches": len(batches)}
