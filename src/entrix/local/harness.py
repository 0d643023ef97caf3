"""`entrix local` started for the benchmarks and the tests: inside the calling process
(`in_process`), or as a user runs it, in a process of its own (`in_subprocess`).

In process, handlers run in the caller's process too, so a caller can count the system's AWS
requests, time its invocations or inject a fault into the very module that serves the API. A
process keeps state that a new system must not inherit: moto's backends (the same template's
resources would "already exist"), cached Secrets Manager clients and handler modules imported
earlier (their clients and names are from then). `in_process` resets all three, and restores
the process environment, which the runtime points at its endpoint, when the system stops.

As a subprocess, the system is what a user gets from `entrix local`: its console is collected
line by line, and its startup is timed from spawn to the console's ready line.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from moto.moto_api._internal import moto_api_backend

from entrix import settings
from entrix.aws import secrets
from entrix.local.deploy import Deployment
from entrix.local.endpoint import free_port
from entrix.local.lambda_runner import applied_environment, runtime_environment
from entrix.local.runtime import TTL_SWEEP_SECONDS, LocalOptions, LocalSystem
from entrix.local.synth import STACK_NAME, ensure_template, project_root
from entrix.token_command import AUTHORIZER_HANDLER, sign_for_function

HOST = "127.0.0.1"
TOKEN_SECONDS = 3600
# `entrix local` prints this when every part serves (entrix.local.commands).
READY_LINE = "Ctrl-C stops everything."
# Up to a CDK synth when the template is stale, on a busy 2-core machine.
STARTUP_LIMIT_SECONDS = 240
STOP_LIMIT_SECONDS = 30


@contextlib.contextmanager
def in_process(
    template_path: Path | None = None,
    *,
    stack_name: str = STACK_NAME,
    show_notification: Callable[[str, str], None] = lambda _topic, _text: None,
    ttl_sweep_seconds: float = TTL_SWEEP_SECONDS,
) -> Iterator[LocalSystem]:
    """The system from `template_path` (default: the project's, synthesized when stale),
    deployed as `stack_name` (a stage's copy is named `Dev-Entrix`), on two free ports of
    127.0.0.1, with no schedule (the caller starts each run); stopped afterwards."""
    saved_environment = dict(os.environ)
    moto_api_backend.reset()
    secrets._client.cache_clear()
    if template_path is None:
        template_path, _ = ensure_template(project_root())
    options = LocalOptions(
        host=HOST,
        port=free_port(HOST),
        aws_port=free_port(HOST),
        schedule_seconds=None,
        ttl_sweep_seconds=ttl_sweep_seconds,
    )
    system = LocalSystem(
        template_path,
        options,
        show_run=lambda _summary: None,
        show_notification=show_notification,
        stack_name=stack_name,
    )
    try:
        system.start()
        for spec in deployment_of(system).functions.values():
            module = sys.modules.get(spec.handler.rpartition(".")[0])
            if module is not None:
                with applied_environment(runtime_environment(spec)):
                    importlib.reload(module)
        yield system
    finally:
        try:
            system.stop()
        finally:
            secrets._client.cache_clear()
            os.environ.clear()
            os.environ.update(saved_environment)


def deployment_of(system: LocalSystem) -> Deployment:
    """What a started system deployed."""
    if system.deployment is None:
        raise RuntimeError("the local system is not started")
    return system.deployment


def orders_table(system: LocalSystem) -> str:
    """The orders table of a started service (the other table counts clients' usage)."""
    name = deployment_of(system).table_named_by(settings.ORDERS_TABLE_NAME.name)
    if name is None:
        raise RuntimeError("no function names an orders table")
    return name


def widen_client_shares(lambda_client: Any, rate_limit: int, daily_orders: int) -> None:
    """Give every client the share of `rate_limit` requests per window and `daily_orders`
    orders per day, through the Lambda API as a deploy would (`reconfigure`): for a load that
    stands for many clients but signs as one (the benchmarks, Schemathesis). Call it before the
    first API request: a function reads its limits once."""
    for function in lambda_client.list_functions()["Functions"]:
        variables = function.get("Environment", {}).get("Variables", {})
        if settings.CLIENT_RATE_LIMIT.name not in variables:
            continue
        reconfigure(
            lambda_client,
            function["FunctionName"],
            {
                settings.CLIENT_RATE_LIMIT.name: str(rate_limit),
                settings.CLIENT_DAILY_ORDER_QUOTA.name: str(daily_orders),
            },
        )


def reconfigure(lambda_client: Any, name: str, variables: dict[str, str]) -> None:
    """Set `variables` in the function's environment as a deploy would: on a new version that
    every alias of the function then points at, since callers invoke an alias, not $LATEST."""
    current = lambda_client.get_function_configuration(FunctionName=name)
    lambda_client.update_function_configuration(
        FunctionName=name,
        Environment={
            "Variables": {**current.get("Environment", {}).get("Variables", {}), **variables}
        },
    )
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    for alias in lambda_client.list_aliases(FunctionName=name)["Aliases"]:
        lambda_client.update_alias(FunctionName=name, Name=alias["Name"], FunctionVersion=version)


def function_with_handler(system: LocalSystem, handler: str) -> str:
    """The name of the deployed function whose handler is `handler` (there must be one)."""
    (name,) = [
        name for name, spec in deployment_of(system).functions.items() if spec.handler == handler
    ]
    return name


def sign_token(
    system: LocalSystem, subject: str, client: Callable[[str], Any] | None = None
) -> str:
    """A token the deployed authorizer accepts, as `entrix token` signs it; `client(service)`
    makes the clients that read its configuration and secret (default: the endpoint's)."""
    make_client = client or system.endpoint.client
    return sign_for_function(
        lambda service, _region: make_client(service),
        system.region,
        function_with_handler(system, AUTHORIZER_HANDLER),
        subject,
        TOKEN_SECONDS,
    )


class LocalProcess:
    """`entrix local` in a process of its own, on free ports, its console lines collected."""

    def __init__(self, schedule_seconds: float) -> None:
        self.port = free_port()
        self.aws_port = free_port()
        self.api_url = f"http://{HOST}:{self.port}"
        self.aws_endpoint = f"http://{HOST}:{self.aws_port}"
        self.root = project_root()
        self.lines: list[str] = []
        self._startup_seconds: float | None = None
        self._ready = threading.Event()
        # faulthandler: a process that hangs is sent SIGABRT and prints where its threads are.
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
        self._started = time.perf_counter()
        ports = ["--port", str(self.port), "--aws-port", str(self.aws_port)]
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [*self._entrix(), "local", *ports, "--schedule-seconds", str(schedule_seconds)],
            cwd=self.root,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    @staticmethod
    def _entrix() -> list[str]:
        return [sys.executable, "-m", "entrix.cli"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if READY_LINE in line and not self._ready.is_set():
                self._startup_seconds = time.perf_counter() - self._started
                self._ready.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def startup_seconds(self) -> float:
        """From spawn to the console's ready line."""
        if self._startup_seconds is None:
            raise RuntimeError("entrix local has not said it is ready")
        return self._startup_seconds

    def wait_ready(self) -> None:
        """Until the console says every part serves; RuntimeError with the console if it exits
        or takes longer than STARTUP_LIMIT_SECONDS."""
        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        while not self._ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"entrix local did not start:\n{self.output}")

    def stop(self) -> int:
        """SIGINT, as Ctrl-C; the exit code. A process still running after STOP_LIMIT_SECONDS is
        sent SIGABRT (its threads' stacks go to the console) and RuntimeError shows the console."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=STOP_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)
            self.process.wait(timeout=STOP_LIMIT_SECONDS)
            time.sleep(0.5)  # the reader thread takes the last lines
            raise RuntimeError(
                f"entrix local did not stop on SIGINT:\n{self.output[-6000:]}"
            ) from None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """An `entrix` command against this system's AWS endpoint."""
        return subprocess.run(  # noqa: S603 - this interpreter, the caller's arguments
            [*self._entrix(), *args, "--aws-port", str(self.aws_port)],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def token(self) -> str:
        """A token the system's authorizer accepts, signed by `entrix token`."""
        signed = self.cli("token")
        if signed.returncode != 0:
            raise RuntimeError(f"entrix token failed: {signed.stderr}")
        return signed.stdout.strip()


@contextlib.contextmanager
def in_subprocess(
    schedule_seconds: float, process_type: type[LocalProcess] = LocalProcess
) -> Iterator[LocalProcess]:
    """A started `entrix local` of `process_type`, stopped afterwards if it still runs."""
    system = process_type(schedule_seconds)
    try:
        system.wait_ready()
        yield system
    except BaseException as error:
        _stop_if_running(system, cause=error)
        raise
    _stop_if_running(system)


def _stop_if_running(system: LocalProcess, cause: BaseException | None = None) -> None:
    """Stop `system` if it still runs; a failure to stop names `cause`, the error that ended
    the block, rather than hiding it."""
    if system.process.poll() is None:
        try:
            system.stop()
        except RuntimeError as error:
            raise error from cause
