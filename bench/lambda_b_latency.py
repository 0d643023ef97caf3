"""Lambda B's time for one 1,000-order batch when every AWS call takes 5 ms more, as in-region
DynamoDB, S3 and SNS roughly do: the handler of this checkout against cb46575's sequential one
(`bench/baselines/lambda_b_sequential.py`), in the same run, against the same endpoint.

The endpoint is moto's threaded server started in a process of its own (`python -m
bench.lambda_b_latency`, which prints its figures as JSON), so that no earlier part of the bench
leaves a handler module, a cached client or a moto backend behind. Every request it serves waits
`delay_ms` first, in the server's thread for that request (a WSGI middleware in front of moto's
app): where a network round trip would be, so requests sent together wait together, and nothing
in the handler's clients is changed. The orders table is created from the synthesized template's
definition (keys and indexes), with the results bucket and an alert topic with no subscriber
(SNS answers a publish before delivering, so a subscriber would add moto's delivery work, not
AWS's).

Each measurement puts `orders` fresh pending orders, as the intake stores them, and times one
batch of them, half accepted and half rejected, from the call to its return: ours calls the real
`entrix.handlers.process.handler(event, context)` with a Lambda context counting down from the
function's timeout, in an environment holding the function's settings from the template (the
table, bucket and topic pointing at the endpoint's); the baseline gets clients made the same way
(`entrix.aws.clients.client`). Each side first takes one small batch, untimed, as a warm
container has (its clients made). The sides alternate; each reply must count every order
accepted or rejected. The same is measured with no delay, so the delay's share of each time
shows: locally each request also costs moto's and botocore's work on this machine's cores, which
a concurrent handler cannot overlap the way it overlaps waits.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import Row, ratio

ORDERS = 1_000
REPEATS = 3
DELAY_MS = 5
GOAL_SECONDS = 2.0
PROCESS_HANDLER = "entrix.handlers.process.handler"
REGION = "eu-west-1"
OURS, BASELINE = "ours", "baseline"
WORKER_LIMIT_SECONDS = 1_800
WARM_UP_ORDERS = 10


class DelayingMiddleware:
    """Serves each request `seconds` later than the wrapped WSGI app would."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.seconds = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.seconds:
            time.sleep(self.seconds)
        return self.app(environ, start_response)


@contextlib.contextmanager
def delayed_endpoint() -> Iterator[tuple[str, DelayingMiddleware]]:
    """moto's threaded server on a free port, behind a `DelayingMiddleware`; its URL."""
    from moto.moto_server import threaded_moto_server
    from moto.server import ThreadedMotoServer

    from entrix.local.endpoint import free_port

    middleware: list[DelayingMiddleware] = []
    original = threaded_moto_server.DomainDispatcherApplication

    def delayed_app(*args: Any, **kwargs: Any) -> DelayingMiddleware:
        middleware.append(DelayingMiddleware(original(*args, **kwargs)))
        return middleware[-1]

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    port = free_port()
    threaded_moto_server.DomainDispatcherApplication = delayed_app  # type: ignore[assignment,misc]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    finally:
        threaded_moto_server.DomainDispatcherApplication = original  # type: ignore[misc]
    try:
        yield f"http://127.0.0.1:{port}", middleware[0]
    finally:
        server.stop()


def process_function(template: dict[str, Any]) -> dict[str, Any]:
    """Lambda B's properties in the template."""
    (properties,) = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource.get("Type") == "AWS::Lambda::Function"
        and resource["Properties"].get("Handler") == PROCESS_HANDLER
    ]
    return dict(properties)


