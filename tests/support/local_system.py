"""The whole local system (`entrix local`) started in this process, for tests over real HTTP.

Handlers run in this process too (the local runtime invokes them in-process), so a test can
inject a fault into the very module that serves the API.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto.moto_api._internal import moto_api_backend

from entrix.aws import secrets
from entrix.local.commands import AUTHORIZER_HANDLER
from entrix.local.lambda_runner import applied_environment, runtime_environment
from entrix.local.runtime import LocalOptions, LocalSystem
from entrix.local.synth import STACK_NAME, ensure_template, project_root
from entrix.token_command import sign_for_function
from tests.moto_orders import table_items


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Running:
    system: LocalSystem
    token: str
    table: str

    @property
    def orders_url(self) -> str:
        return f"{self.system.api_url}/orders"

    def client(self, service: str) -> Any:
        return self.system.endpoint.client(service)

    def post(self, orders: Any, token: str | None = None) -> tuple[int, Any]:
        """POST a JSON body to /orders; the status and the parsed reply."""
        request = urllib.request.Request(
            self.orders_url,
            data=json.dumps(orders).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {token or self.token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def stored(self) -> dict[str, dict[str, Any]]:
        """Every item of the orders table by record_id (numbers as Decimal)."""
        return table_items(self.client("dynamodb"), self.table)


@contextlib.contextmanager
def local_system() -> Iterator[Running]:
    """`entrix local` on two free ports of 127.0.0.1, with no schedule; stopped afterwards.

    The runtime points this process's AWS SDK at its endpoint (os.environ); the environment is
    restored afterwards so that later tests' moto mocks are not sent to a stopped server.
    """
    saved_environment = dict(os.environ)
    # moto's backends are this process's globals: an earlier system's resources (same names,
    # same template) would make this deployment fail with "already exists".
    moto_api_backend.reset()
    # Secrets Manager clients are cached per process (entrix.aws.secrets): one made for an
    # earlier system or mock would still point at its endpoint.
    secrets._client.cache_clear()
    template_path, _ = ensure_template(project_root())
    system = LocalSystem(
        template_path,
        LocalOptions(
            host="127.0.0.1", port=free_port(), aws_port=free_port(), schedule_seconds=None
        ),
        show_run=lambda _: None,
        show_notification=lambda *_: None,
        stack_name=STACK_NAME,
    )
    try:
        system.start()
        deployment = system.deployment
        assert deployment is not None
        for spec in deployment.functions.values():
            # A handler imported earlier in this process holds clients and names from then.
            module = sys.modules.get(spec.handler.rpartition(".")[0])
            if module is not None:
                with applied_environment(runtime_environment(spec)):
                    importlib.reload(module)
        (authorizer,) = [
            name
            for name, spec in deployment.functions.items()
            if spec.handler == AUTHORIZER_HANDLER
        ]
        token = sign_for_function(
            lambda service, _region: system.endpoint.client(service),
            system.region,
            authorizer,
            "fault-tests",
            3600,
        )
        (table,) = deployment.tables
        yield Running(system=system, token=token, table=table)
    finally:
        system.stop()
        secrets._client.cache_clear()
        os.environ.clear()
        os.environ.update(saved_environment)
