"""Processing one batch of a run's results: the algorithm behind Lambda B, free of AWS.

For each order of the batch: claim the version the platform gave a result for, for this run (an
order another run has recorded, or claimed and is still working on, or that its owner amended or
cancelled since, is left alone: `skipped`); then write the accepted ones' results as one
JSON Lines object under the batch's key (a retried batch overwrites the same object), publish one
Slack-style alert per rejected one, and only then record each result on its order. An order whose
result could not be stored or alerted is not recorded: its claim is released and the next run
processes it again (`failed`), and one alert says so; no acceptance and no rejection is lost, at
worst an alert is repeated.

The stores are ports (below); `entrix.aws` implements them and the handler wires them.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from entrix.auction.batch_item import OrderResult, ResultsBatch
from entrix.auction.outcomes import no_outcomes
from entrix.auction.platform import Status
from entrix.auction.results import (
    OrderStoreUnavailable,
    ResultStoreUnavailable,
    failed_batch_alert,
    json_lines,
    rejection_alert,
    result_line,
)
from entrix.timestamps import iso_milliseconds

logger = logging.getLogger(__name__)


class OrderClaims(Protocol):
    """The orders table as a run sees it (entrix.aws.order_results.OrderResults)."""

    def claim(
        self, order_key: str, version: str, run_id: str, now: int, lease_seconds: int
    ) -> Mapping[str, Any] | None: ...

    def record(
        self, order_key: str, version: str, run_id: str, status: str, power: int, result_at: str
    ) -> Mapping[str, Any] | None: ...

    def release(self, order_key: str, run_id: str) -> bool: ...


class ResultLines(Protocol):
    """Where accepted results go (entrix.aws.results_store.ResultsStore)."""

    def put_lines(self, key: str, body: bytes) -> None: ...


class Alerts(Protocol):
    """The alert topic (entrix.aws.alerts.AlertTopic): positions of the alerts not published."""

    def publish(self, alerts: Sequence[dict[str, Any]]) -> list[int]: ...


@dataclass(frozen=True)
class BatchProcessor:
    """Lambda B's work on one batch, given its stores and how long a claim lasts."""

    orders: OrderClaims
    results: ResultLines
    alerts: Alerts
    lease_seconds: int

    def process(self, batch: ResultsBatch, clock: float) -> dict[str, int]:
        """Claim, store or alert, then record each order of the batch; the count of each outcome."""
        now = math.floor(clock)
        result_at = iso_milliseconds(clock)
        counts: Counter[str] = Counter(no_outcomes())

        accepted: list[tuple[OrderResult, Mapping[str, Any]]] = []
        rejected: list[tuple[OrderResult, Mapping[str, Any]]] = []
        for order in batch.orders:
            try:
                item = self.orders.claim(
                    order.order_key, order.version, batch.run_id, now, self.lease_seconds
                )
            except OrderStoreUnavailable as error:
                logger.error("OrderStoreUnavailable: %s", error)
                counts["failed"] += 1
                continue
            if item is None:
                logger.warning(
                    "order %r (version %s) is processed, claimed by another run, amended or "
                    "cancelled; run %s leaves it alone",
                    order.order_key,
                    order.version,
                    batch.run_id,
                )
                counts["skipped"] += 1
            elif order.status is Status.ACCEPTED:
                accepted.append((order, item))
            else:
                rejected.append((order, item))

        finished: list[OrderResult] = []
        unfinished: list[OrderResult] = []
        if accepted:
            body = json_lines(
                result_line(item, order.power, batch.run_id, result_at) for order, item in accepted
            )
            try:
                self.results.put_lines(batch.results_key, body)
                finished.extend(order for order, _ in accepted)
            except ResultStoreUnavailable as error:
                logger.error("ResultStoreUnavailable: %s", error)
                unfinished.extend(order for order, _ in accepted)
        if rejected:
            alerts = [rejection_alert(item, batch.run_id, o.power) for o, item in rejected]
            not_published = set(self.alerts.publish(alerts))
            if not_published:
                logger.error(
                    "AlertsUnavailable: %d rejection alerts not published", len(not_published)
                )
            for position, (order, _) in enumerate(rejected):
                (unfinished if position in not_published else finished).append(order)

        for order in finished:
            try:
                recorded = self.orders.record(
                    order.order_key,
                    order.version,
                    batch.run_id,
                    order.status.value,
                    order.power,
                    result_at,
                )
            except OrderStoreUnavailable as error:
                logger.error("OrderStoreUnavailable: %s", error)
                unfinished.append(order)
                continue
            if recorded is None:
                logger.error(
                    "order %r: its %s result is stored or alerted, but run %s no longer holds "
                    "version %s, so it is not recorded (another run took it over)",
                    order.order_key,
                    order.status.value,
                    batch.run_id,
                    order.version,
                )
            counts[order.status.value if recorded is not None else "skipped"] += 1

        for order in unfinished:
            self.orders.release(order.order_key, batch.run_id)
            counts["failed"] += 1
        if counts["failed"]:
            self._alert_failed(batch, counts["failed"])
        return dict(counts)

    def _alert_failed(self, batch: ResultsBatch, failed: int) -> None:
        """Tell the trading team that orders of this batch wait for the next run. If the topic is
        what failed, the alert cannot go either: the log line feeds the store-faults alarm."""
        reason = "a store, the alert topic or the orders table was unavailable"
        alert = failed_batch_alert(batch.run_id, batch.results_key, reason, failed)
        if self.alerts.publish([alert]):
            logger.error(
                "AlertsUnavailable: the failed-batch alert of run %s not published", batch.run_id
            )
