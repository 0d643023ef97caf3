"""A 1,000-order POST's writes: ours (one conditional PutItem per order, in parallel:
`entrix.aws.orders_table.OrdersTable.put_orders`, what POST /orders runs) against the write path
before it (25 orders a BatchWriteItem, unconditional: `bench/baselines/batch_write.py`), in the
same run, against `entrix local` started in its own process (the writers' threads and the
endpoint do not share an interpreter).

- Requests: every HTTP request each client sends to DynamoDB, retries included (botocore's
  `before-send` event), by operation.
- Write units, as DynamoDB bills them on demand: for each item put, the larger of its old and new
  size in 1 KB units (a put refused by its condition costs the same and writes no index); and for
  each global secondary index (all project keys only), 1 unit to add an entry, 1 to remove one
  and 2 to move one (a key changed). Which index entries a put adds, removes or moves follows
  from the items and each design's index keys: ours from the template, the baseline's from its
  module. The items are written, so the requests and the outcomes are measured, the units
  computed from them.
- Local p50: `repeats` writes of a fresh 1,000 orders by each path, alternating, timed by the
  writer; and POST /orders of 1,000 orders through the local API (gateway, authorizer and ingest
  handler included). Locally every request goes to moto on this machine's cores, so the times are
  not DynamoDB's; the ratio says how the two paths compare here.
- Then the same 1,000 orders sent again, identical, by each path: ours finds them unchanged (its
  conditions fail, nothing is written), the baseline overwrites them (a new `received_at`, so the
  pending-results entry moves).
"""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench import aws_cost
from bench.api_latency import ApiClient
from bench.baselines import batch_write
from bench.report import Row, ratio
from entrix.aws.orders_table import PARALLEL_PUTS, OrdersTable
from entrix.local.harness import in_subprocess
from entrix.orders import lifecycle
from entrix.orders.limits import TTL_SECONDS
from entrix.timestamps import iso_milliseconds

ORDERS = 1_000
REPEATS = 5
OWNER = "bench-ingest"
KILOBYTE = 1024
# The same for both writers: no read gives up locally (moto on a busy machine), two attempts.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 2},
    read_timeout=60,
    max_pool_connections=PARALLEL_PUTS,
)
# An index: (name, hash key, range key or None); every index projects keys only.
Index = tuple[str, str, str | None]


def attribute_size(name: str, value: Any) -> int:
    """Bytes of one attribute as DynamoDB sizes it: its name, and a string's UTF-8 bytes or a
    number's 1 byte per two significant digits plus 1."""
    if isinstance(value, str):
        return len(name.encode()) + len(value.encode())
    digits = str(Decimal(value).normalize()).lstrip("-").replace(".", "").lstrip("0")
    return len(name.encode()) + math.ceil(max(1, len(digits)) / 2) + 1


def item_size(item: Mapping[str, Any]) -> int:
    return sum(attribute_size(name, value) for name, value in item.items())


def _index_keys(item: Mapping[str, Any] | None, index: Index) -> tuple[Any, ...] | None:
    """The item's entry in the index (its key values), or None when it is not in it."""
    if item is None:
        return None
    _, hash_key, range_key = index
    keys = (hash_key,) if range_key is None else (hash_key, range_key)
    if any(key not in item for key in keys):
        return None
    return tuple(item[key] for key in keys)


@dataclass
class WriteUnits:
    """Write units by where they go: `table`, or an index's name."""

    units: Counter[str] = field(default_factory=Counter)

    def put(
        self,
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any],
        indexes: Sequence[Index],
        written: bool = True,
    ) -> None:
        """A put of `new` over `old` (None: no item), or refused by its condition."""
        size = max(item_size(new), item_size(old) if old else 0)
        self.units["table"] += max(1, math.ceil(size / KILOBYTE))
        if not written:
            return
        for index in indexes:
            before, after = _index_keys(old, index), _index_keys(new, index)
            if before != after:
                self.units[index[0]] += (before is not None) + (after is not None)

    @property
    def total(self) -> int:
        return sum(self.units.values())

    def per_order(self, orders: int) -> dict[str, float]:
        return {where: units / orders for where, units in self.units.items()}


