"""An order's history: which changes of the orders table matter, and the line each one becomes.

No AWS here: the adapter (entrix.aws.order_stream) turns a DynamoDB stream record into a
`Change` (images with exact Decimal numbers), the archiver (entrix.handlers.archive) writes a
batch's lines as one JSON Lines object under `history/`.

A line is written for an order received or amended (a new `version`: every client field as
received, owner, version, received_at, expires_at), a result recorded (status, power, run,
result_at), a cancel, and a removal: `expired` when DynamoDB's TTL deleted it, `removed` for any
other delete. A run's claim on an order and its release change neither the version nor the
status: they are not history and give no line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from entrix.orders import lifecycle
from entrix.orders.order_schema import FIELDS

HISTORY_PREFIX = "history/"

INSERT = "INSERT"
MODIFY = "MODIFY"
REMOVE = "REMOVE"

RECEIVED = "received"
AMENDED = "amended"
RESULT = "result"
CANCELLED = "cancelled"
EXPIRED = "expired"
REMOVED = "removed"

_ORDER_FIELDS = ("owner", "version", "received_at", "expires_at")
_RESULT_STATUSES = (lifecycle.ACCEPTED, lifecycle.REJECTED)


@dataclass(frozen=True)
class Change:
    """One change of one item: its images (None where the change has none), when DynamoDB
    recorded it (epoch seconds), its place in the stream, and whether TTL made it."""

    event_name: str
    sequence_number: str
    created_at: float
    new: Mapping[str, Any] | None
    old: Mapping[str, Any] | None
    by_ttl: bool = False


def line(change: Change) -> dict[str, Any] | None:
    """The history line of `change`, or None when it is not history (a claim or a release)."""
    new, old = change.new or {}, change.old or {}
    if change.event_name == REMOVE:
        event = EXPIRED if change.by_ttl else REMOVED
        return _line(change, event, old, "version", "expires_at", result_status="result_status")
    if change.event_name not in (INSERT, MODIFY):
        raise ValueError(f"unknown stream event {change.event_name!r}")
    if new.get("version") != old.get("version"):
        gone = not old or lifecycle.expired(old, change.created_at)
        return _line(change, RECEIVED if gone else AMENDED, new, *FIELDS, *_ORDER_FIELDS)
    status = new.get("result_status")
    if status == old.get("result_status"):
        return None
    if status in _RESULT_STATUSES:
        return _line(
            change,
            RESULT,
            new,
            "version",
            "power",
            "result_at",
            status="result_status",
            run="result_run_id",
        )
    if status == lifecycle.CANCELLED:
        return _line(change, CANCELLED, new, "version", "cancelled_at")
    return None


def _line(
    change: Change, event: str, image: Mapping[str, Any], *names: str, **renamed: str
) -> dict[str, Any]:
    """`event` with the order's key, `names` and `renamed` (line name: item name) from `image`,
    those it holds, and the change's time and place in the stream (readers dedupe on
    order_key and sequence_number: a batch split on error is written again in halves)."""
    fields = {name: image[name] for name in names if name in image}
    fields |= {alias: image[name] for alias, name in renamed.items() if name in image}
    return {
        "event": event,
        "order_key": image.get("order_key"),
        "owner": image.get("owner"),
        "record_id": image.get("record_id"),
        **fields,
        "changed_at": _iso(change.created_at),
        "sequence_number": change.sequence_number,
    }


def lines(changes: Sequence[Change]) -> list[dict[str, Any]]:
    """The history lines of a batch of changes, in stream order."""
    return [entry for change in changes if (entry := line(change)) is not None]


def batch_key(changes: Sequence[Change]) -> str:
    """`history/date=YYYY-MM-DD/<first>-<last>.jsonl`: the batch's first and last sequence
    numbers and the date of its first change, so a retried batch overwrites its object."""
    first, last = changes[0], changes[-1]
    date = datetime.fromtimestamp(first.created_at, UTC).strftime("%Y-%m-%d")
    return f"{HISTORY_PREFIX}date={date}/{first.sequence_number}-{last.sequence_number}.jsonl"


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
