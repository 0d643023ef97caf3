"""The results pipeline under `entrix local`, in this process, with every AWS request counted.

One `LocalSystem` is started from the synthesized template (schedule and TTL sweeps off, so only
the work measured reaches the endpoint) behind `bench.aws_requests`' counting middleware. Orders
are ingested through the local API, then one pipeline run is started and timed from
`StartExecution` to the end, as `entrix pipeline run` would. Lambda A is configured (through the
Lambda API, as an operator would) to be ready at the first poll, so a run time is processing time,
not the platform's random waits.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import os
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
from entrix.environment import RESULTS_READY_PROBABILITY
from entrix.local.pipeline import scheduled_event, start_run, summarize
from entrix.local.runtime import LocalOptions, LocalSystem

AUTHORIZER_HANDLER = "entrix.handlers.authorizer.handler"
RESULTS_HANDLER = "entrix.handlers.results.handler"
ORDERS_PER_POST = 100
RUN_TIMEOUT_SECONDS = 900
RAW_KEY = "bench-raw"


@dataclass(frozen=True)
class Run:
    """One pipeline execution: its summary, wall time, transitions and the requests it caused."""

    orders_pending: int
    seconds: float
    interpreter_copy_seconds: float  # of `seconds`, spent in deep copies by moto's interpreter
    summary: dict[str, Any]
    transitions: int
    calls: Counter[Call]

    @property
    def processed(self) -> int:
        return sum(int(self.summary.get(k, 0)) for k in ("accepted", "rejected", "failed"))


class InterpreterCopyClock:
    """Wall time of the deep copies moto's Step Functions interpreter makes (top-level calls
    only), the one cost of a local run that grows with orders squared (see `profile_run`).

    `copy.deepcopy` is wrapped process-wide while the clock is installed; moto's modules call it
    through the `copy` module, so they see the wrapper."""

    def __init__(self) -> None:
        self._original = copy.deepcopy
        self._inside = threading.local()
        self._lock = threading.Lock()
        self.seconds = 0.0

    def reset(self) -> None:
        with self._lock:
            self.seconds = 0.0

    def _timed(self, value: Any, memo: dict[int, Any] | None = None, _nil: Any = None) -> Any:
        if getattr(self._inside, "active", False):
            return self._original(value, memo)
        caller = sys._getframe(1).f_code.co_filename
        if f"moto{os.sep}stepfunctions" not in caller:
            return self._original(value, memo)
        self._inside.active = True
        started = time.perf_counter()
        try:
            return self._original(value, memo)
        finally:
            self._inside.active = False
            with self._lock:
                self.seconds += time.perf_counter() - started

    @contextlib.contextmanager
    def installed(self) -> Iterator[InterpreterCopyClock]:
        copy.deepcopy = self._timed  # type: ignore[assignment]
        try:
            yield self
        finally:
            copy.deepcopy = self._original


class BenchSystem:
    """A started in-process `LocalSystem` plus observing clients that are never counted."""

    def __init__(
        self, system: LocalSystem, counter: RequestCounter, clock: InterpreterCopyClock
    ) -> None:
        self.system = system
        self.counter = counter
        self.clock = clock
        self.deployment = system.deployment
        assert self.deployment is not None
        self.sfn = self.client("stepfunctions")
        (self.state_machine_arn,) = self.deployment.state_machines.values()
        self.functions = {spec.handler: name for name, spec in self.deployment.functions.items()}
        (self.table,) = self.deployment.tables

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
        self.clock.reset()
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
            pending,
            seconds,
            self.clock.seconds,
            summarize(execution),
            self.transitions(execution_arn),
            calls,
        )

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
    """`entrix local` in this process, counted, with Lambda A ready at its first poll."""
    counter = RequestCounter()
    options = LocalOptions(
        port=free_port(),
        aws_port=free_port(),
        schedule_seconds=None,
        ttl_sweep_seconds=86_400,
    )
    system = LocalSystem(
        template_path, options, show_run=lambda _: None, show_notification=lambda _t, _m: None
    )
    with counting_requests(counter):
        system.start()
    try:
        with InterpreterCopyClock().installed() as clock:
            bench = BenchSystem(system, counter, clock)
            bench.configure(RESULTS_HANDLER, {RESULTS_READY_PROBABILITY: "1"})
            yield bench
    finally:
        system.stop()


def unique_prefix(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:6]}"


SIZES = (1_000, 100, 10)
REPEATS = {1_000: 3, 100: 5, 10: 5}  # runs of each size, interleaved; the median is reported
LARGE = 10_000


@dataclass(frozen=True)
class ScaleFigures:
    ingest_dynamodb_requests: int  # for `ingested` orders POSTed through the API
    raw_dynamodb_requests: int  # the same number as raw 25-item BatchWriteItems
    ingested: int
    runs: dict[int, list[Run]]  # orders pending -> the runs that took them
    large: Run  # a run started with LARGE orders pending
    left_pending: int  # orders still pending after it
    drain: list[Run]  # with `drain`: the further runs until none was pending
    memory_mb: dict[str, int]  # function name -> configured memory
    handlers: dict[str, str]  # function name -> handler

    def median(self, size: int) -> Run:
        """The run of median duration among the repeats of `size`."""
        ordered = sorted(self.runs[size], key=lambda run: run.seconds)
        return ordered[len(ordered) // 2]

    def seconds(self, size: int) -> list[float]:
        return [run.seconds for run in self.runs[size]]


def measure(template_path: Path, *, drain: bool = False) -> ScaleFigures:
    """Ingest 1,000 orders (counted); run the pipeline on 1,000, 100 and 10 pending orders
    (REPEATS times each) and once on 10,000; with `drain`, run again until none is pending."""
    with bench_system(template_path) as bench:
        bench.counter.reset()
        bench.ingest(SIZES[0], unique_prefix("ingest"))
        ingested = bench.counter.snapshot()
        bench.counter.reset()
        bench.raw_batch_write(SIZES[0], unique_prefix("raw"))
        raw = bench.counter.snapshot()
        runs: dict[int, list[Run]] = {size: [] for size in SIZES}
        for repeat in range(max(REPEATS.values())):
            for size in [size for size in SIZES if repeat < REPEATS[size]]:
                if repeat or size != SIZES[0]:  # the first 1,000 are the ones ingested above
                    bench.ingest(size, unique_prefix(f"run{size}"))
                runs[size].append(bench.run())
        bench.ingest(LARGE, unique_prefix("large"))
        large = bench.run()
        left = bench.pending()
        drained: list[Run] = []
        while drain and (not drained or drained[-1].processed) and bench.pending():
            drained.append(bench.run())
        assert bench.deployment is not None
        functions = bench.deployment.functions
    return ScaleFigures(
        ingest_dynamodb_requests=sum(
            n for call, n in ingested.items() if call.service == "dynamodb" and not_observer(call)
        ),
        raw_dynamodb_requests=sum(
            n for call, n in raw.items() if call.service == "dynamodb" and call.caller == RAW_KEY
        ),
        ingested=SIZES[0],
        runs=runs,
        large=large,
        left_pending=left,
        drain=drained,
        memory_mb={name: spec.memory_size for name, spec in functions.items()},
        handlers={name: spec.handler for name, spec in functions.items()},
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
    parser.add_argument("--callers-of", default="deepcopy", help="function to show callers of")
    args = parser.parse_args(argv)
    stats = profile_run(args.template, args.profile)
    stats.sort_stats("cumulative").print_callers(rf"\({args.callers_of}\)")
    stats.sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