class RequestCount:
    """HTTP requests a client sends, by operation (retries included)."""

    def __init__(self, client: Any) -> None:
        self._lock = threading.Lock()
        self.sent: Counter[str] = Counter()
        client.meta.events.register("before-send.dynamodb", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.sent[event_name.rsplit(".", 1)[-1]] += 1

    def window(self) -> _Window:
        return _Window(self)


class _Window:
    def __init__(self, count: RequestCount) -> None:
        self._count = count
        self._start = Counter(count.sent)

    def sent(self) -> Counter[str]:
        return self._count.sent - self._start


@dataclass(frozen=True)
class Write:
    """One write of a set of orders by one path: the items, the requests sent, the write units,
    what came of each order, and how long it took."""

    items: list[dict[str, Any]]
    requests: Counter[str]
    units: WriteUnits
    outcomes: Counter[str]
    seconds: float


@dataclass(frozen=True)
class PathFigures:
    """One path's first write of new orders, the same orders sent again, and the times of every
    write of new orders."""

    first: Write
    resend: Write
    seconds: list[float]


@dataclass(frozen=True)
class IngestFigures:
    orders: int
    ours: PathFigures
    baseline: PathFigures
    post_seconds: list[float]

    def added_write_units(self) -> dict[str, float]:
        """Write units per new order that ours spends and the baseline does not, by where."""
        ours = self.ours.first.units.per_order(self.orders)
        before = self.baseline.first.units.per_order(self.orders)
        return {
            where: units - before.get(where, 0.0)
            for where, units in ours.items()
            if units > before.get(where, 0.0)
        }

    def cost_inputs(self) -> aws_cost.IngestWrites:
        """For the bill: what ours adds per new order, and what both spend."""
        ours = self.ours.first.units.per_order(self.orders)
        before = self.baseline.first.units.per_order(self.orders)
        shared = sum(min(units, before.get(where, 0.0)) for where, units in ours.items())
        return aws_cost.IngestWrites(self.added_write_units(), shared)


def orders(prefix: str, count: int) -> list[dict[str, Any]]:
    """`count` valid orders, as the validator hands them over (numbers as Decimal)."""
    return [
        {
            "record_id": f"{prefix}-{number:04d}",
            "parameter_1": "buy" if number % 2 else "sell",
            "parameter_2": Decimal(number) / 4 + Decimal("10.25"),
        }
        for number in range(count)
    ]


def our_items(sent: Sequence[Mapping[str, Any]], received: float) -> list[dict[str, Any]]:
    """The items POST /orders makes of a request's orders (entrix.handlers.ingest)."""
    received_at = iso_milliseconds(received)
    nonce = lifecycle.request_nonce()
    return [
        lifecycle.stored_item(
            order,
            OWNER,
            received_at,
            int(received) + TTL_SECONDS,
            lifecycle.version(received_at, nonce, position),
        )
        for position, order in enumerate(sent)
    ]


def baseline_items(sent: Sequence[Mapping[str, Any]], received: float) -> list[dict[str, Any]]:
    received_at = iso_milliseconds(received)
    return [
        batch_write.stored_item(
            order,
            lifecycle.order_key(OWNER, order["record_id"]),
            received_at,
            int(received) + TTL_SECONDS,
        )
        for order in sent
    ]


def template_indexes(template_path: Path) -> tuple[Index, ...]:
    """The orders table's global secondary indexes in the synthesized template."""
    resources = json.loads(template_path.read_text(encoding="utf-8"))["Resources"]
    # The orders table: the client usage table has no index.
    (table,) = [
        r
        for r in resources.values()
        if r.get("Type") == "AWS::DynamoDB::Table" and "GlobalSecondaryIndexes" in r["Properties"]
    ]
    found = []
    for index in table["Properties"].get("GlobalSecondaryIndexes", []):
        if index["Projection"]["ProjectionType"] != "KEYS_ONLY":
            raise ValueError(f"{index['IndexName']} projects more than keys: not counted here")
        keys = {key["KeyType"]: key["AttributeName"] for key in index["KeySchema"]}
        found.append((index["IndexName"], keys["HASH"], keys.get("RANGE")))
    return tuple(found)


OURS, BASELINE = "ours", "baseline"


class _Writers:
    """Both write paths against one endpoint, each with its own counted client."""

    def __init__(self, endpoint: str, indexes: tuple[Index, ...]) -> None:
        self.indexes = indexes
        clients = {OURS: _client(endpoint), BASELINE: _client(endpoint)}
        (self.table_name,) = [
            name for name in clients[OURS].list_tables()["TableNames"] if "Orders" in name
        ]
        self.counts = {side: RequestCount(client) for side, client in clients.items()}
        self.table = OrdersTable(clients[OURS], self.table_name)
        self.baseline_client = clients[BASELINE]

    def write(
        self, side: str, sent: list[dict[str, Any]], old: Mapping[str, Mapping[str, Any]]
    ) -> Write:
        """`sent` as one request, by `side`'s path; `old`: the items stored under their keys."""
        window = self.counts[side].window()
        units = WriteUnits()
        if side == OURS:
            items = our_items(sent, time.time())
            started = time.perf_counter()
            puts = self.table.put_orders(items, time.time())
            seconds = time.perf_counter() - started
            outcomes = Counter(put.outcome for put in puts)
            for item, put in zip(items, puts, strict=True):
                written = put.outcome in ("created", "amended")
                units.put(old.get(item["order_key"]), item, self.indexes, written)
        else:
            items = baseline_items(sent, time.time())
            started = time.perf_counter()
            left = batch_write.put_items(self.baseline_client, self.table_name, items)
            seconds = time.perf_counter() - started
            outcomes = Counter({"written": len(items) - left, "not_stored": left})
            for item in items:
                units.put(old.get(item["order_key"]), item, batch_write.INDEXES)
        if outcomes["not_stored"]:
            raise RuntimeError(f"{side}: {outcomes['not_stored']} orders not stored")
        return Write(items, window.sent(), units, +outcomes, seconds)


def _client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=CLIENT_CONFIG,
    )


