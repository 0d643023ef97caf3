"""A bounded load run against `entrix local`, then a check that no acknowledged order was lost.

Starts `entrix local` as its own process on free ports of 127.0.0.1 (`entrix.local.harness`;
traffic never leaves this machine, and no scheduled run starts during the load), sends `orders`
orders from `clients` threads, each with a keep-alive HTTP connection posting `batch_size` orders
per request, then scans the orders table through the embedded AWS endpoint and counts how many of
the orders acknowledged with a 201 are there. The run stops by itself: after the last order, or at
`time_limit_seconds`.
"""

from __future__ import annotations

import http.client
import json
import queue
import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.report import Row, ratio
from entrix.local.harness import in_subprocess, widen_client_shares

HOST = "127.0.0.1"


@dataclass
class _Client:
    """One load thread's results."""

    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)


def _send(
    port: int,
    token: str,
    batches: queue.Queue[list[dict[str, Any]]],
    deadline: float,
    out: _Client,
) -> None:
    """Post batches until none is left or time is up, on one keep-alive connection."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        while time.monotonic() < deadline:
            try:
                batch = batches.get_nowait()
            except queue.Empty:
                return
            body = json.dumps(batch)
            out.sent += len(batch)
            started = time.perf_counter()
            try:
                connection.request("POST", "/orders", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = str(response.status)
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                status = type(error).__name__
            out.latencies.append(time.perf_counter() - started)
            out.statuses[status] += 1
            if status == "201":
                out.acknowledged.extend(order["record_id"] for order in batch)
    finally:
        connection.close()


def _aws(aws_endpoint: str, service: str) -> Any:
    """A client of the local system's endpoint (which takes any credentials)."""
    import boto3

    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=aws_endpoint,
        region_name="eu-west-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _stored_ids(aws_endpoint: str, prefix: str) -> set[str]:
    """record_ids in the orders table that start with `prefix`, scanned through the endpoint."""
    dynamodb = _aws(aws_endpoint, "dynamodb")
    (table,) = [name for name in dynamodb.list_tables()["TableNames"] if "Orders" in name]
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table, ProjectionExpression="record_id"
    )
    return {
        item["record_id"]["S"]
        for page in pages
        for item in page["Items"]
        if item["record_id"]["S"].startswith(prefix)
    }


def run(
    orders: int = 10_000,
    clients: int = 6,
    batch_size: int = 25,
    time_limit_seconds: float = 300.0,
) -> dict[str, Any]:
    """Load `entrix local` and check every acknowledged order is stored; the figures as a dict.

    Throughput counts acknowledged orders over the sending time only (start-up and the final
    scan are excluded); latency is per request (one batch), client side, in milliseconds.
    """
    prefix = f"load-{uuid.uuid4().hex[:8]}-"
    batches: queue.Queue[list[dict[str, Any]]] = queue.Queue()
    for start in range(0, orders, batch_size):
        batches.put(
            [
                {"record_id": f"{prefix}{i}", "parameter_1": "load", "parameter_2": i + 0.25}
                for i in range(start, min(start + batch_size, orders))
            ]
        )
    with in_subprocess(schedule_seconds=86_400) as local:
        # One token stands for every client here: the per-client share would refuse the load.
        widen_client_shares(_aws(local.aws_endpoint, "lambda"), 10**6, 10**9)
        token = local.token()
        port = urlsplit(local.api_url).port
        assert urlsplit(local.api_url).hostname == HOST and port is not None
        results = [_Client() for _ in range(clients)]
        started = time.perf_counter()
        deadline = time.monotonic() + time_limit_seconds
        threads = [
            threading.Thread(target=_send, args=(port, token, batches, deadline, result))
            for result in results
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        stored = _stored_ids(local.aws_endpoint, prefix)

    latencies = sorted(latency for result in results for latency in result.latencies)
    acknowledged = {record_id for result in results for record_id in result.acknowledged}
    statuses: Counter[str] = sum((result.statuses for result in results), Counter())
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else []
    return {
        "orders": orders,
        "clients": clients,
        "batch_size": batch_size,
        "requests": len(latencies),
        "seconds": round(seconds, 2),
        "acknowledged": len(acknowledged),
        "found": len(acknowledged & stored),
        "lost": len(acknowledged - stored),
        "not_sent": orders - sum(result.sent for result in results),
        "errors": sum(count for status, count in statuses.items() if status != "201"),
        "statuses": dict(statuses),
        "orders_per_second": round(len(acknowledged) / seconds, 1),
        "requests_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(cuts[49] * 1000, 1) if cuts else None,
        "p99_ms": round(cuts[98] * 1000, 1) if cuts else None,
    }


def rows(**sizes: int) -> list[Row]:
    """10,000 orders from concurrent clients, then every acknowledged order looked up
    (`sizes`: `run`'s orders, clients and batch_size)."""
    figures = run(**sizes)
    return [
        Row(
            "load",
            f"{figures['orders']:,} orders, {figures['clients']} clients, "
            f"{figures['batch_size']} a POST: orders acknowledged (201) vs found in the table",
            f"{figures['found']:,} found",
            f"{figures['acknowledged']:,} acknowledged",
            ratio(figures["found"], figures["acknowledged"]),
            "1.00x, 0 lost",
        ),
        Row(
            "load",
            "throughput; request latency p50 / p99",
            f"{figures['orders_per_second']:,.0f} orders/s ({figures['requests_per_second']:.0f}"
            f" req/s); {figures['p50_ms']} / {figures['p99_ms']} ms",
            "",
            "",
            f"{figures['errors']} errors",
        ),
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
