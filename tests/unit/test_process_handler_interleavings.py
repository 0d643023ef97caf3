"""Two runs working on one order, their steps interleaved every way: one result, one writer.

Lambda B's accepted path is three steps (claim, write the object, record) and its rejected path
one (record). Runs overlap, so any interleaving of two runs' steps can happen; whatever the order,
exactly one run's result is recorded, and only that run ever writes the result object.
"""

from __future__ import annotations

import time

import boto3
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from entrix.auction.results import result_document, result_key
from entrix.aws.order_results import OrderResults
from entrix.aws.results_store import ResultsStore
from tests.unit.test_results_handler import INDEX, TABLE, create_orders_table, put_order

BUCKET = "interleavings"
LEASE_SECONDS = 1800


def _steps(status: str) -> list[str]:
    return ["claim", "put", "record"] if status == "accepted" else ["record"]


@settings(max_examples=40, deadline=None)
@given(
    statuses=st.tuples(
        st.sampled_from(["accepted", "rejected"]), st.sampled_from(["accepted", "rejected"])
    ),
    schedule=st.lists(st.sampled_from([0, 1]), min_size=6, max_size=6),
)
def test_any_interleaving_of_two_runs_records_one_result_written_by_its_run(
    statuses: tuple[str, str], schedule: list[int]
) -> None:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        s3 = boto3.client("s3", region_name="eu-west-1")
        create_orders_table(dynamodb)
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        put_order(dynamodb, "a")
        orders = OrderResults(dynamodb, TABLE, INDEX)
        store = ResultsStore(s3, BUCKET)
        now = int(time.time())

        runs = [f"run-{index}" for index in (0, 1)]
        remaining = [_steps(status) for status in statuses]
        claimed: dict[int, dict] = {}
        recorded: list[int] = []
        writers: list[str] = []
        for index in [*schedule, 0, 0, 0, 1, 1, 1]:
            if not remaining[index]:
                continue
            step = remaining[index].pop(0)
            if step == "claim":
                item = orders.claim("a", runs[index], now, LEASE_SECONDS)
                if item is None:
                    remaining[index] = []  # skipped: another run has it
                    continue
                claimed[index] = {
                    **item,
                    "power": 7,
                    "result_run_id": runs[index],
                    "result_at": f"t{index}",
                }
            elif step == "put":
                store.put(result_key("a"), result_document(claimed[index]))
                writers.append(runs[index])
            elif orders.record("a", runs[index], now, statuses[index], 7, f"t{index}"):
                recorded.append(index)

        assert len(recorded) == 1, "exactly one run records the result"
        (winner,) = recorded
        item = dynamodb.get_item(TableName=TABLE, Key={"record_id": {"S": "a"}})["Item"]
        assert item["result_run_id"]["S"] == runs[winner]
        assert item["result_status"]["S"] == statuses[winner]
        assert set(writers) <= {runs[winner]}, "only the recording run wrote the object"
        stored = s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0)
        assert stored == (1 if statuses[winner] == "accepted" else 0)
