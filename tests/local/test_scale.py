"""One pipeline run over thousands of orders under `entrix local`, checked order by order.

Lambda A's random mode makes up the orders (as the seed's did) and stores them as pending first;
small batches make the Distributed Map run several child executions. The 10,000-order version of
this run is a row of `make bench` (about a minute there); this one keeps `make test` quick.
"""

import json

import pytest

from entrix.handlers.results import SIMULATOR_OWNER
from tests.support.local_process import running_local

pytestmark = pytest.mark.e2e

ORDERS = 2_000
BATCH = 500


@pytest.fixture(scope="module")
def local():
    with running_local(schedule_seconds=86_400) as system:  # only the run this test starts
        yield system


def _stored_lines(local, execution):
    """Every JSON Lines document stored for the run, by record_id (each at most once)."""
    s3 = local.client("s3")
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    (bucket,) = [name for name in buckets if name.startswith("order-results-")]
    stored = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="results/"):
        for entry in page.get("Contents", []):
            if f"/run={execution}/" not in entry["Key"]:
                continue
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            for line in body.decode().splitlines():
                document = json.loads(line)
                assert document["record_id"] not in stored, document
                stored[document["record_id"]] = document
    return stored


def test_one_run_processes_thousands_of_random_orders_each_stored_or_alerted_once(local):
    local.configure_lambda_a(
        {
            "RESULTS_READY_PROBABILITY": "1",
            "AUCTION_MODE": "random",
            "RANDOM_ORDER_COUNT": str(ORDERS),
            "BATCH_MAX_ORDERS": str(BATCH),
        },
    )

    result = local.cli("pipeline", "run")

    summary = json.loads(result.stdout)
    assert result.returncode == 0, (summary, result.stderr)
    assert summary["status"] == "SUCCEEDED", summary
    assert summary["orders"] == ORDERS
    assert summary["batches"] == ORDERS // BATCH
    assert summary["failed"] == summary["skipped"] == 0
    assert summary["accepted"] + summary["rejected"] == ORDERS
    assert 0 < summary["accepted"] < ORDERS, "random results: both outcomes occur"

    stored = _stored_lines(local, summary["execution"])
    assert len(stored) == summary["accepted"]
    assert all(document["status"] == "accepted" for document in stored.values())
    assert {document["owner"] for document in stored.values()} == {SIMULATOR_OWNER}
    # "Order <record_id> of <owner> was rejected in auction run <run> (...)"
    rejections = [
        line.split("Order ", 1)[1].split(" was rejected", 1)[0].rsplit(" of ", 1)
        for line in local.lines
        if " was rejected in auction run " + summary["execution"] in line
    ]
    assert {owner for _, owner in rejections} == {SIMULATOR_OWNER}
    alerted = {record_id for record_id, _ in rejections}
    assert len(alerted) == summary["rejected"]
    assert all(record_id.startswith("random-") for record_id in alerted | set(stored))
    assert not alerted & set(stored), "an order is either stored or alerted"
