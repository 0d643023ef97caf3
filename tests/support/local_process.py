"""`entrix local` as a user runs it, for the end-to-end tests: the harness's subprocess with
what these tests read from it (the console's Slack messages, the extension's port) and do to it
(change Lambda A's settings).

The end-to-end tests (tests/local) start one with `running_local` and talk to it over HTTP, through
boto3 pointed at its AWS endpoint, and through the `entrix` command.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import boto3

from entrix.local import harness

RESULTS_HANDLER = "entrix.handlers.results.handler"


class LocalProcess(harness.LocalProcess):
    """`entrix local` in a subprocess (entrix.local.harness), with the tests' own reads."""

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

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name="eu-west-1",
            endpoint_url=f"http://127.0.0.1:{self.aws_port}",
            aws_access_key_id="e2e",
            aws_secret_access_key="e2e",
        )

    def configure_lambda_a(self, variables: dict[str, str]) -> None:
        """Change Lambda A's environment through the Lambda API, as a deploy would."""
        lambda_client = self.client("lambda")
        (name,) = [
            f["FunctionName"]
            for f in lambda_client.list_functions()["Functions"]
            if f["Handler"] == RESULTS_HANDLER
        ]
        harness.reconfigure(lambda_client, name, variables)


@contextlib.contextmanager
def running_local(
    schedule_seconds: float = 2, *, wide_shares: bool = False
) -> Iterator[LocalProcess]:
    """A started `entrix local`, stopped afterwards if it is still running. `wide_shares`: for
    tests about something else whose few desks together send more than a client's share
    (100 requests in 10 s), every client gets a share they cannot reach."""
    with harness.in_subprocess(schedule_seconds, LocalProcess) as system:
        assert isinstance(system, LocalProcess)
        if wide_shares:
            harness.widen_client_shares(system.client("lambda"), 10**6, 10**9)
        yield system