def table_definition(template: dict[str, Any]) -> dict[str, Any]:
    """The orders table's keys and indexes in the template, as CreateTable arguments."""
    (table,) = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource.get("Type") == "AWS::DynamoDB::Table"
        # the orders table: the client usage table has no index
        and "GlobalSecondaryIndexes" in resource["Properties"]
    ]
    return {
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": table["AttributeDefinitions"],
        "GlobalSecondaryIndexes": [
            {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
            for index in table.get("GlobalSecondaryIndexes", [])
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


@dataclass(frozen=True)
class Figures:
    """Seconds of each measured batch, by delay in ms and side."""

    orders: int
    seconds: dict[int, dict[str, list[float]]]

    def median(self, delay_ms: int, side: str) -> float:
        return statistics.median(self.seconds[delay_ms][side])


def measure(template_path: Path, orders: int = ORDERS, repeats: int = REPEATS) -> Figures:
    """Run the measurement in a fresh interpreter (`python -m bench.lambda_b_latency`)."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.lambda_b_latency",
            str(template_path),
            "--orders",
            str(orders),
            "--repeats",
            str(repeats),
        ],
        capture_output=True,
        text=True,
        timeout=WORKER_LIMIT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"bench.lambda_b_latency failed (exit {completed.returncode}):\n"
            f"{completed.stdout[-4000:]}{completed.stderr[-4000:]}"
        )
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    seconds = {
        int(delay): {side: list(times) for side, times in sides.items()}
        for delay, sides in answer["seconds"].items()
    }
    return Figures(answer["orders"], seconds)


class _Bench:
    """The endpoint's resources, Lambda B's environment, and both sides ready to call."""

    def __init__(self, template: dict[str, Any], endpoint: str) -> None:
        import boto3

        def make(service: str) -> Any:
            return boto3.client(  # type: ignore[call-overload]
                service,
                region_name=REGION,
                endpoint_url=endpoint,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )

        self.dynamodb = make("dynamodb")
        self.table_name = "orders"
        self.dynamodb.create_table(TableName=self.table_name, **table_definition(template))
        bucket = "results"
        make("s3").create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        topic_arn = make("sns").create_topic(Name="alerts")["TopicArn"]
        function = process_function(template)
        self.timeout_seconds = int(function.get("Timeout", 3))
        self.memory_mb = int(function.get("MemorySize", 128))
        # The function's own settings (literal values), then its resources: the endpoint's.
        variables = {
            name: str(value)
            for name, value in function.get("Environment", {}).get("Variables", {}).items()
            if isinstance(value, str | int | float)
        }
        os.environ.update(
            {
                **variables,
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_LAMBDA_FUNCTION_NAME": "lambda-b-bench",
                "ORDERS_TABLE_NAME": self.table_name,
                "RESULTS_BUCKET_NAME": bucket,
                "ALERT_TOPIC_ARN": topic_arn,
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)

        from bench.baselines import lambda_b_sequential
        from entrix import settings
        from entrix.aws.clients import PIPELINE_CONFIG, client
        from entrix.aws.orders_table import OrdersTable
        from entrix.handlers import process

        self.orders_table = OrdersTable(self.dynamodb, self.table_name)
        self.ours = process.handler
        self.baseline = lambda_b_sequential.handler
        self.stores = lambda_b_sequential.Stores(
            dynamodb=client("dynamodb", PIPELINE_CONFIG),
            s3=client("s3", PIPELINE_CONFIG),
            sns=client("sns", PIPELINE_CONFIG),
            table_name=self.table_name,
            bucket=bucket,
            topic_arn=topic_arn,
            lease_seconds=settings.RESULT_LEASE_SECONDS.read(),
        )

    def batch(self, count: int) -> dict[str, Any]:
        """`count` new pending orders stored as the intake stores them; their batch, every
        other order rejected."""
        from entrix.orders import lifecycle
        from entrix.orders.limits import TTL_SECONDS
        from entrix.timestamps import iso_milliseconds

        now = time.time()
        received_at = iso_milliseconds(now)
        nonce = lifecycle.request_nonce()
        prefix = uuid.uuid4().hex[:8]
        items = [
            lifecycle.stored_item(
                {"record_id": f"{prefix}-{n:05d}", "parameter_1": "buy", "parameter_2": n},
                "bench-desk",
                received_at,
                int(now) + TTL_SECONDS,
                lifecycle.version(received_at, nonce, n),
            )
            for n in range(count)
        ]
        outcome = self.orders_table.put_items(items)
        if outcome.not_stored:
            raise RuntimeError(f"{len(outcome.not_stored)} orders not stored")
        run_id = f"bench-{prefix}"
        return {
            "run_id": run_id,
            "results_key": f"results/date=2026-12-06/run={run_id}/batch-00001.jsonl",
            "orders": [
                {
                    "order_key": item["order_key"],
                    "version": item["version"],
                    "status": "accepted" if n % 2 else "rejected",
                    "power": n % 100 + 1,
                }
                for n, item in enumerate(items)
            ],
        }

    def call(self, side: str, event: dict[str, Any]) -> float:
        """One call of `side` with `event`, timed from the call to its return; its reply must
        count every order."""
        from entrix.local.lambda_runner import LambdaContext

        request_id = str(uuid.uuid4())
        context = LambdaContext(
            function_name="lambda-b-bench",
            function_version="$LATEST",
            invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:lambda-b-bench",
            memory_limit_in_mb=self.memory_mb,
            aws_request_id=request_id,
            log_group_name="/aws/lambda/lambda-b-bench",
            log_stream_name=f"bench/[$LATEST]{request_id}",
            deadline=time.monotonic() + self.timeout_seconds,
        )
        with contextlib.redirect_stdout(io.StringIO()):  # the handlers' metric lines
            started = time.perf_counter()
            reply = self.ours(event, context) if side == OURS else self.baseline(event, self.stores)
            seconds = time.perf_counter() - started
        orders = event["orders"]
        expected = {
            "accepted": sum(1 for order in orders if order["status"] == "accepted"),
            "rejected": sum(1 for order in orders if order["status"] == "rejected"),
            "skipped": 0,
            "failed": 0,
        }
        counts = {name: reply.get(name) for name in expected}
        if counts != expected:
            raise RuntimeError(f"{side} answered {reply!r}, expected the counts {expected}")
        return seconds


def run(template_path: Path, orders: int, repeats: int) -> dict[str, Any]:
    """Both sides, alternating, `repeats` times at DELAY_MS and with no delay."""
    template = json.loads(template_path.read_text(encoding="utf-8"))
    seconds: dict[int, dict[str, list[float]]] = {}
    with delayed_endpoint() as (endpoint, delay):
        bench = _Bench(template, endpoint)
        for side in (OURS, BASELINE):  # as a warm container: clients made, modules imported
            bench.call(side, bench.batch(WARM_UP_ORDERS))
        for delay_ms in (DELAY_MS, 0):
            delay.seconds = delay_ms / 1000
            seconds[delay_ms] = {OURS: [], BASELINE: []}
            for repeat in range(repeats):
                for side in (OURS, BASELINE) if repeat % 2 == 0 else (BASELINE, OURS):
                    event = bench.batch(orders)
                    seconds[delay_ms][side].append(bench.call(side, event))
                    print(
                        f"lambda B: {side}, {delay_ms} ms a call: "
                        f"{seconds[delay_ms][side][-1]:.2f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    return {"orders": orders, "seconds": seconds}


def rows(figures: Figures) -> list[Row]:
    """Lambda B's median time for a batch, ours against the sequential baseline, at DELAY_MS a
    call and the delay's share."""
    n = f"{figures.orders:,}"
    times = len(figures.seconds[DELAY_MS][OURS])
    ours, baseline = figures.median(DELAY_MS, OURS), figures.median(DELAY_MS, BASELINE)
    ours_share = ours - figures.median(0, OURS)
    baseline_share = baseline - figures.median(0, BASELINE)
    met = "met" if ours <= GOAL_SECONDS else "NOT met"
    return [
        Row(
            "lambda B",
            f"a {n}-order batch (half rejected), +{DELAY_MS} ms every AWS call, median of "
            f"{times} each, alternating",
            f"{ours:.2f} s",
            f"{baseline:.2f} s (sequential, cb46575)",
            ratio(ours, baseline),
            f"<= {GOAL_SECONDS:.0f} s: {met}",
        ),
        Row(
            "lambda B",
            f"  of which the {DELAY_MS} ms delay (the same batch with no delay: ours "
            f"{figures.median(0, OURS):.2f} s, baseline {figures.median(0, BASELINE):.2f} s: "
            "moto's and botocore's work on this machine)",
            f"{ours_share:.2f} s",
            f"{baseline_share:.2f} s",
            ratio(ours_share, baseline_share),
            "reported",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lambda_b_latency", description=__doc__)
    parser.add_argument("template", type=Path, help="the synthesized service template")
    parser.add_argument("--orders", type=int, default=ORDERS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.template, args.orders, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
