"""`make bench`: every benchmark in one run, printed as one table of ratios against baselines.

Run with `make bench` (or `.venv/bin/python -m bench`). The service template must be
synthesized with bundling (`make synth`), since the cold-start rows load the real assets.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

from bench import api_latency, aws_cost, aws_requests, cold_start, load, pipeline_scale, ttl_sweep
from bench.aws_requests import tally
from bench.local_system import running_system
from bench.report import Row, ratio, render


def local_api_rows(samples: int) -> list[Row]:
    with running_system() as system:
        figures = api_latency.measure(system.api_url, system.aws_endpoint, system.token(), samples)
        startup = system.startup_seconds
    return [
        Row("local", "entrix local: spawn to serving", f"{startup:.1f} s", "", "", "<= 30 s"),
        Row(
            "local API",
            "POST /orders (10 orders) p50",
            f"{figures.post_p50_ms:.1f} ms",
            f"{figures.raw_p50_ms:.1f} ms (raw BatchWriteItem of 10)",
            ratio(figures.post_p50_ms, figures.raw_p50_ms),
            "<= 3x",
        ),
        Row(
            "local API",
            "POST /orders (10 orders) p99",
            f"{figures.post_p99_ms:.1f} ms",
            f"{figures.raw_p99_ms:.1f} ms (raw BatchWriteItem of 10)",
            ratio(figures.post_p99_ms, figures.raw_p99_ms),
            "reported",
        ),
        Row(
            "local API",
            f"{figures.concurrent_clients} concurrent clients, {figures.concurrent_requests} POSTs",
            f"{figures.concurrent_requests_per_second:.0f} req/s, "
            f"{figures.concurrent_errors} errors",
            "",
            "",
            "0 errors",
        ),
    ]


def scale_rows(figures: pipeline_scale.ScaleFigures) -> list[Row]:
    """Ingest request count, pipeline run time by size, the random-mode end-to-end check, AWS
    requests and cost per order."""
    rows = [
        Row(
            "ingest",
            f"DynamoDB requests per {figures.ingested:,} orders POSTed "
            f"({pipeline_scale.ORDERS_PER_POST} a request), counted at the endpoint",
            f"{figures.ingest_dynamodb_requests}",
            f"{figures.raw_dynamodb_requests} (raw BatchWriteItem, 25 a request)",
            ratio(figures.ingest_dynamodb_requests, figures.raw_dynamodb_requests),
            "<= 40",
        )
    ]
    base_size = 100
    medians = {size: figures.median(size) for size in figures.runs}
    per_order = {size: run.seconds / max(1, run.processed) * 1000 for size, run in medians.items()}
    for size in sorted(medians):
        run = medians[size]
        times = len(figures.runs[size])
        spread = pipeline_scale.spread(figures.seconds(size))
        rows.append(
            Row(
                "pipeline",
                f"one run, {size:,} pending: {run.processed:,} processed in {run.children} "
                f"batch(es) ({run.summary['status']}, {run.left_pending:,} left pending), "
                + (f"median of {times} ({spread} s)" if times > 1 else "1 run"),
                f"{run.seconds:.1f} s, {per_order[size]:.1f} ms/order",
                f"{per_order[base_size]:.1f} ms/order at {base_size}",
                ratio(per_order[size], per_order[base_size]),
                "linear (~1.00x)",
            )
        )
    if figures.end_to_end:
        rows += end_to_end_rows(figures.end_to_end)
    rows += cost_rows(figures, medians[max(medians)])
    return rows


HANDLER_REQUEST_SERVICES = {"dynamodb", "s3", "sns"}


def tally_seconds(seconds: dict[aws_requests.Call, float]) -> dict[tuple[str, str], float]:
    """Endpoint seconds by (service, operation), the observer's requests left out."""
    summed: dict[tuple[str, str], float] = defaultdict(float)
    for call, spent in seconds.items():
        if aws_requests.not_observer(call):
            summed[(call.service, call.operation)] += spent
    return summed


def end_to_end_rows(check: pipeline_scale.EndToEnd) -> list[Row]:
    """One random-mode run: every made-up order stored once or alerted once."""
    run = check.run
    accepted, rejected = int(run.summary["accepted"]), int(run.summary["rejected"])
    found = check.result_lines + check.notifications
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
            f"  alerts delivered by the notification tap vs rejected "
            f"(SNS messages published: {check.sns_messages:,})",
            f"{check.notifications:,}",
            f"{rejected:,} rejected",
            ratio(check.notifications, rejected),
            "1.00x",
        ),
        Row(
            "end to end",
            "  found (lines + alerts) vs orders",
            f"{found:,} found, {lost:,} lost",
            f"{check.expected:,} orders",
            ratio(found, check.expected),
            "1.00x, 0 lost",
        ),
    ]


