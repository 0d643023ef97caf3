"""What processing auction results means, independent of where they are stored.

A run's results travel in batches: Lambda A splits them into batches small enough to be one
Distributed Map item (a child execution's input is limited to 256 KiB), and names each batch's
results object up front. The key depends only on the run and the batch's position, so a retried
batch of the same run adds to its object instead of writing a second one, and an order recorded
by one run is never processed by another. Each processed order has exactly one line across
`results/` and `rejections/`, also when a run stored it and then failed to record it: the order
names the object its line went into (`stored_in`), and the next run that claims it looks there
first (entrix.auction.processing).

Accepted results are stored as JSON Lines, one object per batch, partitioned by the run's date:
`results/date=YYYY-MM-DD/run=<run id>/batch-00001.jsonl` (Athena and Glue read this layout as a
`date` partition); rejected ones alike under `rejections/`, same date, run and batch. The run's
batches themselves are one JSON array at `batches/date=YYYY-MM-DD/<run id>.json`, which the
state machine's ItemReader reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from entrix.auction.platform import Status
from entrix.orders.numbers import number_text
from entrix.orders.order_schema import FIELDS

RESULTS_PREFIX = "results/"
REJECTIONS_PREFIX = "rejections/"
BATCHES_PREFIX = "batches/"
# Alert texts, `{}` filled in order. The not-ready alert is filled by the state machine with
# States.Format, so it must not contain the characters States.Format reserves (quote,
# backslash, literal braces).
REJECTION_TEXT = "Order {} of {} was rejected in auction run {} (power offered: {})."
NOT_READY_TEXT = "Auction results were not ready after {} polls; run {} stopped, nothing processed."
FAILED_BATCH_TEXT = (
    "Run {} could not finish batch {} ({}): {} order(s) released and {} left pending untouched; "
    "the next run retries them."
)
# The same when some releases failed: those orders stay claimed until the run's lease ends.
FAILED_BATCH_STILL_CLAIMED_TEXT = (
    "Run {} could not finish batch {} ({}): {} order(s) released, {} left pending untouched and "
    "{} still claimed (their release failed: they stay claimed until the run's lease ends); the "
    "next run retries them."
)
# Sent by the state machine (States.Format: no quote) when Lambda B failed as a whole (crashed
# or timed out): what it had claimed stays claimed until the run's lease ends, and only then does
# a run take it again.
CRASHED_BATCH_TEXT = (
    "Run {} could not finish batch {} ({}): its {} order(s) stay claimed until the lease of the "
    "run ends, then the next run retries them."
)


class ResultStoreUnavailable(Exception):
    """Reading or writing a results, rejections or batches object failed (the orders involved
    stay pending). `maybe_written`: a write may have landed all the same (no answer came back to
    one of its attempts), so the object must be looked at before the orders are written again."""

    def __init__(self, message: str, maybe_written: bool = True) -> None:
        super().__init__(message)
        self.maybe_written = maybe_written


class ObjectChanged(Exception):
    """A conditional write of an object was refused: the object was created or changed since it
    was read (another invocation of the same batch wrote it). Nothing of this write landed."""


class OrderStoreUnavailable(Exception):
    """Reading or recording orders in the table failed; transient, retried."""


class AlertsUnavailable(Exception):
    """The alert topic refused a rejection alert (the order stays pending, alerted next run)."""


def batches_key(run_date: str, run_id: str) -> str:
    """Where Lambda A puts a run's batches for the state machine to read."""
    return f"{BATCHES_PREFIX}date={run_date}/{run_id}.json"


def batch_results_key(run_date: str, run_id: str, batch_number: int) -> str:
    """The S3 key of one batch's accepted results: the same for every retry of the batch."""
    return f"{RESULTS_PREFIX}date={run_date}/run={run_id}/batch-{batch_number:05d}.jsonl"


def batch_rejections_key(results_key: str) -> str:
    """The S3 key of one batch's rejected results: its results key under `rejections/`, so a
    run's whole outcome is partitioned alike."""
    if not results_key.startswith(RESULTS_PREFIX):
        raise ValueError(f"not a results key: {results_key!r}")
    return REJECTIONS_PREFIX + results_key.removeprefix(RESULTS_PREFIX)


