"""The results pipeline under `entrix local`, in this process, with every AWS request counted.

One `LocalSystem` is started from the synthesized template (schedule and TTL sweeps off, so only
the work measured reaches the endpoint) behind `bench.aws_requests`' counting middleware. Orders
are ingested through the local API, then one pipeline run is started and timed from
`StartExecution` to the end, as `entrix pipeline run` would. Lambda A is configured (through the
Lambda API, as an operator would) to be ready at the first poll, so a run time is processing time,
not the platform's random waits.

Each Lambda invocation is timed in process (`InvocationClock`), from the moment it holds the
runtime's environment lock to its return: that is the duration Lambda would bill, with each AWS
request the handler makes served by the embedded moto endpoint (about 1-4 ms a request locally,
the order of DynamoDB's and S3's latency in a region). What handlers print (their metric
lines) goes to their invocation's logs, as under `entrix local`, not to the bench's stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import pstats
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench.api_latency import ApiClient
from bench.aws_requests import (
    OBSERVER_KEY,
    Call,
    RequestCounter,
    counting_requests,
    not_observer,
)
from bench.local_system import free_port
from entrix.environment import (
    AUCTION_MODE,
    RANDOM_ORDER_COUNT,
    RESULTS_BUCKET_NAME,
    RESULTS_READY_PROBABILITY,
)
from entrix.local import lambda_runner
from entrix.local.pipeline import scheduled_event, start_run, summarize
from entrix.local.runtime import LocalOptions, LocalSystem

AUTHORIZER_HANDLER = "entrix.handlers.authorizer.handler"
RESULTS_HANDLER = "entrix.handlers.results.handler"
PROCESS_HANDLER = "entrix.handlers.process.handler"
ORDERS_PER_POST = 100
RUN_TIMEOUT_SECONDS = 900
NOTIFICATION_WAIT_SECONDS = 60
RAW_KEY = "bench-raw"
PENDING_INDEX_NAME = "pending-results"


@dataclass(frozen=True)
class Invoked:
    """One Lambda invocation: the function, its configured memory and its duration."""

    function: str
    handler: str
    memory_mb: int
    milliseconds: float


@dataclass(frozen=True)
class Run:
    """One pipeline execution: its summary, wall time, transitions and the requests it caused."""

    orders_pending: int
    left_pending: int  # orders still pending after the run
    seconds: float
    summary: dict[str, Any]
    transitions: int  # the parent execution's states entered (child executions not included)
    calls: Counter[Call]
    served_seconds: dict[Call, float]  # endpoint time serving each kind of call, summed
    invocations: tuple[Invoked, ...]

    @property
    def processed(self) -> int:
        return sum(int(self.summary.get(k, 0)) for k in ("accepted", "rejected", "failed"))

    @property
    def execution(self) -> str:
        return str(self.summary["execution"])

    @property
    def children(self) -> int:
        """Child executions of the Distributed Map: one Lambda B invocation each."""
        return sum(1 for invoked in self.invocations if invoked.handler == PROCESS_HANDLER)


class InvocationClock:
    """Times every Lambda invocation the runtime makes in this process.

    `lambda_runner.invoke` is replaced while the clock is installed (moto's invoke hook and the
    API emulation call it through the module). The wrapper takes the runtime's invocation lock
    first, so the time another handler holds it is not counted as this invocation's duration."""

    def __init__(self) -> None:
        self._original = lambda_runner.invoke
        self._lock = threading.Lock()
        self._invoked: list[Invoked] = []

    def reset(self) -> None:
        with self._lock:
            self._invoked.clear()

    def snapshot(self) -> tuple[Invoked, ...]:
        with self._lock:
            return tuple(self._invoked)

    def _timed(self, spec: lambda_runner.FunctionSpec, event: Any) -> lambda_runner.Invocation:
        with lambda_runner._INVOCATION_LOCK:  # reentrant: `invoke` takes it again
            started = time.perf_counter()
            try:
                return self._original(spec, event)
            finally:
                milliseconds = (time.perf_counter() - started) * 1000
                with self._lock:
                    self._invoked.append(
                        Invoked(spec.function_name, spec.handler, spec.memory_size, milliseconds)
                    )

    @contextlib.contextmanager
    def installed(self) -> Iterator[InvocationClock]:
        lambda_runner.invoke = self._timed
        try:
            yield self
        finally:
            lambda_runner.invoke = self._original


