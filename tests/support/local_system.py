"""The whole local system (`entrix local`) started in this process, for tests over real HTTP.

Handlers run in this process too (the local runtime invokes them in-process), so a test can
inject a fault into the very module that serves the API.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from entrix.local import harness
from entrix.local.runtime import LocalSystem
from tests.support.moto_orders import table_items


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
    """`entrix local` on two free ports of 127.0.0.1, with no schedule, and a valid token;
    stopped afterwards, the process left as it was (entrix.local.harness)."""
    with harness.in_process() as system:
        table = harness.orders_table(system)
        yield Running(system=system, token=harness.sign_token(system, "fault-tests"), table=table)