def run_rejections_prefix(run_date: str, run_id: str) -> str:
    """Where every rejections object of a run is: the full list a rejection digest points to."""
    return f"{REJECTIONS_PREFIX}date={run_date}/run={run_id}/"


def result_line(
    item: Mapping[str, Any], status: str, power: int | Decimal, run_id: str, result_at: str
) -> str:
    """One order's line in its batch's results (accepted) or rejections (rejected) JSON Lines
    object, from its claimed table item:
    its owner, every client field the item holds (entrix.orders.order_schema.FIELDS), its
    receipt, and the result. `result_at` is the attempt's time, also recorded on the order, so
    line and table agree. Numbers are written as their exact text (entrix.orders.numbers), never
    through a binary float: `12345678901234567890.123456789` stays those digits."""
    fields = {name: value for name in FIELDS if (value := item.get(name)) is not None}
    document = {
        **fields,
        "owner": item["owner"],
        "version": item["version"],
        "received_at": item.get("received_at"),
        "status": status,
        "power": power,
        "run_id": run_id,
        "result_at": result_at,
    }
    return exact_json(document)


def exact_json(value: Any) -> str:
    """JSON text like `json.dumps(value, sort_keys=True, ensure_ascii=False)`, with every
    Decimal written as its exact number text instead of the nearest double, so the same value
    gives the same bytes."""
    if isinstance(value, Decimal):
        return number_text(value)
    if isinstance(value, Mapping):
        members = (
            f"{json.dumps(str(key), ensure_ascii=False)}: {exact_json(value[key])}"
            for key in sorted(value, key=str)
        )
        return "{" + ", ".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(exact_json(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def json_lines(lines: Iterable[str]) -> bytes:
    """A JSON Lines body: one document per line, each line ended by a newline."""
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def rejection_text(record_id: str, owner: str, run_id: str, power: int | float | Decimal) -> str:
    """The readable line a person sees for a rejected order."""
    return REJECTION_TEXT.format(record_id, owner, run_id, power)


def failed_batch_alert(
    run_id: str,
    batch: str,
    reason: str,
    released: int,
    left_pending: int = 0,
    still_claimed: int = 0,
) -> dict[str, Any]:
    """The alert for orders a batch could not finish: those it claimed and released, those it
    claimed but could not release (claimed until the lease ends), and those it never claimed for
    lack of time; the state machine sends the same shape (filled with States.Format,
    CRASHED_BATCH_TEXT) when Lambda B fails as a whole."""
    if still_claimed:
        text = FAILED_BATCH_STILL_CLAIMED_TEXT.format(
            run_id, batch, reason, released, left_pending, still_claimed
        )
    else:
        text = FAILED_BATCH_TEXT.format(run_id, batch, reason, released, left_pending)
    alert: dict[str, Any] = {
        "text": text,
        "status": "batch_failed",
        "run": run_id,
        "batch": batch,
        "reason": reason,
        "orders_to_retry": released + left_pending + still_claimed,
        "orders_released": released,
        "orders_left_pending": left_pending,
    }
    if still_claimed:
        alert["orders_still_claimed"] = still_claimed
    return alert


def line_identity(line: Mapping[str, Any]) -> tuple[str, str, str]:
    """What names an order's line: its owner, record_id and version (the content it was for)."""
    return str(line["owner"]), str(line["record_id"]), str(line["version"])


def parse_line(text: str) -> dict[str, Any]:
    """A stored line read back, numbers as exact Decimal (integers as int)."""
    document: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return document


def rejection_alert(item: Mapping[str, Any], run_id: str, power: int | float) -> dict[str, Any]:
    """The Slack-style alert published for a rejected order (its claimed table item): a `text`
    line plus its fields, the owner among them."""
    record_id, owner = item["record_id"], item["owner"]
    return {
        "text": rejection_text(record_id, owner, run_id, power),
        "record_id": record_id,
        "owner": owner,
        "status": Status.REJECTED.value,
        "run": run_id,
        "power": power,
    }
