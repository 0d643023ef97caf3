"""The results pipeline at scale: run time by orders pending, and cost per order.

Measured on `entrix local` in this process, counted and timed (`bench.observed_system`). Orders
are ingested through the local API, then one pipeline run per repeat of each size is started and
timed from `StartExecution` to its end, as `entrix pipeline run` would; a last run in Lambda A's
random mode checks that every made-up order is stored or alerted once.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import aws_cost
from bench.observed_system import (
    RESULTS_HANDLER,
    BenchSystem,
    Run,
    bench_system,
    random_mode_template,
    unique_prefix,
)
from bench.report import Row, ratio
from entrix import settings

# Orders pending for a run -> runs of that size, interleaved; the median is reported. Per order,
# runs are compared with the run of BASE_SIZE. (A POST's writes are bench/ingest_writes.py's.)
REPEATS = {1_000: 3, 10_000: 1, 100: 5, 10: 5}
BASE_SIZE = 100
RANDOM_ORDERS = 10_000


@dataclass(frozen=True)
class EndToEnd:
    """A run in Lambda A's random mode, and what it left behind."""

    run: Run
    expected: int  # RANDOM_ORDER_COUNT
    result_objects: int  # JSON Lines objects under results/.../run=<execution>/
    result_lines: int  # lines in them
    rejection_objects: int  # JSON Lines objects under rejections/.../run=<execution>/
    rejection_lines: int  # lines in them
    notifications: int  # messages the notification tap delivered to people (the digest)
    sns_messages: int  # messages in the run's SNS Publish and PublishBatch requests