def measure(
    template_path: Path, orders_per_post: int = ORDERS, repeats: int = REPEATS
) -> IngestFigures:
    """Both paths' requests, write units and times for `orders_per_post` new orders (`repeats`
    writes each, alternating, the first one counted), then for the first orders sent again;
    then POST /orders p50."""
    indexes = template_indexes(template_path)
    with in_subprocess(schedule_seconds=86_400) as system:
        writers = _Writers(system.aws_endpoint, indexes)
        writes: dict[str, list[tuple[list[dict[str, Any]], Write]]] = {OURS: [], BASELINE: []}
        for repeat in range(repeats):
            for side in (OURS, BASELINE) if repeat % 2 == 0 else (BASELINE, OURS):
                sent = orders(f"{side}-{repeat}-{uuid.uuid4().hex[:6]}", orders_per_post)
                writes[side].append((sent, writers.write(side, sent, {})))
        figures = {}
        for side, done in writes.items():
            sent, first = done[0]
            resend = writers.write(side, sent, _by_key(first.items))
            figures[side] = PathFigures(first, resend, [write.seconds for _, write in done])
        if figures[OURS].resend.outcomes != Counter({"unchanged": orders_per_post}):
            raise RuntimeError(f"an identical resend changed orders: {figures[OURS].resend}")
        post_seconds = _posts(system, orders_per_post, repeats)
    return IngestFigures(orders_per_post, figures[OURS], figures[BASELINE], post_seconds)