class NotificationCount:
    """Messages the local notification tap delivered (the Slack channel's view)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def show(self, _topic: str, _text: str) -> None:
        with self._lock:
            self.count += 1

    def settled(self, expected: int | None = None, quiet_seconds: float = 3.0) -> int:
        """The count once it reaches `expected` (or, without one, stops moving for
        `quiet_seconds`), or after NOTIFICATION_WAIT_SECONDS."""
        deadline = time.perf_counter() + NOTIFICATION_WAIT_SECONDS
        last, since = self.count, time.perf_counter()
        while time.perf_counter() < deadline:
            if expected is not None and self.count >= expected:
                break
            if self.count != last:
                last, since = self.count, time.perf_counter()
            elif time.perf_counter() - since > quiet_seconds:
                break
            time.sleep(0.1)
        return self.count

    def reset(self) -> None:
        with self._lock:
            self.count = 0


class BenchSystem:
    """A started in-process `LocalSystem` plus observing clients that are never counted."""

    def __init__(
        self,
        system: LocalSystem,
        counter: RequestCounter,
        invocations: InvocationClock,
        notifications: NotificationCount,
    ) -> None:
        self.system = system
        self.counter = counter
        self.invocations = invocations
        self.notifications = notifications
        self.deployment = system.deployment
        assert self.deployment is not None
        self.sfn = self.client("stepfunctions")
        (self.state_machine_arn,) = self.deployment.state_machines.values()
        self.functions = {spec.handler: name for name, spec in self.deployment.functions.items()}
        (self.table,) = self.deployment.tables
        process = self.deployment.functions[self.functions[PROCESS_HANDLER]]
        self.bucket = process.environment[RESULTS_BUCKET_NAME]

    def client(self, service: str, key: str = OBSERVER_KEY) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=self.system.region,
            endpoint_url=self.system.endpoint.url,
            aws_access_key_id=key,
            aws_secret_access_key=key,
            config=Config(retries={"max_attempts": 1}),
        )

    def configure(self, handler: str, variables: dict[str, str]) -> None:
        """Change a function's environment through the Lambda API (moto applies it per invoke)."""
        lambda_client = self.client("lambda")
        name = self.functions[handler]
        current = lambda_client.get_function_configuration(FunctionName=name)
        merged = {**current.get("Environment", {}).get("Variables", {}), **variables}
        lambda_client.update_function_configuration(
            FunctionName=name, Environment={"Variables": merged}
        )

    def token(self) -> str:
        from entrix.token_command import sign_for_function

        return sign_for_function(
            lambda service, _region: self.client(service),
            self.system.region,
            self.functions[AUTHORIZER_HANDLER],
            "bench",
            3600,
        )

    def ingest(self, count: int, prefix: str) -> None:
        """POST `count` orders through the local API, ORDERS_PER_POST a request."""
        api = ApiClient(self.system.api_url, self.token())
        for start in range(0, count, ORDERS_PER_POST):
            orders = [
                {"record_id": f"{prefix}-{i}", "parameter_1": "bench", "parameter_2": i + 0.5}
                for i in range(start, min(count, start + ORDERS_PER_POST))
            ]
            status = api.post_orders(orders)
            if status != 201:
                raise RuntimeError(f"POST /orders answered {status}")

    def raw_batch_write(self, count: int, prefix: str) -> None:
        """The baseline: the same orders written straight to the table, 25 a BatchWriteItem."""
        dynamodb = self.client("dynamodb", RAW_KEY)
        for start in range(0, count, 25):
            dynamodb.batch_write_item(
                RequestItems={
                    self.table: [
                        {
                            "PutRequest": {
                                "Item": {
                                    "record_id": {"S": f"{prefix}-{i}"},
                                    "parameter_1": {"S": "bench"},
                                    "parameter_2": {"N": str(i + 0.5)},
                                }
                            }
                        }
                        for i in range(start, min(count, start + 25))
                    ]
                }
            )

    def pending(self) -> int:
        """Orders waiting for a result (a scan: the observer's, never counted)."""
        pages = (
            self.client("dynamodb")
            .get_paginator("scan")
            .paginate(
                TableName=self.table,
                FilterExpression="result_status = :pending",
                ExpressionAttributeValues={":pending": {"S": "pending"}},
                Select="COUNT",
            )
        )
        return sum(page["Count"] for page in pages)

    def run(self) -> Run:
        """One execution as the schedule starts it, timed to its end, with what it caused."""
        pending = self.pending()
        self.counter.reset()
        self.invocations.reset()
        started = time.perf_counter()
        event = scheduled_event(self.system.region, "123456789012", None)
        execution_arn = start_run(self.sfn, self.state_machine_arn, event, "bench")
        deadline = started + RUN_TIMEOUT_SECONDS
        while True:
            execution = self.sfn.describe_execution(executionArn=execution_arn)
            if execution["status"] != "RUNNING":
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{execution_arn} still running after {RUN_TIMEOUT_SECONDS} s")
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        calls = self.counter.snapshot()
        return Run(
            orders_pending=pending,
            left_pending=self.pending(),
            seconds=seconds,
            served_seconds=self.counter.served_seconds(),
            summary=summarize(execution),
            transitions=self.transitions(execution_arn),
            calls=calls,
            invocations=self.invocations.snapshot(),
        )

    def result_lines(self, execution: str) -> tuple[int, int]:
        """(objects, JSON Lines) stored under results/ for the run named `execution`."""
        s3 = self.client("s3")
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix="results/"
            )
            for item in page.get("Contents", [])
            if f"/run={execution}/" in item["Key"]
        ]
        lines = 0
        for key in keys:
            body = s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
            lines += sum(1 for line in body.splitlines() if line.strip())
        return len(keys), lines

    def transitions(self, execution_arn: str) -> int:
        """State transitions as Step Functions bills them: one per state entered."""
        pages = self.sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        return sum(
            1
            for page in pages
            for event in page["events"]
            if event["type"].endswith("StateEntered")
        )


