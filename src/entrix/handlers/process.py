"""Lambda B: one batch of a run's auction results, called by the Distributed Map per batch.

A thin shell: it reads the batch (entrix.auction.batch_item), runs the batch algorithm
(entrix.auction.processing) over the orders table, results bucket and alert topic, and publishes
the outcome counts as metrics. The reply counts the batch's outcomes; the state machine adds them
up for the run.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from entrix import settings
from entrix.auction.batch_item import ResultsBatch
from entrix.auction.processing import BatchProcessor
from entrix.aws.alerts import AlertTopic
from entrix.aws.clients import PIPELINE_CONFIG, client
from entrix.aws.order_results import OrderResults
from entrix.aws.results_store import ResultsStore
from entrix.telemetry import correlated, publish


@functools.cache
def processor() -> BatchProcessor:
    """The batch algorithm over this function's stores, made on first use and kept warm."""
    return BatchProcessor(
        orders=OrderResults(client("dynamodb", PIPELINE_CONFIG), settings.ORDERS_TABLE_NAME.read()),
        results=ResultsStore(client("s3", PIPELINE_CONFIG), settings.RESULTS_BUCKET_NAME.read()),
        alerts=AlertTopic(client("sns", PIPELINE_CONFIG), settings.ALERT_TOPIC_ARN.read()),
        lease_seconds=settings.RESULT_LEASE_SECONDS.read(),
    )


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    batch = ResultsBatch.model_validate(event)
    with correlated(batch.run_id):
        outcome = processor().process(batch, time.time())
        publish(
            "process",
            ResultsAccepted=outcome["accepted"],
            ResultsRejected=outcome["rejected"],
            ResultsSkipped=outcome["skipped"],
            ResultsFailed=outcome["failed"],
        )
    return outcome
