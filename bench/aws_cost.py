"""Dollars per million orders from the requests a local pipeline run made, at list prices.

Prices are the AWS us-east-1 list prices, written below. Two designs are priced from the counts of
the same run (its orders, accepted and rejected):

- ours, from what the run did:
  - Lambda: one request per invocation, and GB-s from each invocation's duration as measured in
    process (`observed_system.InvocationClock`) at its function's configured memory, on arm64.
    Locally every AWS request a handler makes goes to the embedded moto endpoint and takes about
    1-4 ms, the order of DynamoDB's and S3's latency in a region, so the local durations are a
    fair stand-in for Lambda's billed durations.
  - Step Functions Standard transitions: the parent execution's states entered (from its
    history), plus the child executions' transitions, which moto does not expose: modelled as 2
    per child (its ProcessBatch task state, and one for the Map iteration, conservatively); the
    children are counted as Lambda B's invocations.
  - DynamoDB write units: each UpdateItem, PutItem and DeleteItem request, and each item of a
    BatchWriteItem (items are well under 1 KB), plus the `pending-results` index writes, which
    no request shows: when the index is keyed on `result_status`, recording a result changes the
    item's index hash key, which DynamoDB bills as a delete and a put in the index (2 write units
    per order recorded); when it is a sparse index keyed on an attribute the recording removes
    (`pending_shard`), the item only leaves the index (1 write unit). Claiming an order changes
    no index key nor projected attribute, so it costs no index write. Read units: at least 1 per
    Query (or other read) request.
  - S3: PutObject (the run's batches object and one JSON Lines object per batch) and the other
    PUT-class requests; GetObject as GET-class. The Distributed Map's ItemReader reads the
    batches object with a GetObject that moto's interpreter sends to the endpoint, so it is
    counted like any other request; if a run shows none, one GET per run is added.
  - SNS: each Publish and PublishBatch request is billed per 64 KiB of payload (`Call.chunks`,
    from the request's body size); an alert is about 250 B, so a PublishBatch of up to 10 is 1.
  SQS requests are the local notification tap reading the alert topic, not part of the design.
- seed-style, what the seed's design does for the same orders: the same parent states, plus an
  inline Map with one Task per order (1 transition per order) and an SNS Task per rejected order
  (1 more per rejected); Lambda A's invocations as measured, plus one Lambda B request per order
  at Lambda B's memory for SEED_DURATION_MS (the previous cost model's assumption); one S3 PUT
  per accepted order; one SNS Publish per rejected order; no DynamoDB.

Both bills price a run, not the POST that stored its orders. Since issue 17 an order also costs
one more write unit when it is stored, its entry in the owner-orders index; `IngestWrites`
(from bench/ingest_writes.py, a 1,000-order POST measured in the same `make bench`) brings in
what ours spends at ingest beyond the write path before it, and that is added to ours' bill. What
both spend at ingest (the item and its pending-results entry; the seed's post_lambda, one item in
no index) stays out of both totals, as before, and is shown in a row of its own.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bench.aws_requests import Call, not_observer, tally
from bench.observed_system import PROCESS_HANDLER, RESULTS_HANDLER, Invoked, Run
from bench.report import Row, ratio

MILLION = 1_000_000
SEED_DURATION_MS = 60
SEED_INGEST_WRITE_UNITS = 1.0  # the seed's post_lambda: one item an order, in no index
# Ours at most this fraction of the seed-style bill (issue 17; 0.05x before it, goal 0.10x).
COST_GOAL = 0.07
STATUS_INDEX_KEY = "result_status"  # an index keyed on it is rewritten (delete + put)
CHILD_TRANSITIONS = 2  # per child execution: ProcessBatch, plus one for the Map iteration

LAMBDA_PER_REQUEST = 0.20 / MILLION
LAMBDA_PER_GB_SECOND_ARM64 = 0.0000133334
DYNAMODB_PER_WRITE_UNIT = 0.625 / MILLION
DYNAMODB_PER_READ_UNIT = 0.125 / MILLION
SFN_STANDARD_PER_TRANSITION = 0.025 / 1_000
SNS_PER_PUBLISH = 0.50 / MILLION
S3_PER_PUT = 0.005 / 1_000
S3_PER_GET = 0.0004 / 1_000

DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
DYNAMODB_READS = {"GetItem", "Query", "Scan", "BatchGetItem"}
S3_PUT_CLASS = {"PutObject", "PostObject", "ListObjects", "PutBucket"}
S3_GET_CLASS = {"GetObject", "HeadObject"}
SNS_PUBLISHES = {"Publish", "PublishBatch"}

TRANSITIONS = "Step Functions Standard transitions"
LAMBDA_REQUESTS = "Lambda requests"
LAMBDA_GB_SECONDS = "Lambda GB-s (arm64)"
SNS_REQUESTS = "SNS billed publish requests (64 KiB each)"
S3_PUTS = "S3 PUT-class requests"
S3_GETS = "S3 GET-class requests"
TABLE_WRITES = "DynamoDB write units (table)"
INDEX_WRITES = "DynamoDB write units (pending-results index, {} per recorded order)"
READS = "DynamoDB read units (>= 1 a request)"
INGEST_WRITES = "DynamoDB write units at ingest: {} (added by issue 17)"


@dataclass(frozen=True)
class Usage:
    """What one pipeline run used, and how many orders it recorded a result for."""

    orders: int
    accepted: int
    rejected: int
    parent_transitions: int  # the parent execution's states entered
    calls: Counter[Call]
    invocations: Sequence[Invoked]
    process_memory_mb: int  # Lambda B's configured memory
    pending_index_key: str  # the pending-results index's hash key

    @property
    def index_writes_per_record(self) -> int:
        return 2 if self.pending_index_key == STATUS_INDEX_KEY else 1

    def requests(self, service: str, operations: set[str] | None = None) -> int:
        """Requests (BatchWriteItem: items written) to `service`, other than the observer's."""
        return sum(
            times * (call.items if call.operation == "BatchWriteItem" else 1)
            for call, times in self.calls.items()
            if not_observer(call)
            and call.service == service
            and (operations is None or call.operation in operations)
        )

    def sns_billed_requests(self) -> int:
        return sum(
            times * call.chunks
            for call, times in self.calls.items()
            if not_observer(call) and call.service == "sns" and call.operation in SNS_PUBLISHES
        )

    @property
    def children(self) -> int:
        """Child executions: one per Lambda B invocation."""
        return sum(1 for invoked in self.invocations if invoked.handler == PROCESS_HANDLER)

    @property
    def child_transitions(self) -> int:
        return CHILD_TRANSITIONS * self.children

    def gb_seconds(self, handler: str | None = None) -> float:
        """GB-s of the measured invocations (of `handler` only, if given)."""
        return sum(
            invoked.memory_mb / 1024 * invoked.milliseconds / 1000
            for invoked in self.invocations
            if handler is None or invoked.handler == handler
        )

    def invokes(self, handler: str) -> int:
        return sum(1 for invoked in self.invocations if invoked.handler == handler)

    def mean_ms(self, handler: str) -> float:
        durations = [i.milliseconds for i in self.invocations if i.handler == handler]
        return sum(durations) / len(durations) if durations else 0.0


