"""Processing one batch of a run's results: the algorithm behind Lambda B, free of AWS.

For each order of the batch: claim the version the platform gave a result for, for this run (an
order another run has recorded, or claimed and is still working on, or that its owner amended or
cancelled since, is left alone: `skipped`); then write the accepted ones' lines as one JSON Lines
object under the batch's results key and the rejected ones' under its rejections key, publish
one Slack-style alert per rejected one, and only then record each result on its order. An order
whose result could not be stored or alerted is not recorded: its claim is released and the next
run processes it again (`failed`), and one alert says so; no acceptance and no rejection is lost,
at worst an alert is repeated.

Each processed order has exactly one line across `results/` and `rejections/`, whatever fails:

- A claim names the object this run writes the order's line into (`stored_in`), unless an
  earlier run named one; that run may have written the line and then failed (or timed out)
  before recording it. So a claimer whose order names another object reads that object first:
  when the line is there, this run records that line's result (and publishes a rejection's
  alert again: it may have been lost with the failed run) instead of writing a second line;
  when it is not, the order is moved to this run's object and processed as usual.
- Objects only grow: a retried invocation of the same run reads the batch's objects first,
  keeps every line in them, adds lines only for orders not there yet, and records an order whose
  line is there with that line's result. Each write holds only over the object as read (S3
  conditional writes: no object yet, or its ETag), so two invocations of the same batch at once
  (Step Functions retries one whose first attempt still runs) cannot overwrite each other's
  lines: the one refused reads the object again, takes each line now there as its order's
  result, and writes again for the rest, up to STORE_ATTEMPTS writes.
- A release drops `stored_in` only when no line of the order can be stored: S3 answered the put
  with an error and no attempt went unanswered, or no put was attempted since this run's claim
  named the object (or moved it there), or since this invocation read it without the line;
  otherwise the next claimer looks first.

Calls run up to PARALLEL_CALLS at a time (claims, the two objects, alert requests, records).
Given the invocation's remaining time, a phase (claims; store; alerts; records) or a call of it
starts only when the longest it can take still ends before the deadline (the invocation's end,
less the time kept to release what the run claimed) and before the claims' lease ends. Orders it
never claimed stay pending untouched; orders it claimed but cannot finish are released.

Every order of the batch comes to one outcome (`accepted`, `rejected`, `skipped`, `failed`) with
a short reason code (REASONS), told to the processor's `on_order` as it is decided: Lambda B logs
one line per order from it, which is how an operator traces one order through a run.

The stores are ports (below); `entrix.aws` implements them and the handler wires them.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from entrix.auction.batch_item import OrderResult, ResultsBatch
from entrix.auction.outcomes import EXAMPLES_PER_BATCH, REJECTED_EXAMPLES, no_outcomes
from entrix.auction.platform import Status
from entrix.auction.results import (
    ObjectChanged,
    OrderStoreUnavailable,
    ResultStoreUnavailable,
    batch_rejections_key,
    failed_batch_alert,
    json_lines,
    line_identity,
    parse_line,
    rejection_alert,
    result_line,
)
from entrix.timestamps import iso_milliseconds

logger = logging.getLogger(__name__)

# Calls of one batch in flight at once (the clients' connection pools allow as many:
# entrix.aws.clients.PROCESS_CONFIG), as the intake's parallel puts.
PARALLEL_CALLS = 32
# Order keys named in the one log line of a batch's orders left alone.
SKIPPED_LOGGED = 5
# Kept after the last phase for the reply and the metrics.
REPLY_MARGIN_SECONDS = 2.0
# Writes of one object, each refused because another invocation of the batch wrote it since it
# was read, before its orders are given up (each refusal means the other invocation stored lines).
STORE_ATTEMPTS = 5

# Why an order came to its outcome: short, stable codes, one log line per order carries one
# (docs/runbooks.md explains each to whoever traces an order).
REASONS = {
    # accepted / rejected: the auction platform's result is stored and recorded.
    "auction_result": "the auction platform's result, stored and recorded",
    # skipped: the order is not this run's to process.
    "not_found": "the order is gone (expired or deleted) since the run read it",
    "changed": "amended or cancelled since the run took it",
    "processed": "already recorded by another run",
    "claimed_elsewhere": "another run holds its claim",
    "claim_refused": "amended, cancelled or taken by another run before this run's claim",
    "taken_over": "its result is stored but another run took it over before it was recorded",
    # failed: released (or left pending) for the next run.
    "no_time": "the invocation's time or the claim's lease ran out before its next step",
    "order_store_unavailable": "the orders table did not answer",
    "result_store_unavailable": "S3 did not answer (results or rejections object)",
    "object_contended": "its object changed under every write (another invocation of the batch)",
    "alerts_unavailable": "its rejection alert was not published",
}
# Told each order's key, outcome and reason.
OrderSink = Callable[[str, str, str], None]

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class OrderClaims(Protocol):
    """The orders table as a run sees it (entrix.aws.order_results.OrderResults)."""

    def current(self, order_keys: Sequence[str]) -> Mapping[str, Mapping[str, Any]]: ...

    def claim(
        self,
        order_key: str,
        version: str,
        run_id: str,
        now: int,
        lease_seconds: int,
        stored_in: str,
    ) -> tuple[Mapping[str, Any], bool] | None: ...

    def move_stored_in(self, order_key: str, run_id: str, old: str, new: str) -> bool: ...

    def record(
        self,
        order_key: str,
        version: str,
        run_id: str,
        status: str,
        power: int | Decimal,
        result_at: str,
        result_run_id: str | None = None,
    ) -> Mapping[str, Any] | None: ...

    def release(
        self, order_key: str, run_id: str, nothing_written_to: str | None = None
    ) -> bool: ...


class ResultLines(Protocol):
    """Where results and rejections go (entrix.aws.results_store.ResultsStore)."""

    def read_object(self, key: str) -> tuple[list[str], str | None]: ...

    def put_lines_over(self, key: str, body: bytes, etag: str | None) -> None: ...


class Alerts(Protocol):
    """The alert topic (entrix.aws.alerts.AlertTopic): positions of the alerts not published."""

    def publish(self, alerts: Sequence[dict[str, Any]]) -> list[int]: ...


@dataclass(frozen=True)
class BatchProcessor:
    """Lambda B's work on one batch, given its stores, how long a claim lasts and the longest
    one call of its stores can take (retries included)."""

    orders: OrderClaims
    results: ResultLines
    alerts: Alerts
    lease_seconds: int
    longest_call_seconds: float = 0.0
    monotonic: Callable[[], float] = time.monotonic
    # Told each order's outcome and reason as it is decided (Lambda B logs it).
    on_order: OrderSink | None = None

    def process(
        self, batch: ResultsBatch, clock: float, remaining_seconds: float | None = None
    ) -> dict[str, Any]:
        """Claim, store, alert, then record each order of the batch, within `remaining_seconds`
        (None: no limit); the count of each outcome, and the first rejected orders recorded."""
        return _BatchRun(self, batch, clock, remaining_seconds).run()


@dataclass(frozen=True)
class _Result:
    """What is recorded on an order: the result its stored line holds."""

    status: str
    power: int | Decimal
    run_id: str
    result_at: str


@dataclass(eq=False)
class _Claimed:
    """An order this run holds: the item its claim returned, the object this run writes its
    line into, its result once the line is stored (or found stored), and whether its line is
    known to be nowhere (given up, it is released with `stored_in` dropped: its owner may amend
    or cancel it at once)."""

    position: int
    order: OrderResult
    item: Mapping[str, Any]
    key: str
    result: _Result | None = None
    nothing_written: bool = False

    @property
    def identity(self) -> tuple[str, str, str]:
        return str(self.item["owner"]), str(self.item["record_id"]), self.order.version


@dataclass
class _Object:
    """A results or rejections object as read: its lines, its ETag (None: no object), and the
    parsed lines by order."""

    lines: list[str]
    etag: str | None
    by_order: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, lines: list[str], etag: str | None) -> _Object:
        parsed = (parse_line(line) for line in lines if line.strip())
        return cls(lines, etag, {line_identity(document): document for document in parsed})


def _parallel(call: Callable[[_In], _Out], items: Sequence[_In]) -> list[_Out]:
    """`call` on each item, up to PARALLEL_CALLS at once, results in order. The pool's threads
    are named after the caller's, so the logs (and tests) tell the batches' calls apart, and
    each call runs in a copy of the caller's context, so its log lines carry the run's
    correlation id (entrix.telemetry.correlated) as the caller's do."""
    if len(items) <= 1:
        return [call(item) for item in items]
    prefix = threading.current_thread().name
    caller = contextvars.copy_context()

    def in_caller_context(item: _In) -> _Out:
        return caller.copy().run(call, item)

    with ThreadPoolExecutor(min(PARALLEL_CALLS, len(items)), thread_name_prefix=prefix) as pool:
        return list(pool.map(in_caller_context, items))


