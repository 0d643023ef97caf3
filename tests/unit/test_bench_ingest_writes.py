"""The ingest rows' arithmetic (bench/ingest_writes.py): write units as DynamoDB bills them, the
write path before issue 17 (bench/baselines/batch_write.py), and the ingest in the cost rows."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bench import aws_cost
from bench.aws_requests import Call
from bench.baselines import batch_write
from bench.ingest_writes import (
    IngestFigures,
    PathFigures,
    RequestCount,
    Write,
    WriteUnits,
    attribute_size,
    item_size,
    orders,
    our_items,
    rows,
    template_indexes,
)
from bench.observed_system import PROCESS_HANDLER, RESULTS_HANDLER, Invoked, Run

OURS_INDEXES = (
    ("pending-results", "pending_shard", "version"),
    ("owner-orders", "owner_shard", "version"),
)


def test_sizes_are_dynamodb_s_name_and_value_bytes() -> None:
    assert attribute_size("record_id", "é1") == 9 + 3
    assert attribute_size("n", Decimal("10.25")) == 1 + 2 + 1  # 4 digits: 2 bytes, plus 1
    assert attribute_size("n", 0) == 1 + 1 + 1
    assert item_size({"a": "xy", "b": 7}) == 3 + 3


def test_a_new_order_costs_its_item_and_one_entry_in_each_index_it_has_keys_for() -> None:
    (item,) = our_items(orders("o", 1), 1_800_000_000.0)
    units = WriteUnits()

    units.put(None, item, OURS_INDEXES)

    assert units.units == Counter({"table": 1, "pending-results": 1, "owner-orders": 1})


def test_a_put_refused_by_its_condition_costs_the_item_s_units_and_no_index_write() -> None:
    (old,) = our_items(orders("o", 1), 1_800_000_000.0)
    (new,) = our_items(orders("o", 1), 1_800_000_100.0)
    units = WriteUnits()

    units.put(old, new, OURS_INDEXES, written=False)

    assert units.units == Counter({"table": 1})


def test_a_put_that_changes_an_index_key_moves_the_entry_and_one_that_drops_it_removes_it() -> None:
    (old,) = our_items(orders("o", 1), 1_800_000_000.0)
    (amended,) = our_items(orders("o", 1), 1_800_000_100.0)  # a new version
    recorded = {name: value for name, value in old.items() if name != "pending_shard"}
    units = WriteUnits()

    units.put(old, amended, OURS_INDEXES)
    assert units.units == Counter({"table": 1, "pending-results": 2, "owner-orders": 2})
    units = WriteUnits()
    units.put(old, recorded, OURS_INDEXES)
    assert units.units == Counter({"table": 1, "pending-results": 1})


def test_an_item_over_a_kilobyte_costs_a_unit_per_kilobyte_started() -> None:
    units = WriteUnits()
    units.put({"k": "x" * 1500}, {"k": "x"}, ())
    assert units.units["table"] == 2


def test_the_baseline_s_items_are_in_its_one_index_and_an_identical_resend_moves_the_entry() -> (
    None
):
    sent = orders("o", 1)
    first = batch_write.stored_item(sent[0], "bench#o-0000", "2026-12-06T10:00:00.000Z", 1)
    again = batch_write.stored_item(sent[0], "bench#o-0000", "2026-12-06T10:00:01.000Z", 1)
    units = WriteUnits()

    units.put(None, first, batch_write.INDEXES)
    assert units.units == Counter({"table": 1, "pending-results": 1})
    units = WriteUnits()
    units.put(first, again, batch_write.INDEXES)
    assert units.units == Counter({"table": 1, "pending-results": 2})


@mock_aws
def test_the_baseline_writes_25_orders_a_batch_and_every_request_is_counted() -> None:
    client = boto3.client("dynamodb", region_name="eu-west-1")
    client.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "order_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "order_key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    count = RequestCount(client)
    items = [
        batch_write.stored_item(order, f"bench#{order['record_id']}", "2026-12-06T10:00:00Z", 1)
        for order in orders("o", 60)
    ]

    assert batch_write.put_items(client, "orders", items) == 0

    assert count.sent == Counter({"BatchWriteItem": 3})
    assert client.scan(TableName="orders", Select="COUNT")["Count"] == 60
    stored = client.get_item(TableName="orders", Key={"order_key": {"S": "bench#o-0001"}})
    assert stored["Item"]["parameter_2"] == {"N": "10.5"}


def test_the_indexes_are_read_from_the_template(tmp_path: Path) -> None:
    def index(name: str, hash_key: str, projection: str = "KEYS_ONLY") -> dict[str, Any]:
        return {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": "version", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": projection},
        }

    def template(*indexes: dict[str, Any]) -> Path:
        path = tmp_path / "template.json"
        table = {"Type": "AWS::DynamoDB::Table", "Properties": {"GlobalSecondaryIndexes": indexes}}
        path.write_text(json.dumps({"Resources": {"Orders": table, "Other": {"Type": "X"}}}))
        return path

    found = template_indexes(template(index("a", "pending_shard"), index("b", "owner_shard")))
    assert found == (("a", "pending_shard", "version"), ("b", "owner_shard", "version"))
    with pytest.raises(ValueError, match="projects more than keys"):
        template_indexes(template(index("a", "pending_shard", "ALL")))


def _write(requests: dict[str, int], units: dict[str, int], outcomes: dict[str, int]) -> Write:
    return Write([], Counter(requests), WriteUnits(Counter(units)), Counter(outcomes), 0.1)


FIGURES = IngestFigures(
    orders=1_000,
    ours=PathFigures(
        first=_write(
            {"PutItem": 1_000},
            {"table": 1_000, "pending-results": 1_000, "owner-orders": 1_000},
            {"created": 1_000},
        ),
        resend=_write({"PutItem": 1_000}, {"table": 1_000}, {"unchanged": 1_000}),
        seconds=[3.0, 1.0, 2.0],
    ),
    baseline=PathFigures(
        first=_write(
            {"BatchWriteItem": 40}, {"table": 1_000, "pending-results": 1_000}, {"written": 1_000}
        ),
        resend=_write(
            {"BatchWriteItem": 40}, {"table": 1_000, "pending-results": 2_000}, {"written": 1_000}
        ),
        seconds=[0.5, 0.25, 1.0],
    ),
    post_seconds=[4.0, 5.0, 6.0],
)


def test_ours_adds_the_owner_index_entry_and_both_spend_the_item_and_its_pending_entry() -> None:
    assert FIGURES.added_write_units() == {"owner-orders": 1.0}
    assert FIGURES.cost_inputs() == aws_cost.IngestWrites({"owner-orders": 1.0}, 2.0)


def test_the_ingest_rows() -> None:
    table = {row.metric.split(" (")[0]: row for row in rows(FIGURES)}

    requests = table["DynamoDB requests for a 1,000-order POST"]
    assert (requests.value, requests.ratio) == ("1,000 PutItem", "25.00x")
    units = table["DynamoDB write units for 1,000 new orders"]
    assert units.value == "3,000 (owner-orders 1,000, pending-results 1,000, table 1,000)"
    assert units.baseline == "2,000 (pending-results 1,000, table 1,000)"
    assert units.goal == "<= +1 an order: met (+1.00: owner-orders)"
    resent = table["DynamoDB write units for the same 1,000 orders sent again, identical"]
    assert (resent.value, resent.ratio) == ("1,000 (table 1,000)", "0.33x")
    p50 = table["writing 1,000 new orders, local p50 of 3 each, alternating"]
    assert (p50.value, p50.ratio) == ("2,000 ms", "4.00x")
    post = table["POST /orders of 1,000 orders through the local API"]
    assert post.value == "5,000 ms"


def _run() -> Run:
    calls = Counter(
        {
            Call("ak", "lambda", "Invoke", target="Results"): 1,
            Call("ak", "lambda", "Invoke", target="Process"): 1,
            Call("entrix-local", "dynamodb", "UpdateItem"): 2_000,
        }
    )
    return Run(
        orders_pending=1_000,
        left_pending=0,
        seconds=10.0,
        summary={"accepted": 500, "rejected": 500, "failed": 0, "status": "SUCCEEDED"},
        transitions=6,
        calls=calls,
        served_seconds={},
        invocations=(
            Invoked("Results", RESULTS_HANDLER, 1024, 500.0),
            Invoked("Process", PROCESS_HANDLER, 256, 10_000.0),
        ),
    )


def test_the_bill_adds_ours_ingest_write_units_and_shows_the_whole_life_apart() -> None:
    def cost_rows(ingest: aws_cost.IngestWrites | None) -> dict[str, Any]:
        found = aws_cost.rows(
            _run(),
            {"Results": 1024, "Process": 256},
            {"Results": RESULTS_HANDLER, "Process": PROCESS_HANDLER},
            "pending_shard",
            ingest,
        )
        return {row.metric: row for row in found if row.section == "cost per M orders"}

    without = cost_rows(None)
    with_ingest = cost_rows(aws_cost.IngestWrites({"owner-orders": 1.0}, 2.0))

    added = with_ingest["DynamoDB write units at ingest: owner-orders (added by issue 17)"]
    assert added.value == "$0.62 (1.0000/order)"
    (total_without,) = [row for metric, row in without.items() if metric.startswith("total")]
    (total,) = [row for metric, row in with_ingest.items() if metric.startswith("total")]
    assert float(total.value[1:]) == pytest.approx(float(total_without.value[1:]) + 0.625, 0.01)
    assert total.baseline == total_without.baseline
    assert total.goal.startswith("<= 0.07x")
    (life,) = [row for metric, row in with_ingest.items() if "storing an order" in metric]
    assert float(life.value[1:]) == pytest.approx(float(total.value[1:]) + 1.25, 0.01)
    seed_total = float(total.baseline.split(" ")[0][1:])
    assert float(life.baseline.split(" ")[0][1:]) == pytest.approx(seed_total + 0.625, 0.01)