@contextlib.contextmanager
def bench_system(template_path: Path) -> Iterator[BenchSystem]:
    """`entrix local` in this process, counted and timed, with Lambda A ready at its first poll;
    handlers' output goes to their logs, as under `entrix local`."""
    counter = RequestCounter()
    notifications = NotificationCount()
    options = LocalOptions(
        port=free_port(),
        aws_port=free_port(),
        schedule_seconds=None,
        ttl_sweep_seconds=86_400,
    )
    system = LocalSystem(
        template_path, options, show_run=lambda _: None, show_notification=notifications.show
    )
    with lambda_runner.handler_output_captured():
        with counting_requests(counter):
            system.start()
        try:
            with InvocationClock().installed() as invocations:
                bench = BenchSystem(system, counter, invocations, notifications)
                bench.configure(RESULTS_HANDLER, {RESULTS_READY_PROBABILITY: "1"})
                yield bench
        finally:
            system.stop()


def unique_prefix(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:6]}"


# Orders pending for a run -> runs of that size, interleaved; the median is reported. The first
# run of 1,000 takes the orders whose ingest is counted.
REPEATS = {1_000: 3, 10_000: 1, 100: 5, 10: 5}
INGESTED = 1_000
RANDOM_ORDERS = 10_000


@dataclass(frozen=True)
class EndToEnd:
    """A run in Lambda A's random mode, and what it left behind."""

    run: Run
    expected: int  # RANDOM_ORDER_COUNT
    result_objects: int  # JSON Lines objects under results/.../run=<execution>/
    result_lines: int  # lines in them
    notifications: int  # alerts the notification tap delivered
    sns_messages: int  # messages in the run's SNS Publish and PublishBatch requests