def _by_key(items: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(item["order_key"]): item for item in items}


def _posts(system: Any, orders_per_post: int, repeats: int) -> list[float]:
    """`repeats` POST /orders of fresh orders through the local API, each answered 201."""
    api = ApiClient(system.api_url, system.token())
    seconds = []
    for repeat in range(repeats):
        body = [
            {**order, "parameter_2": float(order["parameter_2"])}
            for order in orders(f"post-{repeat}-{uuid.uuid4().hex[:6]}", orders_per_post)
        ]
        started = time.perf_counter()
        status = api.post_orders(body)
        seconds.append(time.perf_counter() - started)
        if status != 201:
            raise RuntimeError(f"POST /orders of {orders_per_post} orders answered {status}")
    return seconds


def _requests(sent: Counter[str]) -> str:
    return ", ".join(f"{count:,} {operation}" for operation, count in sorted(sent.items()))


def _units(units: WriteUnits) -> str:
    parts = ", ".join(f"{where} {count:,}" for where, count in sorted(units.units.items()))
    return f"{units.total:,} ({parts})"


def _outcomes(outcomes: Counter[str]) -> str:
    return ", ".join(f"{count:,} {name}" for name, count in sorted(outcomes.items()))


def rows(figures: IngestFigures) -> list[Row]:
    """Requests, write units and p50s of a POST of `figures.orders` orders."""
    n = f"{figures.orders:,}"
    baseline = "BatchWriteItem 25 a request (before issue 17)"
    ours_requests = sum(figures.ours.first.requests.values())
    baseline_requests = sum(figures.baseline.first.requests.values())
    added = figures.added_write_units()
    extra = sum(added.values())
    resent = (
        f"ours {_outcomes(figures.ours.resend.outcomes)}, "
        f"baseline {_outcomes(figures.baseline.resend.outcomes)}"
    )
    table = [
        Row(
            "ingest",
            f"DynamoDB requests for a {n}-order POST (a conditional PutItem an order, in parallel)",
            _requests(figures.ours.first.requests),
            f"{_requests(figures.baseline.first.requests)} ({baseline})",
            ratio(ours_requests, baseline_requests),
            "reported: a condition needs a request of its own",
        ),
        Row(
            "ingest",
            f"DynamoDB write units for {n} new orders (table and index entries)",
            _units(figures.ours.first.units),
            _units(figures.baseline.first.units),
            ratio(figures.ours.first.units.total, figures.baseline.first.units.total),
            f"<= +1 an order: {'met' if extra <= 1 else 'NOT met'} (+{extra:.2f}: "
            + ", ".join(sorted(added))
            + ")",
        ),
        Row(
            "ingest",
            f"DynamoDB write units for the same {n} orders sent again, identical ({resent})",
            _units(figures.ours.resend.units),
            _units(figures.baseline.resend.units),
            ratio(figures.ours.resend.units.total, figures.baseline.resend.units.total),
            "reported",
        ),
    ]
    ours_p50 = statistics.median(figures.ours.seconds) * 1000
    baseline_p50 = statistics.median(figures.baseline.seconds) * 1000
    table.append(
        Row(
            "ingest",
            f"writing {n} new orders, local p50 of {len(figures.ours.seconds)} each, alternating",
            f"{ours_p50:,.0f} ms",
            f"{baseline_p50:,.0f} ms ({baseline})",
            ratio(ours_p50, baseline_p50),
            "reported",
        )
    )
    post_p50 = statistics.median(figures.post_seconds) * 1000
    table.append(
        Row(
            "ingest",
            f"POST /orders of {n} orders through the local API (201), p50 of "
            f"{len(figures.post_seconds)}",
            f"{post_p50:,.0f} ms",
            "",
            "",
            "reported",
        )
    )
    return table