@dataclass(frozen=True)
class ScaleFigures:
    runs: dict[int, list[Run]]  # orders pending -> the runs that took them
    end_to_end: EndToEnd | None
    memory_mb: dict[str, int]  # function name -> configured memory
    handlers: dict[str, str]  # function name -> handler
    pending_index_key: str  # the hash key of the table's pending-results index

    def median(self, size: int) -> Run:
        """The run of median duration among the repeats of `size`."""
        ordered = sorted(self.runs[size], key=lambda run: run.seconds)
        return ordered[len(ordered) // 2]

    def seconds(self, size: int) -> list[float]:
        return [run.seconds for run in self.runs[size]]


def measure(
    template_path: Path,
    *,
    repeats: dict[int, int] | None = None,
    random_orders: int = RANDOM_ORDERS,
) -> ScaleFigures:
    """Run the pipeline once per repeat of each size with that many orders pending, POSTed
    through the local API first (sizes interleaved); then, with `random_orders`, one run in
    random mode, on the service synthesized for it."""
    repeats = REPEATS if repeats is None else repeats
    with bench_system(template_path) as bench:
        runs: dict[int, list[Run]] = {size: [] for size in repeats}
        for repeat in range(max(repeats.values())):
            for size in [size for size, times in repeats.items() if repeat < times]:
                bench.ingest(size, unique_prefix(f"run{size}"))
                runs[size].append(bench.run())
                progress(f"run with {size:,} pending: {runs[size][-1].seconds:.1f} s")
        functions = bench.deployment.functions
    end_to_end = None
    if random_orders:
        with bench_system(random_mode_template()) as random_bench:
            end_to_end = end_to_end_run(random_bench, random_orders)
    return ScaleFigures(
        runs=runs,
        end_to_end=end_to_end,
        memory_mb={name: spec.memory_size for name, spec in functions.items()},
        handlers={name: spec.handler for name, spec in functions.items()},
        pending_index_key=pending_index_key(template_path),
    )


def pending_index_key(template_path: Path) -> str:
    """The hash key attribute of the orders table's pending-results index, from the template."""
    index_name = settings.ORDERS_PENDING_INDEX_NAME.text()
    resources = json.loads(template_path.read_text(encoding="utf-8"))["Resources"]
    for resource in resources.values():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        for index in resource["Properties"].get("GlobalSecondaryIndexes", []):
            if index["IndexName"] == index_name:
                (key,) = [k["AttributeName"] for k in index["KeySchema"] if k["KeyType"] == "HASH"]
                return str(key)
    raise ValueError(f"no {index_name} index in {template_path}")


def progress(text: str) -> None:
    """A line on stderr, so that a long bench shows where it is (stdout keeps the table)."""
    print(f"pipeline: {text}", file=sys.stderr, flush=True)


def end_to_end_run(bench: BenchSystem, orders: int) -> EndToEnd:
    """Lambda A in random mode (set through the Lambda API, on the service synthesized in random
    mode, whose role may write orders) for one run of `orders` made-up orders; then the orders
    mode again."""
    bench.notifications.settled()  # earlier runs' alerts are all delivered
    bench.notifications.reset()
    bench.configure(
        RESULTS_HANDLER,
        {settings.AUCTION_MODE.name: "random", settings.RANDOM_ORDER_COUNT.name: str(orders)},
    )
    try:
        run = bench.run()
    finally:
        bench.configure(RESULTS_HANDLER, {settings.AUCTION_MODE.name: "orders"})
    progress(f"random mode, {orders:,} orders: {run.seconds:.1f} s")
    objects, lines = bench.result_lines(run.execution)
    rejection_objects, rejection_lines = bench.result_lines(run.execution, "rejections/")
    if lines + rejection_lines != orders:
        # Every made-up order gets a result line: fewer is a lost order, not a figure.
        raise RuntimeError(
            f"random mode, {orders:,} orders: {lines:,} result and {rejection_lines:,} "
            f"rejection lines stored (run {run.execution})"
        )
    return EndToEnd(
        run=run,
        expected=orders,
        result_objects=objects,
        result_lines=lines,
        rejection_objects=rejection_objects,
        rejection_lines=rejection_lines,
        notifications=bench.notifications.settled(),
        sns_messages=sum(
            times * call.items
            for call, times in run.calls.items()
            if call.service == "sns" and call.operation in {"Publish", "PublishBatch"}
        ),
    )


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def rows(
    template_path: Path,
    *,
    repeats: dict[int, int] | None = None,
    random_orders: int = RANDOM_ORDERS,
    base_size: int = BASE_SIZE,
    ingest: aws_cost.IngestWrites | None = None,
) -> list[Row]:
    """Pipeline run time by size (per order, against the run of
    `base_size`, one of `repeats`' sizes), the random-mode end-to-end check, AWS requests and
    cost per order (`measure`'s arguments; `ingest`: the write units of storing an order, from
    bench/ingest_writes.py)."""
    figures = measure(template_path, repeats=repeats, random_orders=random_orders)
    table: list[Row] = []
    medians = {size: figures.median(size) for size in figures.runs}
    per_order = {size: run.seconds / max(1, run.processed) * 1000 for size, run in medians.items()}
    for size in sorted(medians):
        run = medians[size]
        times = len(figures.runs[size])
        seconds_spread = spread(figures.seconds(size))
        table.append(
            Row(
                "pipeline",
                f"one run, {size:,} pending: {run.processed:,} processed in {run.children} "
                f"batch(es) ({run.summary['status']}, {run.left_pending:,} left pending), "
                + (f"median of {times} ({seconds_spread} s)" if times > 1 else "1 run"),
                f"{run.seconds:.1f} s, {per_order[size]:.1f} ms/order",
                f"{per_order[base_size]:.1f} ms/order at {base_size}",
                ratio(per_order[size], per_order[base_size]),
                "linear (~1.00x)",
            )
        )
    if figures.end_to_end:
        table += end_to_end_rows(figures.end_to_end)
    table += aws_cost.rows(
        medians[max(medians)],
        figures.memory_mb,
        figures.handlers,
        figures.pending_index_key,
        ingest,
    )
    return table


def end_to_end_rows(check: EndToEnd) -> list[Row]:
    """One random-mode run: every made-up order stored once, under results/ or rejections/, and
    people told of the rejections in one digest."""
    run = check.run
    accepted, rejected = int(run.summary["accepted"]), int(run.summary["rejected"])
    found = check.result_lines + check.rejection_lines
    lost = check.expected - found
    return [
        Row(
            "end to end",
            f"random mode, RANDOM_ORDER_COUNT={check.expected:,}: one run "
            f"({run.summary['status']}, {run.seconds:.1f} s, {run.children} batch(es)); "
            f"accepted {accepted:,} + rejected {rejected:,}",
            f"{accepted + rejected:,}",
            f"{check.expected:,} orders",
            ratio(accepted + rejected, check.expected),
            "1.00x",
        ),
        Row(
            "end to end",
            f"  result lines under results/.../run=<execution>/ ({check.result_objects} "
            f"JSON Lines objects) vs accepted",
            f"{check.result_lines:,}",
            f"{accepted:,} accepted",
            ratio(check.result_lines, accepted),
            "1.00x",
        ),
        Row(
            "end to end",
            f"  rejection lines under rejections/.../run=<execution>/ "
            f"({check.rejection_objects} JSON Lines objects) vs rejected",
            f"{check.rejection_lines:,}",
            f"{rejected:,} rejected",
            ratio(check.rejection_lines, rejected),
            "1.00x",
        ),
        Row(
            "end to end",
            f"  messages people got (the console: the run's digest, per-order rejections "
            f"filtered out; SNS messages published: {check.sns_messages:,})",
            f"{check.notifications:,}",
            "1 digest a run",
            "",
            "reported",
        ),
        Row(
            "end to end",
            "  found (result lines + rejection lines) vs orders",
            f"{found:,} found, {lost:,} lost",
            f"{check.expected:,} orders",
            ratio(found, check.expected),
            "1.00x, 0 lost",
        ),
    ]


NOTE = """
Pipeline rows: `entrix local` in the bench process (schedule and TTL sweeps off), Lambda A set to
be ready at its first poll, orders POSTed through the local API first; each size is ONE run
(Lambda A takes up to MAX_ORDERS_PER_RUN=200,000 pending orders). Lambda A writes the run's
results as batches of BATCH_MAX_ORDERS=1,000 orders to one S3 object; a Distributed Map runs
Lambda B once per batch in a child execution. On AWS up to 10 batches run in parallel; locally
handlers run one at a time under one environment lock, so local batches do not overlap and a
local run time is the sum of its batches'. Per order, a run costs Lambda B's 2 UpdateItem
requests (claim, record) and a tenth of a PublishBatch for a rejected order, so from 100 orders
up the time grows linearly. At 10 orders the fixed part of a run weighs more per order: the
parent's states, the polling, and mostly Lambda A's 16 queries (one per pending_shard), which
moto answers by walking every item of the table (moto/dynamodb/models/table.py `query`), so
locally they slow down as the bench's table fills (tens of thousands of recorded orders by then;
on DynamoDB a query reads only its shard's pending orders).
Lambda durations are measured per invocation in process; each AWS request a handler makes goes to
the embedded moto endpoint (UpdateItem ~4 ms each locally, similar to DynamoDB's latency on AWS;
PublishBatch is slower locally because moto also delivers each message to the notification
tap's queue). Child executions' transitions are modelled (2 each), as moto does not expose them.
The end-to-end rows run Lambda A in random mode (the service synthesized in random mode, the mode
set through the Lambda API) and count what was
stored and alerted.
"""
