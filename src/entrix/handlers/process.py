"""Lambda B: one batch of a run's auction results, called by the Distributed Map per batch.

For each order of the batch: claim it for this run (an order another run has recorded, or claimed
and is still working on, is left alone: `skipped`); then write the accepted ones' results as one
JSON Lines object under the batch's key (a retried batch overwrites the same object), publish one
Slack-style alert per rejected one, and only then record each result on its order. An order whose
result could not be stored or alerted is not recorded: its claim is released and the next run
processes it again (`failed`), so no acceptance and no rejection is lost; at worst an alert is
repeated.

The reply counts the batch's outcomes; the state machine adds them up for the run.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from entrix.auction.platform import Status
from entrix.auction.results import (
    OrderStoreUnavailable,
    ResultStoreUnavailable,
    failed_batch_alert,
    json_lines,
    rejection_alert,
    result_line,
)
from entrix.aws.alerts import AlertTopic
from entrix.aws.clients import PIPELINE_CONFIG, client
from entrix.aws.order_results import OrderResults
from entrix.aws.results_store import ResultsStore
from entrix.environment import (
    ALERT_TOPIC_ARN,
    ORDERS_PENDING_INDEX_NAME,
    ORDERS_TABLE_NAME,
    RESULT_LEASE_SECONDS,
    RESULTS_BUCKET_NAME,
)
from entrix.telemetry import correlated, publish

logger = logging.getLogger(__name__)

# A claim lasts as long as a run may: the state machine's timeout (set by the CDK construct).
DEFAULT_LEASE_SECONDS = 3600
OUTCOMES = ("accepted", "rejected", "skipped", "failed")


class OrderResult(BaseModel):
    """The platform's result for one order, as Lambda A wrote it into the batch."""

    model_config = ConfigDict(frozen=True)

    record_id: str = Field(min_length=1)
    status: Status
    power: int = Field(ge=0)


class ResultsBatch(BaseModel):
    """One Distributed Map item: a batch of results, its results object and the run."""

    model_config = ConfigDict(frozen=True)

    run_id: str = Field(min_length=1)
    results_key: str = Field(pattern=r"^results/.+\.jsonl$")
    orders: list[OrderResult] = Field(min_length=1)


order_results = OrderResults(
    client("dynamodb", PIPELINE_CONFIG),
    os.environ[ORDERS_TABLE_NAME],
    os.environ.get(ORDERS_PENDING_INDEX_NAME, ""),
)
results_store = ResultsStore(client("s3", PIPELINE_CONFIG), os.environ[RESULTS_BUCKET_NAME])
alert_topic = AlertTopic(client("sns", PIPELINE_CONFIG), os.environ[ALERT_TOPIC_ARN])


def _timestamp(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    batch = ResultsBatch.model_validate(event)
    with correlated(batch.run_id):
        outcome = process(batch)
        publish(
            "process",
            ResultsAccepted=outcome["accepted"],
            ResultsRejected=outcome["rejected"],
            ResultsSkipped=outcome["skipped"],
            ResultsFailed=outcome["failed"],
        )
    return outcome


def process(batch: ResultsBatch) -> dict[str, int]:
    """Claim, store or alert, then record each order of the batch; the count of each outcome."""
    clock = time.time()
    now = math.floor(clock)
    result_at = _timestamp(clock)
    lease = int(os.environ.get(RESULT_LEASE_SECONDS, DEFAULT_LEASE_SECONDS))
    counts: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))

    accepted: list[tuple[OrderResult, dict[str, Any]]] = []
    rejected: list[OrderResult] = []
    for order in batch.orders:
        try:
            item = order_results.claim(order.record_id, batch.run_id, now, lease)
        except OrderStoreUnavailable as error:
            logger.error("OrderStoreUnavailable: %s", error)
            counts["failed"] += 1
            continue
        if item is None:
            logger.warning(
                "order %r is processed or claimed by another run; run %s leaves it alone",
                order.record_id,
                batch.run_id,
            )
            counts["skipped"] += 1
        elif order.status is Status.ACCEPTED:
            accepted.append((order, item))
        else:
            rejected.append(order)

    finished: list[OrderResult] = []
    unfinished: list[OrderResult] = []
    if accepted:
        body = json_lines(
            result_line(item, order.power, batch.run_id, result_at) for order, item in accepted
        )
        try:
            results_store.put_lines(batch.results_key, body)
            finished.extend(order for order, _ in accepted)
        except ResultStoreUnavailable as error:
            logger.error("ResultStoreUnavailable: %s", error)
            unfinished.extend(order for order, _ in accepted)
    if rejected:
        alerts = [rejection_alert(o.record_id, batch.run_id, o.power) for o in rejected]
        not_published = set(alert_topic.publish(alerts))
        if not_published:
            logger.error("AlertsUnavailable: %d rejection alerts not published", len(not_published))
        for position, order in enumerate(rejected):
            (unfinished if position in not_published else finished).append(order)

    for order in finished:
        try:
            recorded = order_results.record(
                order.record_id, batch.run_id, now, order.status.value, order.power, result_at
            )
        except OrderStoreUnavailable as error:
            logger.error("OrderStoreUnavailable: %s", error)
            unfinished.append(order)
            continue
        counts[order.status.value if recorded is not None else "skipped"] += 1

    for order in unfinished:
        order_results.release(order.record_id, batch.run_id)
        counts["failed"] += 1
    if counts["failed"]:
        _alert_failed(batch, counts["failed"])
    return dict(counts)


def _alert_failed(batch: ResultsBatch, failed: int) -> None:
    """Tell the trading team that orders of this batch wait for the next run. If the topic is
    what failed, the alert cannot go either: the log line feeds the store-faults alarm."""
    reason = "a store, the alert topic or the orders table was unavailable"
    alert = failed_batch_alert(batch.run_id, batch.results_key, reason, failed)
    if alert_topic.publish([alert]):
        logger.error(
            "AlertsUnavailable: the failed-batch alert of run %s not published", batch.run_id
        )
