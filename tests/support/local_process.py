"""`entrix local` as a user runs it: a real process on free ports, its console collected.

The end-to-end tests (tests/local) start one with `running_local` and talk to it over HTTP, through
boto3 pointed at its AWS endpoint, and through the `entrix` command.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3

from entrix.local.endpoint import free_port

ROOT = Path(__file__).resolve().parents[2]
ENTRIX = [sys.executable, "-m", "entrix.cli"]
STARTUP_SECONDS = 240  # includes a CDK synth when the template is stale
RESULTS_HANDLER = "entrix.handlers.results.handler"


class LocalProcess:
    """`entrix local` in a subprocess, its console lines collected as they come."""

    def __init__(self, schedule_seconds: float = 2) -> None:
        self.port = free_port()
        self.aws_port = free_port()
        # faulthandler: a process that hangs is sent SIGABRT and prints where its threads are
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
        self.process = subprocess.Popen(
            [
                *ENTRIX,
                "local",
                "--port",
                str(self.port),
                "--aws-port",
                str(self.aws_port),
                "--schedule-seconds",
                str(schedule_seconds),
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if "Ctrl-C stops everything." in line:
                self.ready.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"entrix local did not start:\n{self.output}")

    def slack_text(self) -> str:
        """The console's Slack-style messages: `[slack #topic] ...` and their indented lines."""
        blocks, inside = [], False
        for line in list(self.lines):
            if line.startswith("[slack"):
                inside = True
            elif not line.startswith("    "):
                inside = False
            if inside:
                blocks.append(line)
        return "\n".join(blocks)

    def extension_port(self) -> int:
        """The local Parameters and Secrets Extension's port, from the console's banner."""
        found = re.search(
            r"secrets extension +http://127\.0\.0\.1:(\d+)/secretsmanager/get", self.output
        )
        assert found, self.output
        return int(found.group(1))

    def stop(self) -> int:
        """SIGINT, as Ctrl-C; the exit code, or a failure showing where a hung process is."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)
            self.process.wait(timeout=30)
            time.sleep(0.5)
            raise AssertionError(
                f"entrix local did not stop on SIGINT:\n{self.output[-6000:]}"
            ) from None

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name="eu-west-1",
            endpoint_url=f"http://127.0.0.1:{self.aws_port}",
            aws_access_key_id="e2e",
            aws_secret_access_key="e2e",
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*ENTRIX, *args, "--aws-port", str(self.aws_port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def configure_lambda_a(self, variables: dict[str, str]) -> None:
        """Change Lambda A's environment through the Lambda API, as an operator would."""
        lambda_client = self.client("lambda")
        (name,) = [
            f["FunctionName"]
            for f in lambda_client.list_functions()["Functions"]
            if f["Handler"] == RESULTS_HANDLER
        ]
        current = lambda_client.get_function_configuration(FunctionName=name)["Environment"]
        lambda_client.update_function_configuration(
            FunctionName=name, Environment={"Variables": {**current["Variables"], **variables}}
        )


@contextlib.contextmanager
def running_local(schedule_seconds: float = 2) -> Iterator[LocalProcess]:
    """A started `entrix local`, stopped afterwards if it is still running."""
    system = LocalProcess(schedule_seconds)
    try:
        system.wait_ready()
        yield system
    finally:
        if system.process.poll() is None:
            system.stop()
