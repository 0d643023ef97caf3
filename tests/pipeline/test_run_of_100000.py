"""One run over 100,000 orders: the synthesized Distributed Map, under moto, past the old limits.

The inline Map this design replaced stopped at about 1,000 orders a run (256 KiB of state
payload, 25,000 history events). Here Lambda A (random mode, the real handler) stores 100,000
orders and writes their results as 100 batches of 1,000 to S3; the state machine's ItemReader
reads that 7 MB object and runs one child execution per batch; the summary adds them up. Lambda
B's AWS work is replaced by a count of what it was given (its real work is covered by the other
pipeline tests, and at 10,000 orders end to end by `make bench`), so this test takes seconds
instead of the half hour 200,000 local conditional writes would.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from entrix.auction.processing import BatchProcessor
from entrix.local import harness
from tests.pipeline.conftest import Pipeline, synthesize_pipeline

pytestmark = pytest.mark.slow

ORDERS = 100_000
BATCH = 1_000


@pytest.fixture(scope="module")
def pipeline_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Synthesized in random mode: Lambda A's role may write the orders it makes up (switching
    the mode on the function alone is refused, as AWS would refuse it)."""
    return synthesize_pipeline(tmp_path_factory.mktemp("cdk.out-random"), auction_mode="random")


def _configure_lambda_a(pipeline: Pipeline, variables: dict[str, str]) -> None:
    lambda_client = pipeline.client("lambda")
    (name,) = [
        name
        for name, spec in pipeline.deployment.functions.items()
        if spec.handler == "entrix.handlers.results.handler"
    ]
    harness.reconfigure(lambda_client, name, variables)


def test_one_run_takes_100000_orders_in_100_child_executions(pipeline: Pipeline) -> None:
    _configure_lambda_a(
        pipeline,
        {
            "AUCTION_MODE": "random",
            "RANDOM_ORDER_COUNT": str(ORDERS),
            "BATCH_MAX_ORDERS": str(BATCH),
        },
    )
    pipeline.script()  # ready, then every order accepted
    seen: Counter[str] = Counter()
    keys: set[str] = set()

    def count_only(
        processor: BatchProcessor, batch: Any, clock: float, remaining: float | None
    ) -> dict[str, int]:
        keys.add(batch.results_key)
        seen.update(order.order_key for order in batch.orders)
        statuses = Counter(order.status.value for order in batch.orders)
        return {
            "accepted": statuses["accepted"],
            "rejected": statuses["rejected"],
            "skipped": 0,
            "failed": 0,
        }

    pipeline.monkeypatch.setattr(BatchProcessor, "process", count_only)

    described = pipeline.run("run-100k")

    assert described["status"] == "SUCCEEDED", described
    summary = json.loads(described["output"])
    assert summary == {
        "orders": ORDERS,
        "accepted": ORDERS,
        "rejected": 0,
        "failed": 0,
        "skipped": 0,
        "batches": ORDERS // BATCH,
    }
    assert len(seen) == ORDERS and set(seen.values()) == {1}, "each order in one batch, once"
    assert len(keys) == ORDERS // BATCH
    s3 = pipeline.client("s3")
    (batches_object,) = s3.list_objects_v2(Bucket=pipeline.bucket, Prefix="batches/")["Contents"]
    assert batches_object["Size"] > 25 * 256 * 1024, "25 times what a state can carry"