@dataclass(frozen=True)
class LineItem:
    item: str
    per_order: float  # billable units per order
    dollars_per_million: float


def ours(usage: Usage) -> list[LineItem]:
    """Our design's bill, per million orders, from the run's counts (see the module docstring)."""
    per_record = usage.index_writes_per_record
    index_writes = per_record * (usage.accepted + usage.rejected)
    index_item = INDEX_WRITES.format(
        f"keyed on {usage.pending_index_key}: "
        + ("delete+put" if per_record == 2 else "sparse, 1 delete")
    )
    gets = usage.requests("s3", S3_GET_CLASS) or 1  # the ItemReader's read, if not seen
    return [
        _item(
            usage,
            TRANSITIONS,
            usage.parent_transitions + usage.child_transitions,
            SFN_STANDARD_PER_TRANSITION,
        ),
        _item(usage, LAMBDA_REQUESTS, usage.requests("lambda", {"Invoke"}), LAMBDA_PER_REQUEST),
        _item(usage, LAMBDA_GB_SECONDS, usage.gb_seconds(), LAMBDA_PER_GB_SECOND_ARM64),
        _item(usage, SNS_REQUESTS, usage.sns_billed_requests(), SNS_PER_PUBLISH),
        _item(usage, S3_PUTS, usage.requests("s3", S3_PUT_CLASS), S3_PER_PUT),
        _item(usage, S3_GETS, gets, S3_PER_GET),
        _item(
            usage,
            TABLE_WRITES,
            usage.requests("dynamodb", DYNAMODB_WRITES),
            DYNAMODB_PER_WRITE_UNIT,
        ),
        _item(usage, index_item, index_writes, DYNAMODB_PER_WRITE_UNIT),
        _item(usage, READS, usage.requests("dynamodb", DYNAMODB_READS), DYNAMODB_PER_READ_UNIT),
    ]


