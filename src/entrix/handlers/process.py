"""Lambda B: one batch of a run's auction results, called by the Distributed Map per batch.

A thin shell: it reads the batch (entrix.auction.batch_item), runs the batch algorithm
(entrix.auction.processing) over the orders table, results bucket and alert topic, and publishes
the outcome counts as metrics. It logs one line per order (ORDER_LOG_MESSAGE, with `record_id`,
`owner`, `outcome` and `reason`; the run's id as `correlation_id`, like every line it logs),
which is how an operator traces one order (docs/runbooks.md). The reply counts the batch's
outcomes and names its first rejected orders (entrix.auction.outcomes); the state machine adds
them up for the run. The processor is given the invocation's remaining time, so that it stops
starting calls that could outlast it and releases what it claimed instead.
"""

from __future__ import annotations

import functools
import logging
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
from entrix.orders.lifecycle import owner_and_record_id
from entrix.telemetry import correlated, publish

logger = logging.getLogger(__name__)

# The message of the per-order line: short, as a run of 100,000 orders logs 100,000 of them.
ORDER_LOG_MESSAGE = "order"


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
        on_order=log_order,
    )


def log_order(order_key: str, outcome: str, reason: str) -> None:
    """One line for one order of the batch: a `failed` one (released for the next run) as a
    warning, the others as information."""
    owner, record_id = owner_and_record_id(order_key)
    logger.log(
        logging.WARNING if outcome == "failed" else logging.INFO,
        ORDER_LOG_MESSAGE,
        extra={"record_id": record_id, "owner": owner, "outcome": outcome, "reason": reason},
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
