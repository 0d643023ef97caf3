"""Lambda B: one order's auction result, called by the state machine for each order of a run.

Accepted: claim the order for this run, write its result object to S3 under a key derived from
the record_id (a retried step overwrites the same object), then record the result on the order.
Rejected: record the result, then raise OrderRejected, which the state machine catches and turns
into an alert. An order that another run has recorded, or claimed and is still working on, is
left alone (`{"skipped": 1}`): overlapping runs process each order once.

The reply is one counter (`{"accepted": 1}`), so the state machine sums a run's outcomes with
`States.ArrayLength` over the Map's results.
"""

from __future__ import annotations

import logging
import math
import os
import time
from datetime import UTC, datetime
from typing import Any

import boto3
from pydantic import BaseModel, ConfigDict, Field

from entrix.auction.platform import Status
from entrix.auction.results import OrderRejected, rejection_text, result_document, result_key
from entrix.aws.order_results import OrderResults
from entrix.aws.results_store import ResultsStore
from entrix.environment import (
    ORDERS_PENDING_INDEX_NAME,
    ORDERS_TABLE_NAME,
    RESULT_LEASE_SECONDS,
    RESULTS_BUCKET_NAME,
)
from entrix.telemetry import correlated, publish

logger = logging.getLogger(__name__)

# A claim lasts as long as a run may: the state machine's timeout (set by the CDK construct).
DEFAULT_LEASE_SECONDS = 3600


class ProcessRequest(BaseModel):
    """One Map item: the platform's result for an order, and the run (execution) processing it."""

    model_config = ConfigDict(frozen=True)

    record_id: str = Field(min_length=1)
    status: Status
    power: int = Field(ge=0)
    run_id: str = Field(min_length=1)


order_results = OrderResults(
    boto3.client("dynamodb"),
    os.environ[ORDERS_TABLE_NAME],
    os.environ.get(ORDERS_PENDING_INDEX_NAME, ""),
)
results_store = ResultsStore(boto3.client("s3"), os.environ[RESULTS_BUCKET_NAME])


def _timestamp(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _skipped(request: ProcessRequest) -> dict[str, int]:
    logger.warning(
        "order %r is processed or claimed by another run; run %s leaves it alone",
        request.record_id,
        request.run_id,
    )
    return {"skipped": 1}


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    request = ProcessRequest.model_validate(event)
    with correlated(request.run_id):
        try:
            outcome = process(request)
        except OrderRejected:
            publish("process", ResultsAccepted=0, ResultsRejected=1, ResultsSkipped=0)
            raise
        publish(
            "process",
            ResultsAccepted=outcome.get("accepted", 0),
            ResultsRejected=0,
            ResultsSkipped=outcome.get("skipped", 0),
        )
    return outcome


def process(request: ProcessRequest) -> dict[str, int]:
    """Claim, store and record one order's result; raises OrderRejected for a rejection."""
    clock = time.time()
    now = math.floor(clock)
    result_at = _timestamp(clock)

    if request.status is Status.ACCEPTED:
        lease = int(os.environ.get(RESULT_LEASE_SECONDS, DEFAULT_LEASE_SECONDS))
        item = order_results.claim(request.record_id, request.run_id, now, lease)
        if item is None:
            return _skipped(request)
        item.update(power=request.power, result_run_id=request.run_id, result_at=result_at)
        results_store.put(result_key(request.record_id), result_document(item))

    recorded = order_results.record(
        request.record_id, request.run_id, now, request.status.value, request.power, result_at
    )
    if recorded is None:
        return _skipped(request)
    if request.status is Status.REJECTED:
        raise OrderRejected(rejection_text(request.record_id, request.run_id, request.power))
    return {"accepted": 1}