@dataclass(frozen=True)
class IngestWrites:
    """Write units per order when POST /orders stores it: `added`, what ours spends beyond the
    write path before issue 17, by where (an index's name): in ours' bill; `shared`, what both
    spend (the item and its pending-results entry): in neither bill."""

    added: dict[str, float]
    shared: float


def ingest_lines(ingest: IngestWrites) -> list[LineItem]:
    """The write units ours adds at ingest, as lines of ours' bill."""
    return [
        LineItem(INGEST_WRITES.format(where), units, units * MILLION * DYNAMODB_PER_WRITE_UNIT)
        for where, units in sorted(ingest.added.items())
    ]


def seed_style(usage: Usage) -> list[LineItem]:
    """The seed-style bill for the same orders (see the module docstring)."""
    seed_process_gb_seconds = (
        usage.orders * usage.process_memory_mb / 1024 * SEED_DURATION_MS / 1000
    )
    return [
        _item(
            usage,
            TRANSITIONS,
            usage.parent_transitions + usage.orders + usage.rejected,
            SFN_STANDARD_PER_TRANSITION,
        ),
        _item(
            usage,
            LAMBDA_REQUESTS,
            usage.invokes(RESULTS_HANDLER) + usage.orders,
            LAMBDA_PER_REQUEST,
        ),
        _item(
            usage,
            LAMBDA_GB_SECONDS,
            usage.gb_seconds(RESULTS_HANDLER) + seed_process_gb_seconds,
            LAMBDA_PER_GB_SECOND_ARM64,
        ),
        _item(usage, SNS_REQUESTS, usage.rejected, SNS_PER_PUBLISH),
        _item(usage, S3_PUTS, usage.accepted, S3_PER_PUT),
    ]


def _item(usage: Usage, name: str, count: float, price: float) -> LineItem:
    per_order = count / max(1, usage.orders)
    return LineItem(name, per_order, per_order * MILLION * price)


def total(items: list[LineItem]) -> float:
    return sum(line.dollars_per_million for line in items)


def function_name(target: str) -> str:
    """The function name from an Invoke target, which is a name or a function ARN."""
    return target.rsplit(":function:", 1)[-1].split(":")[0]


def unpriced(usage: Usage) -> Counter[tuple[str, str]]:
    """Requests the run made that neither bill prices (shown so nothing is silently dropped)."""
    priced = {
        "dynamodb": DYNAMODB_WRITES | DYNAMODB_READS,
        "s3": S3_PUT_CLASS | S3_GET_CLASS,
        "lambda": {"Invoke"},
        "sns": SNS_PUBLISHES,
        "sqs": None,  # the local notification tap
    }
    left: Counter[tuple[str, str]] = Counter()
    for call, times in usage.calls.items():
        if call.service in priced and priced[call.service] is None:
            continue
        if not_observer(call) and call.operation not in (priced.get(call.service) or set()):
            left[(call.service, call.operation)] += times
    return left


HANDLER_REQUEST_SERVICES = {"dynamodb", "s3", "sns"}


def tally_seconds(seconds: dict[Call, float]) -> dict[tuple[str, str], float]:
    """Endpoint seconds by (service, operation), the observer's requests left out."""
    summed: dict[tuple[str, str], float] = defaultdict(float)
    for call, spent in seconds.items():
        if not_observer(call):
            summed[(call.service, call.operation)] += spent
    return summed


