"""Pipeline runs against the embedded endpoint: one now (`entrix pipeline run`) or on a schedule.

EventBridge schedules never fire in moto, so `Scheduler` starts the rule's target state machines
itself, every `--schedule-seconds`, with the input EventBridge sends (a "Scheduled Event") and a
unique execution name (moto names unnamed executions `...:None`, so a second one would clash).
Both paths start runs with `start_run`; `RunWatcher` reports every run that ended to the console
(and its log, for `entrix alerts`), however it was started, with `summarize`, as `entrix pipeline
run` prints its own.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from entrix.auction.outcomes import OUTCOMES
from entrix.local.periodic import Periodic

POLL_SECONDS = 0.2
# How often the console looks for runs that have ended.
WATCH_SECONDS = 1.0


class PipelineError(Exception):
    """No pipeline to run, or the run could not be followed; the message says why."""


def find_state_machine(sfn: Any) -> str:
    """The ARN of the one state machine of the local system."""
    machines = [
        m
        for page in sfn.get_paginator("list_state_machines").paginate()
        for m in page["stateMachines"]
    ]
    if not machines:
        raise PipelineError("no state machine at the endpoint: is `entrix local` running?")
    if len(machines) > 1:
        names = ", ".join(m["name"] for m in machines)
        raise PipelineError(f"more than one state machine ({names}); cannot tell which to run")
    return str(machines[0]["stateMachineArn"])


def scheduled_event(region: str, account_id: str, rule_arn: str | None) -> dict[str, Any]:
    """The input EventBridge gives a state machine target of a schedule rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn] if rule_arn else [],
        "detail": {},
    }


def start_run(sfn: Any, state_machine_arn: str, run_input: Any, prefix: str) -> str:
    """Start an execution with a unique name; returns its ARN."""
    name = f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    started = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(run_input)
    )
    return str(started["executionArn"])


def summarize(execution: dict[str, Any]) -> dict[str, Any]:
    """Execution name and status plus the counts of its output (the outcomes always, 0 when
    absent, and any other count the state machine reports)."""
    summary: dict[str, Any] = {"execution": execution["name"], "status": execution["status"]}
    output: Any = None
    if execution.get("output"):
        try:
            output = json.loads(execution["output"])
        except ValueError:
            output = None
    counts = output if isinstance(output, dict) else {}
    for outcome in OUTCOMES:
        summary[outcome] = 0
    for name, value in counts.items():
        if isinstance(value, int) and not isinstance(value, bool):
            summary[name] = value
    if execution["status"] != "SUCCEEDED":
        summary["error"] = execution.get("error")
        summary["cause"] = readable_cause(execution.get("cause"))
    return summary


def readable_cause(cause: str | None) -> str | None:
    """A failed execution's cause for a person: a Lambda error payload (a JSON object with a
    stack trace) as its `errorMessage` alone, anything else as it is."""
    try:
        payload = json.loads(cause or "")
    except ValueError:
        return cause
    if isinstance(payload, dict) and isinstance(payload.get("errorMessage"), str):
        return str(payload["errorMessage"])
    return cause


def wait_for_execution(
    sfn: Any,
    execution_arn: str,
    timeout_seconds: float = 900,
    stop: threading.Event | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> dict[str, Any]:
    """Poll until the execution is no longer RUNNING; its description then."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        execution = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return dict(execution)
        if time.monotonic() > deadline:
            raise PipelineError(f"{execution['name']} still running after {timeout_seconds:.0f} s")
        if stop is not None and stop.is_set():
            raise PipelineError(f"{execution['name']} left running: stopping")
        time.sleep(poll_seconds)


def wait_for_summary(
    sfn: Any,
    execution_arn: str,
    timeout_seconds: float = 900,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Poll until the execution ends, then summarize it."""
    return summarize(wait_for_execution(sfn, execution_arn, timeout_seconds, stop))


class Scheduler(Periodic):
    """Starts each scheduled target every `interval` seconds; `report` hears of a run that could
    not be started (a RunWatcher reports the runs themselves).

    Runs may overlap, as EventBridge's would.
    """

    def __init__(
        self,
        sfn: Any,
        targets: Sequence[tuple[str, str | None]],  # (state machine ARN, rule ARN)
        interval: float,
        report: Callable[[dict[str, Any]], None],
        *,
        region: str,
        account_id: str,
    ) -> None:
        super().__init__("scheduler", interval)
        self.sfn = sfn
        self.targets = targets
        self.report = report
        self.region = region
        self.account_id = account_id

    def tick(self) -> None:
        for state_machine_arn, rule_arn in self.targets:
            try:
                event = scheduled_event(self.region, self.account_id, rule_arn)
                start_run(self.sfn, state_machine_arn, event, "scheduled")
            except Exception as error:  # noqa: BLE001 - a failed start must not end the schedule
                if not self._stop.is_set():
                    self.report({"status": "ERROR", "error": f"{type(error).__name__}: {error}"})


class RunWatcher(Periodic):
    """Reports the summary of every run of the state machines once it has ended: scheduled
    runs, `entrix pipeline run` from another process, any run started through the endpoint."""

    def __init__(
        self,
        sfn: Any,
        state_machine_arns: Sequence[str],
        report: Callable[[dict[str, Any]], None],
        interval: float = WATCH_SECONDS,
    ) -> None:
        super().__init__("runs", interval)
        self.sfn = sfn
        self.state_machine_arns = state_machine_arns
        self.report = report
        self._reported: set[str] = set()

    def tick(self) -> None:
        for state_machine_arn in self.state_machine_arns:
            try:
                # Newest first; a run ends long before 100 newer ones have started.
                listed = self.sfn.list_executions(
                    stateMachineArn=state_machine_arn, maxResults=100
                )["executions"]
                ended = [
                    execution["executionArn"]
                    for execution in reversed(listed)
                    if execution["status"] != "RUNNING"
                    and execution["executionArn"] not in self._reported
                ]
                for execution_arn in ended:
                    summary = summarize(self.sfn.describe_execution(executionArn=execution_arn))
                    self._reported.add(execution_arn)
                    self.report(summary)
            except (BotoCoreError, ClientError):
                return  # the endpoint is going away, or a blip: the next tick looks again