def _plain_number(value: int | Decimal) -> int | float:
    """A power for JSON (an alert, the reply): platform powers are whole numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _result_of(line: Mapping[str, Any]) -> _Result:
    return _Result(line["status"], line["power"], line["run_id"], line["result_at"])


class _BatchRun:
    """One invocation's work on one batch and what it came to."""

    def __init__(
        self,
        processor: BatchProcessor,
        batch: ResultsBatch,
        clock: float,
        remaining_seconds: float | None,
    ) -> None:
        self.processor = processor
        self.on_order = processor.on_order
        self.batch = batch
        self.clock = clock
        self.now = math.floor(clock)
        self.result_at = iso_milliseconds(clock)
        self.started = processor.monotonic()
        longest = processor.longest_call_seconds
        if remaining_seconds is None:
            self.ends_at = self.work_ends_at = math.inf
        else:
            self.ends_at = self.started + remaining_seconds - REPLY_MARGIN_SECONDS
            # The releases of what the run claimed (in parallel) fit after the last phase.
            self.work_ends_at = self.ends_at - longest
        self.lease_ends_at = self.now + processor.lease_seconds
        self.keys = {
            Status.ACCEPTED.value: batch.results_key,
            Status.REJECTED.value: batch_rejections_key(batch.results_key),
        }
        self.counts: Counter[str] = Counter(no_outcomes())
        self.order_lock = threading.Lock()
        self.left_pending = 0
        # Orders skipped because another run has (or had) them, or they changed: logged once.
        self.left_alone = 0
        self.left_alone_examples: list[str] = []
        # Claimed orders to release, each with the object it is known not to be written to.
        self.unfinished: list[tuple[_Claimed, str | None]] = []
        self.examples: list[tuple[int, dict[str, Any]]] = []
        self.objects: dict[str, _Object] = {}
        self.objects_lock = threading.Lock()

    def fits(self, until: float | None = None) -> bool:
        """Whether one more call, the longest it can take, ends before `until` (the work's
        deadline unless given) and before the claims' lease ends."""
        longest = self.processor.longest_call_seconds
        elapsed = self.processor.monotonic() - self.started
        deadline = self.work_ends_at if until is None else until
        return (
            self.started + elapsed + longest <= deadline
            and self.clock + elapsed + longest <= self.lease_ends_at
        )

    def run(self) -> dict[str, Any]:
        claimed = self._claim(self._not_taken())
        ready = self._store(self._recover(claimed))
        self._record(self._alert(ready))
        self._release()
        self._log_skipped()
        outcome: dict[str, Any] = dict(self.counts)
        if self.examples:
            examples = sorted(self.examples, key=lambda example: example[0])
            outcome[REJECTED_EXAMPLES] = [e for _, e in examples[:EXAMPLES_PER_BATCH]]
        return outcome

    # --- claims ------------------------------------------------------------------------------

    def _not_taken(self) -> list[tuple[int, OrderResult]]:
        """The batch's orders less those another run has (or had) and those amended since, as
        one read of the batch shows them (a failed read: the claims decide alone)."""
        orders = list(enumerate(self.batch.orders))
        if not self.fits():
            return orders
        try:
            current = self.processor.orders.current([order.order_key for _, order in orders])
        except OrderStoreUnavailable as error:
            logger.warning("reading the batch's orders failed, every order is claimed: %s", error)
            return orders
        wanted = []
        for position, order in orders:
            item = current.get(order.order_key)
            reason = "not_found" if item is None else self._taken(item, order)
            if reason is not None:
                self._skip(order, reason)
            else:
                wanted.append((position, order))
        return wanted

    def _taken(self, item: Mapping[str, Any], order: OrderResult) -> str | None:
        """Why another run has (or had) the order, or it changed since; None: it is this run's."""
        run_id = self.batch.run_id
        if item.get("version") != order.version:
            return "changed"
        if item.get("result_status") != "pending":
            return "processed" if item.get("result_run_id") != run_id else None
        claimed_by = item.get("claimed_by")
        if claimed_by not in (None, run_id) and item.get("claim_expires_at", 0) >= self.now:
            return "claimed_elsewhere"
        return None

    def _note(self, order: OrderResult, outcome: str, reason: str) -> None:
        """Tell the caller the order's outcome (from any of the batch's threads)."""
        if self.on_order is not None:
            with self.order_lock:
                self.on_order(order.order_key, outcome, reason)

    def _skip(self, order: OrderResult, reason: str) -> None:
        self._note(order, "skipped", reason)
        self.left_alone += 1
        if len(self.left_alone_examples) < SKIPPED_LOGGED:
            self.left_alone_examples.append(order.order_key)
        self.counts["skipped"] += 1

    def _log_skipped(self) -> None:
        """One line for the batch: overlapping runs skip each other's orders by the thousand."""
        if self.left_alone:
            logger.warning(
                "run %s leaves alone %d order(s) of batch %s that are processed, claimed by "
                "another run, amended or cancelled (first: %s)",
                self.batch.run_id,
                self.left_alone,
                self.batch.results_key,
                ", ".join(self.left_alone_examples),
            )

    def _claim(self, orders: list[tuple[int, OrderResult]]) -> list[_Claimed]:
        def claim(entry: tuple[int, OrderResult]) -> tuple[Mapping[str, Any], bool] | str:
            _, order = entry
            if not self.fits():
                return "no_time"
            try:
                item = self.processor.orders.claim(
                    order.order_key,
                    order.version,
                    self.batch.run_id,
                    self.now,
                    self.processor.lease_seconds,
                    self.keys[order.status.value],
                )
            except OrderStoreUnavailable as error:
                logger.error("OrderStoreUnavailable: %s", error)
                return "order_store_unavailable"
            return "claim_refused" if item is None else item

        claimed = []
        for (position, order), item in zip(orders, _parallel(claim, orders), strict=True):
            if item in ("no_time", "order_store_unavailable"):
                assert isinstance(item, str)
                self._note(order, "failed", item)
                self.left_pending += 1
            elif item == "claim_refused":
                self._skip(order, item)
            else:
                assert not isinstance(item, str)
                taken, named_now = item
                key = self.keys[order.status.value]
                claimed.append(_Claimed(position, order, taken, key, nothing_written=named_now))
        return claimed

    # --- lines an earlier run may have stored --------------------------------------------------

    def _object(self, key: str, again: bool = False) -> _Object:
        """The object at `key` as this invocation last read it, or read `again`
        (ResultStoreUnavailable)."""
        with self.objects_lock:
            known = self.objects.get(key)
        if known is not None and not again:
            return known
        read = _Object.of(*self.processor.results.read_object(key))
        with self.objects_lock:
            self.objects[key] = read
        return read

    def _recover(self, claimed: list[_Claimed]) -> list[_Claimed]:
        """Orders whose claim names another run's object: their line there becomes their
        result; those without one are moved to this run's object."""
        elsewhere = [c for c in claimed if c.item.get("stored_in", c.key) != c.key]
        if not elsewhere:
            return claimed
        if not self.fits():
            self._give_up(claimed, "no_time")
            return []
        keys = sorted({str(c.item["stored_in"]) for c in elsewhere})
        read: dict[str, _Object | None] = {}
        for key, found in zip(keys, _parallel(self._read_or_none, keys), strict=True):
            read[key] = found
        to_move = []
        for order in elsewhere:
            earlier = read[str(order.item["stored_in"])]
            if earlier is None:
                self._give_up([order], "result_store_unavailable")
            elif (line := earlier.by_order.get(order.identity)) is not None:
                logger.warning(
                    "order %r: run %s stored its line in %s; run %s records that result",
                    order.order.order_key,
                    line["run_id"],
                    order.item["stored_in"],
                    self.batch.run_id,
                )
                order.result = _result_of(line)
            else:
                to_move.append(order)
        moved = {id(order) for order in self._move(to_move)}
        waiting = {id(order) for order in elsewhere if order.result is None}
        return [c for c in claimed if id(c) not in waiting or id(c) in moved]

    def _read_or_none(self, key: str) -> _Object | None:
        try:
            return self._object(key)
        except ResultStoreUnavailable as error:
            logger.error("ResultStoreUnavailable: %s", error)
            return None

    def _move(self, orders: list[_Claimed]) -> list[_Claimed]:
        """Name this run's object on each order; the orders moved."""

        def move(order: _Claimed) -> bool | str:
            if not self.fits():
                return "no_time"
            try:
                return self.processor.orders.move_stored_in(
                    order.order.order_key,
                    self.batch.run_id,
                    str(order.item["stored_in"]),
                    order.key,
                )
            except OrderStoreUnavailable as error:
                logger.error("OrderStoreUnavailable: %s", error)
                return "order_store_unavailable"

        moved = []
        for order, outcome in zip(orders, _parallel(move, orders), strict=True):
            if isinstance(outcome, str):
                self._give_up([order], outcome)
            elif outcome:
                order.nothing_written = True  # no invocation wrote it here before the move
                moved.append(order)
            else:
                self._skip(order.order, "claimed_elsewhere")
        return moved

    # --- store, alert, record ----------------------------------------------------------------

    def _store(self, claimed: list[_Claimed]) -> list[_Claimed]:
        """Write each object, every line already in it kept; the orders whose line is stored."""
        by_key: dict[str, list[_Claimed]] = {}
        for order in claimed:
            if order.result is None:
                by_key.setdefault(order.key, []).append(order)
        if not by_key:
            return claimed
        if not self.fits():
            self._give_up(claimed, "no_time")
            return []
        _parallel(self._store_object, list(by_key.items()))
        return [order for order in claimed if order.result is not None]

    def _store_object(self, entry: tuple[str, list[_Claimed]]) -> None:
        """Add the orders' lines to the object at `key`, writing only over the object as read;
        refused (another invocation of the batch wrote it), read it again and retry."""
        key, new = entry
        for attempt in range(STORE_ATTEMPTS):
            try:
                existing = self._object(key, again=attempt > 0)
            except ResultStoreUnavailable as error:
                logger.error("ResultStoreUnavailable: %s", error)
                self._give_up(new, "result_store_unavailable")
                return
            new = self._not_stored_in(existing, new)
            if not new:
                return
            if not self.fits():
                self._give_up(new, "no_time")
                return
            status, run_id = new[0].order.status.value, self.batch.run_id
            lines = [
                result_line(order.item, status, order.order.power, run_id, self.result_at)
                for order in new
            ]
            for order in new:
                order.nothing_written = False  # until S3 answers
            try:
                self.processor.results.put_lines_over(
                    key, json_lines([*existing.lines, *lines]), existing.etag
                )
            except ObjectChanged as error:
                logger.warning("%s: run %s reads it again", error, run_id)
                continue
            except ResultStoreUnavailable as error:
                logger.error("ResultStoreUnavailable: %s", error)
                written_nowhere = None if error.maybe_written else key
                for order in new:
                    self._note(order.order, "failed", "result_store_unavailable")
                with self.objects_lock:
                    self.unfinished.extend((order, written_nowhere) for order in new)
                return
            for order in new:
                order.result = _Result(status, order.order.power, run_id, self.result_at)
            return
        logger.error(
            "%s changed under each of run %s's %d writes", key, self.batch.run_id, attempt + 1
        )
        self._give_up(new, "object_contended")

    @staticmethod
    def _not_stored_in(existing: _Object, orders: list[_Claimed]) -> list[_Claimed]:
        """The orders without a line in `existing`; each with one takes that line's result (a
        retried or concurrent invocation of this run stored it)."""
        new = []
        for order in orders:
            line = existing.by_order.get(order.identity)
            if line is not None:
                order.result = _result_of(line)
            else:
                order.nothing_written = True
                new.append(order)
        return new

    def _alert(self, ready: list[_Claimed]) -> list[_Claimed]:
        """Publish each rejected order's alert; the orders ready to record."""
        rejected = [order for order in ready if order.result and order.result.status == "rejected"]
        if not rejected:
            return ready
        if not self.fits():
            self._give_up(rejected, "no_time")
            return [order for order in ready if order not in rejected]
        alerts = []
        for order in rejected:
            assert order.result is not None
            power = _plain_number(order.result.power)
            alerts.append(rejection_alert(order.item, order.result.run_id, power))
        not_published = {rejected[position] for position in self.processor.alerts.publish(alerts)}
        if not_published:
            logger.error("AlertsUnavailable: %d rejection alerts not published", len(not_published))
            self._give_up(not_published, "alerts_unavailable")
        return [order for order in ready if order not in not_published]

    def _record(self, ready: list[_Claimed]) -> None:
        def record(order: _Claimed) -> Mapping[str, Any] | str | None:
            result = order.result
            assert result is not None
            if not self.fits():
                return "no_time"
            try:
                return self.processor.orders.record(
                    order.order.order_key,
                    order.order.version,
                    self.batch.run_id,
                    result.status,
                    result.power,
                    result.result_at,
                    result.run_id,
                )
            except OrderStoreUnavailable as error:
                logger.error("OrderStoreUnavailable: %s", error)
                return "order_store_unavailable"

        for order, recorded in zip(ready, _parallel(record, ready), strict=True):
            assert order.result is not None
            if isinstance(recorded, str):
                self._give_up([order], recorded)
            elif recorded is None:
                logger.error(
                    "order %r: its %s result is stored, but run %s no longer holds version %s, "
                    "so it is not recorded (another run took it over)",
                    order.order.order_key,
                    order.result.status,
                    self.batch.run_id,
                    order.order.version,
                )
                self._note(order.order, "skipped", "taken_over")
                self.counts["skipped"] += 1
            else:
                self._note(order.order, order.result.status, "auction_result")
                self.counts[order.result.status] += 1
                if order.result.status == "rejected":
                    example = {
                        "record_id": order.item["record_id"],
                        "owner": order.item["owner"],
                        "power": _plain_number(order.result.power),
                    }
                    self.examples.append((order.position, example))

    # --- what the run could not finish --------------------------------------------------------

    def _give_up(self, orders: Iterable[_Claimed], reason: str) -> None:
        """Release these orders at the end (`failed`, for `reason`); `stored_in` stays unless no
        line of the order can be stored (none was written, or the object was read without it
        and no put followed)."""
        orders = list(orders)
        for order in orders:
            self._note(order.order, "failed", reason)
        with self.objects_lock:
            self.unfinished.extend(
                (order, order.key if order.nothing_written and order.result is None else None)
                for order in orders
            )

    def _release(self) -> None:
        """Release what the run claimed but could not finish, and say what waits for the next
        run: those released, those whose release failed (claimed until the lease ends), and
        those it never claimed (pending, untouched)."""
        run_id = self.batch.run_id

        def release(entry: tuple[_Claimed, str | None]) -> bool:
            order, nothing_written_to = entry
            return self.processor.orders.release(order.order.order_key, run_id, nothing_written_to)

        released = sum(_parallel(release, self.unfinished))
        still_claimed = len(self.unfinished) - released
        self.counts["failed"] += len(self.unfinished) + self.left_pending
        if not self.counts["failed"]:
            return
        reason = "a store, the alert topic or the orders table was unavailable, or time ran out"
        alert = failed_batch_alert(
            run_id, self.batch.results_key, reason, released, self.left_pending, still_claimed
        )
        if not self.fits(until=self.ends_at) or self.processor.alerts.publish([alert]):
            logger.error(
                "AlertsUnavailable: the failed-batch alert of run %s not published", run_id
            )