def rows(
    run: Run,
    memory_mb: dict[str, int],
    handlers: dict[str, str],
    pending_index_key: str,
    ingest: IngestWrites | None = None,
) -> list[Row]:
    """Requests per order by service, and both designs' bills, from one orders-mode run
    (`memory_mb` and `handlers` by function name; `pending_index_key`: the hash key of the
    table's pending-results index; `ingest`: the write units of storing an order)."""
    process_function = next(
        name for name, handler in handlers.items() if handler == PROCESS_HANDLER
    )
    usage = Usage(
        orders=run.processed,
        accepted=int(run.summary["accepted"]),
        rejected=int(run.summary["rejected"]),
        parent_transitions=run.transitions,
        calls=run.calls,
        invocations=run.invocations,
        process_memory_mb=memory_mb[process_function],
        pending_index_key=pending_index_key,
    )
    where = f"run of {run.processed:,}"
    orders = max(1, usage.orders)
    table: list[Row] = []
    served = tally_seconds(run.served_seconds)
    for (service, operation), count in sorted(tally(run.calls, not_observer).items()):
        if service == "sqs":
            note = ", local alert tap, not in AWS"
        elif service in HANDLER_REQUEST_SERVICES:
            note = f", {served[(service, operation)] / count * 1000:.1f} ms each at the endpoint"
        else:
            note = ""
        table.append(
            Row(
                "AWS per order",
                f"{service} {operation} ({where}{note})",
                f"{count / orders:.4f}",
            )
        )
    invokes = Counter(
        function_name(call.target)
        for call, times in run.calls.items()
        if call.operation == "Invoke"
        for _ in range(times)
    )
    for function, count in sorted(invokes.items()):
        handler = handlers.get(function, function)
        memory = memory_mb.get(function, 0)
        table.append(
            Row(
                "AWS per order",
                f"  of which {handler} ({memory} MB, {usage.mean_ms(handler):.0f} ms "
                f"an invoke, measured)",
                f"{count / orders:.4f}",
            )
        )
    handler_ms = sum(invoked.milliseconds for invoked in run.invocations)
    request_ms = 1000 * sum(
        seconds for (service, _), seconds in served.items() if service in HANDLER_REQUEST_SERVICES
    )
    table.append(
        Row(
            "AWS per order",
            "  Lambda duration, all invocations (measured), of which the local endpoint "
            "serving their DynamoDB, S3 and SNS requests",
            f"{handler_ms / orders:.1f} ms/order",
            f"{request_ms / orders:.1f} ms/order at the endpoint",
            ratio(request_ms, handler_ms),
        )
    )
    table.append(
        Row(
            "AWS per order",
            f"Step Functions transitions: parent's states entered ({run.transitions}) + "
            f"{CHILD_TRANSITIONS} per child execution ({usage.children}, modelled: moto "
            f"does not expose child histories) ({where})",
            f"{(run.transitions + usage.child_transitions) / orders:.4f}",
        )
    )
    ours_lines, seed_lines = ours(usage), seed_style(usage)
    if ingest is not None:
        ours_lines += ingest_lines(ingest)
    seed_by_item = {line.item: line for line in seed_lines}
    ours_by_item = {line.item: line for line in ours_lines}
    items = [line.item for line in ours_lines] + [
        s.item for s in seed_lines if s.item not in ours_by_item
    ]
    for item in items:
        ours_line, seed_line = ours_by_item.get(item), seed_by_item.get(item)
        table.append(
            Row(
                "cost per M orders",
                item,
                f"${ours_line.dollars_per_million:.2f} ({ours_line.per_order:.4f}/order)"
                if ours_line
                else "-",
                f"${seed_line.dollars_per_million:.2f} ({seed_line.per_order:.4f}/order, "
                "seed-style)"
                if seed_line
                else "- (seed-style)",
                ratio(ours_line.dollars_per_million, seed_line.dollars_per_million)
                if ours_line and seed_line
                else "",
            )
        )
    ours_total, seed_total = total(ours_lines), total(seed_lines)
    goal_met = ours_total <= COST_GOAL * seed_total
    table.append(
        Row(
            "cost per M orders",
            f"total (us-east-1 list prices; from the {where}"
            + (", and the ingest's added write units" if ingest else "")
            + ")",
            f"${ours_total:.2f}",
            f"${seed_total:.2f} (seed-style)",
            ratio(ours_total, seed_total),
            f"<= {COST_GOAL:.2f}x: {'met' if goal_met else 'NOT met'}",
        )
    )
    if ingest is not None:
        unit = MILLION * DYNAMODB_PER_WRITE_UNIT
        ours_life = ours_total + ingest.shared * unit
        seed_life = seed_total + SEED_INGEST_WRITE_UNITS * unit
        table.append(
            Row(
                "cost per M orders",
                f"  with the writes storing an order, in neither total above (ours "
                f"{ingest.shared:.2f} write units an order: the item and its pending-results "
                f"entry; the seed's post_lambda {SEED_INGEST_WRITE_UNITS:.2f}: an item in no "
                "index)",
                f"${ours_life:.2f}",
                f"${seed_life:.2f} (seed-style)",
                ratio(ours_life, seed_life),
                "reported",
            )
        )
    left = unpriced(usage)
    if left:
        listed = ", ".join(f"{s} {o} {n}" for (s, o), n in sorted(left.items()))
        table.append(Row("cost per M orders", f"not priced: {listed}", "", "", "", ""))
    return table
