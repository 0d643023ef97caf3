"""Lambda B: one batch of a run's auction results, called by the Distributed Map per batch.

A thin shell: it reads the batch (entrix.auction.batch_item), runs the batch algorithm
(entrix.auction.processing) over the orders table, results bucket and alert topic, and publishes
the outcome counts as metrics. The reply counts the batch's outcomes and names its first
rejected orders (entrix.auction.outcomes); the state machine adds them up for the run. The
processor is given the invocation's remaining time, so that it stops starting calls that could
outlast it and releases what it claimed instead.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from entrix import settings
from entrix.auction.batch_item import ResultsBatch
from entrix.auction.processing import BatchProcessor
from entrix.aws.alerts import AlertTopic
from entrix.aws.clients import PROCESS_CONFIG, client, longest_call_seconds
from entrix.aws.order_results import OrderResults
from entrix.aws.orders_table import RemainingTime
from entrix.aws.results_store import ResultsStore
from entrix.telemetry import correlated, publish


@functools.cache
def processor() -> BatchProcessor:
    """The batch algorithm over this function's stores, made on first use and kept warm."""
    dynamodb, s3, sns = (client(service, PROCESS_CONFIG) for service in ("dynamodb", "s3", "sns"))
    return BatchProcessor(
        orders=OrderResults(dynamodb, settings.ORDERS_TABLE_NAME.read()),
        results=ResultsStore(s3, settings.RESULTS_BUCKET_NAME.read()),
        alerts=AlertTopic(sns, settings.ALERT_TOPIC_ARN.read()),
        lease_seconds=settings.RESULT_LEASE_SECONDS.read(),
        longest_call_seconds=max(longest_call_seconds(c) for c in (dynamodb, s3, sns)),
    )


def handler(event: dict[str, Any], context: RemainingTime | None) -> dict[str, Any]:
    batch = ResultsBatch.model_validate(event)
    remaining = None if context is None else context.get_remaining_time_in_millis() / 1000
    with correlated(batch.run_id):
        outcome = processor().process(batch, time.time(), remaining)
        publish(
            "process",
            ResultsAccepted=outcome["accepted"],
            ResultsRejected=outcome["rejected"],
            ResultsSkipped=outcome["skipped"],
            ResultsFailed=outcome["failed"],
        )
    return outcome
