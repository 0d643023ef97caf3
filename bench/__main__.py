"""`make bench`: every benchmark in one run, printed as one table of ratios against baselines.

Run with `make bench` (or `.venv/bin/python -m bench`). The service template must be
synthesized with bundling (`make synth`), since the cold-start rows load the real assets.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from bench import api_latency, aws_cost, aws_requests, cold_start, load, pipeline_scale
from bench.aws_requests import tally
from bench.local_system import running_system
from bench.report import Row, ratio, render

LAMBDA_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "ORDERS_TABLE_NAME": "orders",
    "JWT_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jwt",
    "RESULTS_BUCKET_NAME": "results",
    "ALERT_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alerts",
}
# Handler -> (seed module it replaces, goal as a ratio of the seed's import time).
SEED_OF = {
    "authorizer": ("auth_lambda", 0.5),
    "ingest": ("post_lambda", 1.2),
    "order_status": ("post_lambda", None),
    "results": ("post_lambda", None),
    "process": ("post_lambda", None),
}


def cold_start_rows(cdk_out: Path, runs: int) -> list[Row]:
    """Each handler's import next to its seed's, sampled alternately so that a change in the
    machine's load during the run moves both sides alike."""
    seeds = cold_start.seed_load_paths()
    seed_samples: dict[str, list[float]] = {name: [] for name in seeds}
    rows = []
    for function in cold_start.functions_from_template(cdk_out):
        seed_name, goal = SEED_OF.get(function.name, ("post_lambda", None))
        samples: list[float] = []
        own_seed: list[float] = []
        for _ in range(runs):
            own_seed += cold_start.import_ms(seeds[seed_name], 1, LAMBDA_ENVIRONMENT)
            samples += cold_start.import_ms(function, 1, LAMBDA_ENVIRONMENT)
        seed_samples[seed_name] += own_seed
        ms, seed_ms = cold_start.median(samples), cold_start.median(own_seed)
        rows.append(
            Row(
                "cold start",
                f"{function.name} import (asset + layers + runtime boto3)",
                f"{ms:.0f} ms",
                f"{seed_ms:.0f} ms ({seed_name}, alternating)",
                ratio(ms, seed_ms),
                f"<= {goal}x" if goal else "",
            )
        )
    baselines = [
        Row(
            "cold start",
            f"seed {name} import",
            f"{cold_start.median(samples):.0f} ms",
            "",
            "1.00x",
            "baseline",
        )
        for name, samples in seed_samples.items()
        if samples
    ]
    return baselines + rows


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
    """Ingest request count, pipeline run time by size, AWS requests and cost per order."""
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
    per_order = {size: run.seconds / run.processed * 1000 for size, run in medians.items()}
    # The same run without moto's deep copies (the part that grows with orders squared).
    without_copies = {
        size: (run.seconds - run.interpreter_copy_seconds) / run.processed * 1000
        for size, run in medians.items()
    }
    for size in sorted(medians):
        run = medians[size]
        spread = pipeline_scale.spread(figures.seconds(size))
        rows.append(
            Row(
                "pipeline",
                f"run with {size:,} pending: {run.processed:,} processed ({run.summary['status']}),"
                f" median of {len(figures.runs[size])} ({spread} s)",
                f"{run.seconds:.1f} s, {per_order[size]:.1f} ms/order",
                f"{per_order[base_size]:.1f} ms/order at {base_size}",
                ratio(per_order[size], per_order[base_size]),
                "linear (~1.00x)",
            )
        )
    for size in sorted(medians):
        run = medians[size]
        rows.append(
            Row(
                "pipeline",
                f"  run with {size:,}, less moto's interpreter deep copies "
                f"({run.interpreter_copy_seconds:.2f} s of its {run.seconds:.1f} s)",
                f"{without_copies[size]:.1f} ms/order",
                f"{without_copies[base_size]:.1f} ms/order at {base_size}",
                ratio(without_copies[size], without_copies[base_size]),
                "linear (~1.00x)",
            )
        )
    large = figures.large
    largest = max(medians)
    runs_needed = -(-large.orders_pending // max(1, large.processed))
    rows.append(
        Row(
            "pipeline",
            f"run with {large.orders_pending:,} pending: {large.processed:,} processed "
            f"({large.summary['status']}), {figures.left_pending:,} left pending",
            f"{large.seconds:.1f} s, {large.seconds / large.processed * 1000:.1f} ms/order",
            f"{medians[largest].seconds:.1f} s ({largest:,} pending)",
            ratio(large.seconds, medians[largest].seconds),
            f"one run: not met ({runs_needed} runs, ~{runs_needed * large.seconds:.0f} s)",
        )
    )
    if figures.drain:
        runs = [large, *figures.drain]
        seconds = sum(run.seconds for run in runs)
        processed = sum(run.processed for run in runs)
        rows.append(
            Row(
                "pipeline",
                f"{large.orders_pending:,} pending, runs back to back until none is: "
                f"{len(runs)} runs, {processed:,} processed",
                f"{seconds:.0f} s, {seconds / processed * 1000:.1f} ms/order",
                f"{per_order[largest]:.1f} ms/order ({largest:,} pending)",
                ratio(seconds / processed * 1000, per_order[largest]),
                "linear (~1.00x)",
            )
        )
    run = medians[largest]
    usage = aws_cost.Usage(
        orders=run.processed,
        accepted=int(run.summary["accepted"]),
        rejected=int(run.summary["rejected"]),
        transitions=run.transitions,
        calls=run.calls,
        memory_mb=figures.memory_mb,
    )
    where = f"run of {run.processed:,}"
    for (service, operation), count in sorted(tally(run.calls, aws_requests.not_observer).items()):
        local_only = " (local alert tap, not in AWS)" if service == "sqs" else ""
        rows.append(
            Row(
                "AWS per order",
                f"{service} {operation} ({where}){local_only}",
                f"{count / usage.orders:.3f}",
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
        rows.append(Row("AWS per order", f"  of which {handler}", f"{count / usage.orders:.3f}"))
    rows.append(
        Row(
            "AWS per order",
            f"Step Functions state transitions ({where})",
            f"{run.transitions / usage.orders:.3f}",
        )
    )
    ours, seed = aws_cost.ours(usage), aws_cost.seed_style(usage)
    seed_by_item = {line.item: line for line in seed}
    for line in ours + [s for s in seed if s.item not in {o.item for o in ours}]:
        ours_line = next((o for o in ours if o.item == line.item), None)
        seed_line = seed_by_item.get(line.item)
        rows.append(
            Row(
                "cost per M orders",
                line.item,
                f"${ours_line.dollars_per_million:.2f}" if ours_line else "-",
                f"${seed_line.dollars_per_million:.2f} (seed-style)" if seed_line else "-",
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
            "total (list prices, FIELD-NOTES)",
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
be ready at its first poll, orders POSTed through the local API first. A run takes at most 1,000
orders (Lambda A's MAX_ORDERS_PER_RUN; AUCTION_MODE=random caps RANDOM_ORDER_COUNT the same way),
so 10,000 pending orders take 10 scheduled runs, 5 minutes apart on AWS.
Where growth is worse than linear, the cause is moto's interpreter, not our handlers: for every
Task state of every Map iteration it deep-copies its evaluation stack and state input, which hold
the Map's whole item list (execute_state.py `_evaluate_with_timeout`, eval/states.py `reset`), so
that work grows with orders squared; the "less deep copies" rows take it out
(`python -m bench.pipeline_scale --profile N` prints a cProfile of a run). The rest is constant
per order: about 3 requests, each through moto's server dispatch (which lists moto's package
folder under a global lock), and handlers run one at a time (one environment lock).
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per import figure")
    parser.add_argument("--samples", type=int, default=300, help="requests per latency figure")
    parser.add_argument(
        "--drain",
        action="store_true",
        help="also run the pipeline until the 10,000 pending orders are all processed (~8 min)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if not (args.cdk_out / "Entrix.template.json").is_file():
        print(f"no {args.cdk_out}/Entrix.template.json: run `make synth` first", file=sys.stderr)
        return 1
    rows = cold_start_rows(args.cdk_out, args.runs)
    rows += local_api_rows(args.samples)
    rows += load_rows()
    rows += scale_rows(
        pipeline_scale.measure(args.cdk_out / "Entrix.template.json", drain=args.drain)
    )
    print(render(rows))
    print(SCALE_NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
