"""The last step of a results run: adds up the outcome counts of its batches, and writes the
run's rejection digest.

The Distributed Map's output is one reply per batch; JSONPath intrinsics can count array items
but not add numbers (JSONata could, but the local interpreter does not run it), so this small
function does. When orders were rejected it also returns the run's digest
(entrix.auction.digest), which the state machine publishes: people read one message per run
instead of one per rejected order. It imports nothing beyond the standard library and
entrix.telemetry (itself standard library only); the line it logs carries the run's id
(`correlation_id`).
"""

from __future__ import annotations

import logging
from typing import Any

from entrix import settings
from entrix.auction.digest import rejection_digest
from entrix.auction.outcomes import OUTCOMES, add_up
from entrix.telemetry import correlated

logger = logging.getLogger(__name__)


RUN_SUMMARY_LOG_MESSAGE = "run summary"
SUMMARY_FIELDS = ("orders", *OUTCOMES, "batches")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """`{"orders": N, "batches": [{"accepted": 1, ...}, ...], "run": id, "rejections_prefix":
    p}` -> the run's totals, plus `digest` when any order was rejected."""
    run_id = str(event.get("run", ""))
    with correlated(run_id or None):
        batches = event.get("batches") or []
        orders = int(event.get("orders", 0))
        summary: dict[str, Any] = {"orders": orders, **add_up(batches), "batches": len(batches)}
        digest = rejection_digest(
            run_id,
            orders,
            batches,
            settings.RESULTS_BUCKET_NAME.read(),
            str(event.get("rejections_prefix", "")),
        )
        if digest is not None:
            summary["digest"] = digest
        # The run's totals in one line: a runbook reads a run's outcome here.
        logger.info(RUN_SUMMARY_LOG_MESSAGE, extra={key: summary[key] for key in SUMMARY_FIELDS})
        return summary
