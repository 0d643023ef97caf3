"""POST /orders through the local API against a raw BatchWriteItem to the embedded endpoint.

Both carry 10 orders and are measured interleaved in one run, so machine noise hits both
alike; the ratio is the cost of the API emulation, the authorizer and the ingest handler.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import boto3

from bench.report import Row, ratio
from entrix.local.harness import in_subprocess, widen_client_shares
from entrix.orders import lifecycle
from entrix.orders.limits import TTL_SECONDS
from entrix.timestamps import iso_milliseconds

ORDERS_PER_REQUEST = 10
RAW_OWNER = "bench-raw"  # the raw writes' owner, not the API's caller: no key is shared


def _typed(item: dict[str, Any]) -> dict[str, dict[str, str]]:
    """A DynamoDB item of strings and numbers in the low-level client's attribute values."""
    return {
        name: {"S": value} if isinstance(value, str) else {"N": str(value)}
        for name, value in item.items()
    }


@dataclass(frozen=True)
class LatencyFigures:
    post_p50_ms: float
    post_p99_ms: float
    raw_p50_ms: float
    raw_p99_ms: float
    concurrent_clients: int
    concurrent_requests: int
    concurrent_errors: int
    concurrent_requests_per_second: float


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _orders(prefix: str) -> list[dict[str, object]]:
    return [
        {"record_id": f"{prefix}-{i}", "parameter_1": "bench", "parameter_2": i + 0.5}
        for i in range(ORDERS_PER_REQUEST)
    ]


class ApiClient:
    """One keep-alive connection, as a trader's system would hold."""

    def __init__(self, api_url: str, token: str) -> None:
        parts = urlsplit(api_url)
        self.connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=30
        )
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.last_body = b""

    def post_orders(self, orders: list[dict[str, object]]) -> int:
        """The answer's status; its body is kept in `last_body` (to say why when it is not 201)."""
        self.connection.request("POST", "/orders", json.dumps(orders), self.headers)
        response = self.connection.getresponse()
        self.last_body = response.read()
        return response.status


def _aws(endpoint: str, service: str) -> Any:
    """A client of the local system's AWS endpoint (which takes any credentials)."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def measure(
    api_url: str,
    aws_endpoint: str,
    token: str,
    samples: int = 300,
    *,
    warmup: int = 20,
    clients: int = 4,
    per_client: int = 100,
) -> LatencyFigures:
    """`samples` POSTs interleaved with raw writes (after `warmup` of each, not counted), then
    `clients` concurrent clients posting `per_client` requests each."""
    dynamodb: Any = _aws(aws_endpoint, "dynamodb")
    table = next(name for name in dynamodb.list_tables()["TableNames"] if "Orders" in name)
    client = ApiClient(api_url, token)

    def raw_write(prefix: str) -> None:
        """The orders' items as the API would store them (keys, both indexes' attributes),
        written with one unconditional BatchWriteItem."""
        received = time.time()
        received_at = iso_milliseconds(received)
        nonce = lifecycle.request_nonce()
        items = [
            {"PutRequest": {"Item": _typed(item)}}
            for item in (
                lifecycle.stored_item(
                    {**order, "parameter_2": Decimal(str(order["parameter_2"]))},
                    RAW_OWNER,
                    received_at,
                    int(received) + TTL_SECONDS,
                    lifecycle.version(received_at, nonce, position),
                )
                for position, order in enumerate(_orders(prefix))
            )
        ]
        dynamodb.batch_write_item(RequestItems={table: items})

    post_ms: list[float] = []
    raw_ms: list[float] = []
    for index in range(samples + warmup):
        prefix = f"latency-{index}-{uuid.uuid4().hex[:8]}"
        start = time.perf_counter()
        status = client.post_orders(_orders(prefix))
        middle = time.perf_counter()
        raw_write(f"raw-{prefix}")
        end = time.perf_counter()
        if status != 201:
            raise RuntimeError(f"POST /orders answered {status} during the latency run")
        if index >= warmup:  # the first requests warm connections and caches
            post_ms.append((middle - start) * 1000)
            raw_ms.append((end - middle) * 1000)

    errors = 0
    lock = threading.Lock()

    def hammer(worker: int) -> None:
        nonlocal errors
        own = ApiClient(api_url, token)
        for index in range(per_client):
            try:
                status = own.post_orders(_orders(f"concurrent-{worker}-{index}"))
            except OSError:
                status = 0
            if status != 201:
                with lock:
                    errors += 1

    threads = [threading.Thread(target=hammer, args=(worker,)) for worker in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start

    return LatencyFigures(
        post_p50_ms=statistics.median(post_ms),
        post_p99_ms=_percentile(post_ms, 0.99),
        raw_p50_ms=statistics.median(raw_ms),
        raw_p99_ms=_percentile(raw_ms, 0.99),
        concurrent_clients=clients,
        concurrent_requests=clients * per_client,
        concurrent_errors=errors,
        concurrent_requests_per_second=clients * per_client / elapsed,
    )


def rows(samples: int, **sizes: int) -> list[Row]:
    """`entrix local` started as a user starts it: its startup time, and the figures above
    (`sizes`: `measure`'s warmup, clients and per_client)."""
    with in_subprocess(schedule_seconds=86_400) as system:
        # One token stands for every client here: the per-client share would refuse the run.
        widen_client_shares(_aws(system.aws_endpoint, "lambda"), 10**6, 10**9)
        figures = measure(system.api_url, system.aws_endpoint, system.token(), samples, **sizes)
        startup = system.startup_seconds
    return [
        Row("local", "entrix local: spawn to serving", f"{startup:.1f} s", "", "", "<= 30 s"),
        Row(
            "local API",
            "POST /orders (10 orders) p50",
            f"{figures.post_p50_ms:.1f} ms",
            f"{figures.raw_p50_ms:.1f} ms (raw BatchWriteItem of 10)",
            ratio(figures.post_p50_ms, figures.raw_p50_ms),
            "<= 3x",
        ),
        Row(
            "local API",
            "POST /orders (10 orders) p99",
            f"{figures.post_p99_ms:.1f} ms",
            f"{figures.raw_p99_ms:.1f} ms (raw BatchWriteItem of 10)",
            ratio(figures.post_p99_ms, figures.raw_p99_ms),
            "reported",
        ),
        Row(
            "local API",
            f"{figures.concurrent_clients} concurrent clients, {figures.concurrent_requests} POSTs",
            f"{figures.concurrent_requests_per_second:.0f} req/s, "
            f"{figures.concurrent_errors} errors",
            "",
            "",
            "0 errors",
        ),
    ]
