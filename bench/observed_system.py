"""`entrix local` in this process with every AWS request counted and every invocation timed.

The system is started by `entrix.local.harness` from the synthesized template (schedule and TTL
sweeps off, so only the work measured reaches the endpoint) behind `bench.aws_requests`' counting
middleware. Lambda A is configured (through the Lambda API, as an operator would) to be ready at
the first poll, so a run time is processing time, not the platform's random waits. A run is
started as the schedule starts it and timed from `StartExecution` to its end.

Each Lambda invocation is timed in process (`InvocationClock`), from the moment it holds the
runtime's environment lock to its return: that is the duration Lambda would bill, with each AWS
request the handler makes served by the embedded moto endpoint (about 1-4 ms a request locally,
the order of DynamoDB's and S3's latency in a region). What handlers print (their metric
lines) goes to their invocation's logs, as under `entrix local`, not to the bench's stdout.
"""

from __future__ import annotations

import contextlib
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
from bench.aws_requests import OBSERVER_KEY, Call, RequestCounter, counting_requests
from entrix import settings
from entrix.local import harness, lambda_runner
from entrix.local.pipeline import scheduled_event, start_run, summarize, wait_for_execution
from entrix.local.runtime import LocalSystem
from entrix.local.synth import ensure_template, project_root

RESULTS_HANDLER = "entrix.handlers.results.handler"
PROCESS_HANDLER = "entrix.handlers.process.handler"
ORDERS_PER_POST = 100
RUN_TIMEOUT_SECONDS = 900
POLL_SECONDS = 0.02  # a run's time is its end as seen by this poll
NOTIFICATION_WAIT_SECONDS = 60


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
        self.deployment = harness.deployment_of(system)
        self.sfn = self.client("stepfunctions")
        (self.state_machine_arn,) = self.deployment.state_machines.values()
        self.functions = {spec.handler: name for name, spec in self.deployment.functions.items()}
        self.table = harness.orders_table(system)
        process = self.deployment.functions[self.functions[PROCESS_HANDLER]]
        self.bucket = process.environment[settings.RESULTS_BUCKET_NAME.name]

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
        """Change a function's environment through the Lambda API as a deploy would: on a new
        version its `live` alias points at, since the state machine invokes the alias."""
        harness.reconfigure(self.client("lambda"), self.functions[handler], variables)

    def token(self) -> str:
        """Signed with the observer's clients, so signing adds no counted request."""
        return harness.sign_token(self.system, "bench", self.client)

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
        execution = wait_for_execution(
            self.sfn, execution_arn, RUN_TIMEOUT_SECONDS, poll_seconds=POLL_SECONDS
        )
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

    def result_lines(self, execution: str, prefix: str = "results/") -> tuple[int, int]:
        """(objects, JSON Lines) stored under `prefix` (results/ or rejections/) for the run
        named `execution`."""
        s3 = self.client("s3")
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
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
    """`entrix local` in this process (entrix.local.harness), counted and timed, with Lambda A
    ready at its first poll and TTL sweeps off; handlers' output goes to their logs, as under
    `entrix local`."""
    counter = RequestCounter()
    notifications = NotificationCount()
    with (
        lambda_runner.handler_output_captured(),
        counting_requests(counter),
        harness.in_process(
            template_path, show_notification=notifications.show, ttl_sweep_seconds=86_400
        ) as system,
        InvocationClock().installed() as invocations,
    ):
        bench = BenchSystem(system, counter, invocations, notifications)
        bench.configure(RESULTS_HANDLER, {settings.RESULTS_READY_PROBABILITY.name: "1"})
        yield bench


def random_mode_template() -> Path:
    """The service synthesized with Lambda A in random mode (`entrix:auction_mode`), so its role
    may write the orders it makes up: switching a function's mode alone is refused under
    enforcement, as AWS would refuse it."""
    return ensure_template(project_root(), {"entrix:auction_mode": "random"})[0]


def unique_prefix(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:6]}"