@dataclass(frozen=True)
class ScaleFigures:
    ingest_dynamodb_requests: int  # for `ingested` orders POSTed through the API
    raw_dynamodb_requests: int  # the same number as raw 25-item BatchWriteItems
    ingested: int
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
    """Ingest 1,000 orders (counted); run the pipeline once per repeat of each size with that
    many orders pending (interleaved); then, with `random_orders`, one run in random mode."""
    repeats = REPEATS if repeats is None else repeats
    with bench_system(template_path) as bench:
        bench.counter.reset()
        bench.ingest(INGESTED, unique_prefix("ingest"))
        ingested = bench.counter.snapshot()
        bench.counter.reset()
        bench.raw_batch_write(INGESTED, unique_prefix("raw"))
        raw = bench.counter.snapshot()
        runs: dict[int, list[Run]] = {size: [] for size in repeats}
        first = True
        for repeat in range(max(repeats.values())):
            for size in [size for size, times in repeats.items() if repeat < times]:
                if not (first and size == INGESTED):
                    bench.ingest(size, unique_prefix(f"run{size}"))
                first = False
                runs[size].append(bench.run())
                progress(f"run with {size:,} pending: {runs[size][-1].seconds:.1f} s")
        end_to_end = end_to_end_run(bench, random_orders) if random_orders else None
        assert bench.deployment is not None
        functions = bench.deployment.functions
    return ScaleFigures(
        ingest_dynamodb_requests=sum(
            n for call, n in ingested.items() if call.service == "dynamodb" and not_observer(call)
        ),
        raw_dynamodb_requests=sum(
            n for call, n in raw.items() if call.service == "dynamodb" and call.caller == RAW_KEY
        ),
        ingested=INGESTED,
        runs=runs,
        end_to_end=end_to_end,
        memory_mb={name: spec.memory_size for name, spec in functions.items()},
        handlers={name: spec.handler for name, spec in functions.items()},
        pending_index_key=pending_index_key(template_path),
    )


def pending_index_key(template_path: Path, index_name: str = PENDING_INDEX_NAME) -> str:
    """The hash key attribute of the orders table's pending-results index, from the template."""
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
    """Lambda A in random mode (set through the Lambda API) for one run of `orders` made-up
    orders; then the orders mode again."""
    bench.notifications.settled()  # earlier runs' alerts are all delivered
    bench.notifications.reset()
    bench.configure(RESULTS_HANDLER, {AUCTION_MODE: "random", RANDOM_ORDER_COUNT: str(orders)})
    try:
        run = bench.run()
    finally:
        bench.configure(RESULTS_HANDLER, {AUCTION_MODE: "orders"})
    progress(f"random mode, {orders:,} orders: {run.seconds:.1f} s")
    objects, lines = bench.result_lines(run.execution)
    return EndToEnd(
        run=run,
        expected=orders,
        result_objects=objects,
        result_lines=lines,
        notifications=bench.notifications.settled(int(run.summary.get("rejected", 0))),
        sns_messages=sum(
            times * call.items
            for call, times in run.calls.items()
            if call.service == "sns" and call.operation in {"Publish", "PublishBatch"}
        ),
    )


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def profile_run(template_path: Path, orders: int) -> pstats.Stats:
    """cProfile of one run of `orders`, across every thread it starts (moto's interpreter, its
    server's request threads, the handlers). Times are summed over threads, waits included."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def profile_this_thread(*_: Any) -> None:
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()  # replaces this hook for the rest of the thread

    with bench_system(template_path) as bench:
        bench.ingest(orders, unique_prefix("profile"))
        threading.setprofile(profile_this_thread)
        try:
            run = bench.run()
        finally:
            threading.setprofile(None)
    print(f"{run.processed} orders in {run.seconds:.1f} s (profiled)")
    stats = pstats.Stats()
    for profile in profiles:
        profile.create_stats()
        stats.add(profile)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_scale")
    parser.add_argument("--profile", type=int, required=True, metavar="ORDERS")
    parser.add_argument("--template", type=Path, default=Path("cdk.out/Entrix.template.json"))
    parser.add_argument("--callers-of", help="also show the callers of this function")
    args = parser.parse_args(argv)
    stats = profile_run(args.template, args.profile)
    if args.callers_of:
        stats.sort_stats("cumulative").print_callers(rf"\({args.callers_of}\)")
    stats.sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