def cost_rows(figures: pipeline_scale.ScaleFigures, run: pipeline_scale.Run) -> list[Row]:
    """Requests per order by service, and both designs' bills, from one orders-mode run."""
    process_function = next(
        name
        for name, handler in figures.handlers.items()
        if handler == pipeline_scale.PROCESS_HANDLER
    )
    usage = aws_cost.Usage(
        orders=run.processed,
        accepted=int(run.summary["accepted"]),
        rejected=int(run.summary["rejected"]),
        parent_transitions=run.transitions,
        calls=run.calls,
        invocations=run.invocations,
        process_memory_mb=figures.memory_mb[process_function],
        pending_index_key=figures.pending_index_key,
    )
    where = f"run of {run.processed:,}"
    orders = max(1, usage.orders)
    rows = []
    served = tally_seconds(run.served_seconds)
    for (service, operation), count in sorted(tally(run.calls, aws_requests.not_observer).items()):
        if service == "sqs":
            note = ", local alert tap, not in AWS"
        elif service in HANDLER_REQUEST_SERVICES:
            note = f", {served[(service, operation)] / count * 1000:.1f} ms each at the endpoint"
        else:
            note = ""
        rows.append(
            Row(
                "AWS per order",
                f"{service} {operation} ({where}{note})",
                f"{count / orders:.4f}",
            )
        )
    invokes = Counter(
        aws_cost.function_name(call.target)
        for call, times in run.calls.items()
        if call.operation == "Invoke"
        for _ in range(times)
    )
    for function, count in sorted(invokes.items()):
        handler = figures.handlers.get(function, function)
        memory = figures.memory_mb.get(function, 0)
        rows.append(
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
    rows.append(
        Row(
            "AWS per order",
            "  Lambda duration, all invocations (measured), of which the local endpoint "
            "serving their DynamoDB, S3 and SNS requests",
            f"{handler_ms / orders:.1f} ms/order",
            f"{request_ms / orders:.1f} ms/order at the endpoint",
            ratio(request_ms, handler_ms),
        )
    )
    rows.append(
        Row(
            "AWS per order",
            f"Step Functions transitions: parent's states entered ({run.transitions}) + "
            f"{aws_cost.CHILD_TRANSITIONS} per child execution ({usage.children}, modelled: moto "
            f"does not expose child histories) ({where})",
            f"{(run.transitions + usage.child_transitions) / orders:.4f}",
        )
    )
    ours, seed = aws_cost.ours(usage), aws_cost.seed_style(usage)
    seed_by_item = {line.item: line for line in seed}
    ours_by_item = {line.item: line for line in ours}
    items = [line.item for line in ours] + [s.item for s in seed if s.item not in ours_by_item]
    for item in items:
        ours_line, seed_line = ours_by_item.get(item), seed_by_item.get(item)
        rows.append(
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
    ours_total, seed_total = aws_cost.total(ours), aws_cost.total(seed)
    goal_met = ours_total <= 0.1 * seed_total
    rows.append(
        Row(
            "cost per M orders",
            f"total (us-east-1 list prices; from the {where})",
            f"${ours_total:.2f}",
            f"${seed_total:.2f} (seed-style)",
            ratio(ours_total, seed_total),
            f"<= 0.10x: {'met' if goal_met else 'NOT met'}",
        )
    )
    unpriced = aws_cost.unpriced(usage)
    if unpriced:
        listed = ", ".join(f"{s} {o} {n}" for (s, o), n in sorted(unpriced.items()))
        rows.append(Row("cost per M orders", f"not priced: {listed}", "", "", "", ""))
    return rows


SCALE_NOTE = """
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
The end-to-end rows run Lambda A in random mode (set through the Lambda API) and count what was
stored and alerted.
"""


def load_rows() -> list[Row]:
    """10,000 orders from concurrent clients, then every acknowledged order looked up."""
    figures = load.run()
    return [
        Row(
            "load",
            f"{figures['orders']:,} orders, {figures['clients']} clients, "
            f"{figures['batch_size']} a POST: orders acknowledged (201) vs found in the table",
            f"{figures['found']:,} found",
            f"{figures['acknowledged']:,} acknowledged",
            ratio(figures["found"], figures["acknowledged"]),
            "1.00x, 0 lost",
        ),
        Row(
            "load",
            "throughput; request latency p50 / p99",
            f"{figures['orders_per_second']:,.0f} orders/s ({figures['requests_per_second']:.0f}"
            f" req/s); {figures['p50_ms']} / {figures['p99_ms']} ms",
            "",
            "",
            f"{figures['errors']} errors",
        ),
    ]


def ttl_sweep_rows(items: int = 10_000) -> list[Row]:
    sweep_seconds, scan_seconds = ttl_sweep.measure(items)
    return [
        Row(
            "local",
            f"TTL sweep of a {items:,}-item table (1 expired), every 5 s in `entrix local`",
            f"{sweep_seconds:.2f} s",
            f"{scan_seconds:.2f} s (full Scan of the table)",
            ratio(sweep_seconds, scan_seconds),
            "",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument(
        "--runs", type=int, default=15, help="cold-request samples per handler and side"
    )
    parser.add_argument(
        "--warm-calls", type=int, default=10, help="warm invocations per cold-request sample"
    )
    parser.add_argument(
        "--python",
        action="append",
        help="interpreter for the cold-request samples (repeatable; default: this one)",
    )
    parser.add_argument("--samples", type=int, default=300, help="requests per latency figure")
    args = parser.parse_args(argv)
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if not (args.cdk_out / "Entrix.template.json").is_file():
        print(f"no {args.cdk_out}/Entrix.template.json: run `make synth` first", file=sys.stderr)
        return 1
    rows = cold_start.rows(
        args.cdk_out, args.runs, args.warm_calls, args.python or [sys.executable]
    )
    rows += local_api_rows(args.samples)
    rows += ttl_sweep_rows()
    rows += load_rows()
    rows += scale_rows(pipeline_scale.measure(args.cdk_out / "Entrix.template.json"))
    print(render(rows))
    print(SCALE_NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
