"""What the local runtime's permission enforcement costs (entrix.local.iam.enforcement).

One in-process system, its enforcement switched off and on between measurements, so machine
noise hits both sides alike: POST /orders p50 alternating request by request, and a random-mode
run of 1,000 orders (Lambda A's writes, Lambda B's claims, stores and alerts) in the order on,
off, off, on. Verdicts are cached per request, so the first calls of each kind pay the simulator
and the rest only build their requests; the warmup takes the first ones.

The system is the service synthesized in random mode, whose Lambda A may write the orders it
makes up. Run alone: `.venv/bin/python -m bench.enforcement` (synthesizes it when stale).
"""

from __future__ import annotations

import statistics
import time

from bench.api_latency import ORDERS_PER_REQUEST, ApiClient
from bench.observed_system import BenchSystem, bench_system, random_mode_template
from bench.pipeline_scale import end_to_end_run
from bench.report import Row, ratio, render
from entrix.local import harness

ORDERS = 1_000


def _orders(prefix: str) -> list[dict[str, object]]:
    return [
        {"record_id": f"{prefix}-{i}", "parameter_1": "p", "parameter_2": 1.5}
        for i in range(ORDERS_PER_REQUEST)
    ]


def _enforcing(bench: BenchSystem, on: bool) -> None:
    enforcer = bench.system.enforcer
    assert enforcer is not None, "the bench system must start with enforcement on"
    if on:
        enforcer.start()
    else:
        enforcer.stop()


def post_p50(bench: BenchSystem, samples: int, warmup: int) -> tuple[float, float]:
    """POST /orders (10 orders) p50 in ms with and without enforcement, request by request."""
    client = ApiClient(bench.system.api_url, bench.token())
    times: dict[bool, list[float]] = {True: [], False: []}
    for index in range(warmup + samples):
        for on in (True, False):
            _enforcing(bench, on)
            start = time.perf_counter()
            status = client.post_orders(_orders(f"enforce-{on}-{index}"))
            elapsed = (time.perf_counter() - start) * 1000
            if status != 201:
                raise RuntimeError(
                    f"POST /orders answered {status} (enforcement {on}, request {index}): "
                    f"{client.last_body.decode(errors='replace')}"
                )
            if index >= warmup:
                times[on].append(elapsed)
    _enforcing(bench, True)
    return statistics.median(times[True]), statistics.median(times[False])


def run_seconds(bench: BenchSystem, orders: int) -> tuple[float, float]:
    """A random-mode run of `orders`, seconds with and without enforcement (mean of two each)."""
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for on in (True, False, False, True):
        _enforcing(bench, on)
        seconds[on].append(end_to_end_run(bench, orders).run.seconds)
    _enforcing(bench, True)
    return statistics.mean(seconds[True]), statistics.mean(seconds[False])


def rows(samples: int = 200, orders: int = ORDERS, warmup: int = 20) -> list[Row]:
    with bench_system(random_mode_template()) as bench:
        # One token stands for every client here: the per-client share would refuse the run.
        harness.widen_client_shares(bench.client("lambda"), 10**6, 10**9)
        on_ms, off_ms = post_p50(bench, samples, warmup)
        on_s, off_s = run_seconds(bench, orders)
        enforcer = bench.system.enforcer
        assert enforcer is not None
        asked = enforcer.simulator.requests
    return [
        Row(
            "enforcement",
            f"POST /orders (10 orders) p50, enforced vs not, alternating ({samples} each)",
            f"{on_ms:.1f} ms",
            f"{off_ms:.1f} ms",
            ratio(on_ms, off_ms),
            "reported",
        ),
        Row(
            "enforcement",
            f"random-mode run of {orders:,} orders, enforced vs not (mean of 2 each)",
            f"{on_s:.1f} s",
            f"{off_s:.1f} s",
            ratio(on_s, off_s),
            "reported",
        ),
        Row("enforcement", "requests the simulator decided (the rest from the cache)", str(asked)),
    ]


if __name__ == "__main__":
    print(render(rows()))
