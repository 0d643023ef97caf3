"""The auction domain: the simulated platform, batch keys, result lines, alert messages."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from entrix.auction.batch_item import OrderResult, order_result
from entrix.auction.messages import slack_payload
from entrix.auction.platform import AuctionPlatform, PendingOrder, Status, json_number
from entrix.auction.results import (
    NOT_READY_TEXT,
    REJECTION_TEXT,
    batch_rejections_key,
    batch_results_key,
    batches_key,
    json_lines,
    rejection_alert,
    rejection_text,
    result_line,
    run_rejections_prefix,
)

ORDER = PendingOrder(order_key="desk-a#r-1", version="2026-11-25T10:00:00.000Z/0123456789ab/0000")


def test_readiness_follows_the_probability_and_the_injected_source() -> None:
    never = AuctionPlatform(random.Random(1), ready_probability=0.0)
    always = AuctionPlatform(random.Random(1), ready_probability=1.0)
    assert not any(never.results_ready() for _ in range(200))
    assert all(always.results_ready() for _ in range(200))
    sometimes = [AuctionPlatform(random.Random(5), 0.5).results_ready() for _ in range(3)]
    assert sometimes == [AuctionPlatform(random.Random(5), 0.5).results_ready()] * 3


def test_the_same_seed_gives_the_same_results() -> None:
    first = AuctionPlatform(random.Random(42), 1.0)
    second = AuctionPlatform(random.Random(42), 1.0)
    assert [first.result_for(ORDER) for _ in range(20)] == [
        second.result_for(ORDER) for _ in range(20)
    ]


def test_results_are_both_statuses_with_power_in_range() -> None:
    platform = AuctionPlatform(random.Random(3), 1.0, max_power=100)
    results = [platform.result_for(ORDER) for _ in range(500)]
    assert {r.status for r in results} == {Status.ACCEPTED, Status.REJECTED}
    assert all(1 <= r.power <= 100 for r in results)


def test_acceptance_probability_extremes() -> None:
    accept_all = AuctionPlatform(random.Random(3), 1.0, acceptance_probability=1.0)
    reject_all = AuctionPlatform(random.Random(3), 1.0, acceptance_probability=0.0)
    assert {accept_all.result_for(ORDER).status for _ in range(50)} == {Status.ACCEPTED}
    assert {reject_all.result_for(ORDER).status for _ in range(50)} == {Status.REJECTED}


@pytest.mark.parametrize("probability", [-0.1, 1.5])
def test_probabilities_outside_0_1_are_refused(probability: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        AuctionPlatform(random.Random(), ready_probability=probability)


def test_result_shape_is_the_seeds_with_the_orders_key_and_version() -> None:
    result = order_result(AuctionPlatform(random.Random(1), 1.0).result_for(ORDER))
    fields = {"order_key", "version", "status", "power"}
    assert set(result) == fields == set(OrderResult.model_fields)
    assert (result["order_key"], result["version"]) == (ORDER.order_key, ORDER.version)
    assert result["status"] in {"accepted", "rejected"}
    assert OrderResult.model_validate(json.loads(json.dumps(result))).power == result["power"]


def test_json_number_keeps_integers_exact() -> None:
    assert json_number(Decimal("123456789012345678901234567890")) == 123456789012345678901234567890
    assert json_number(Decimal("2.1")) == 2.1
    assert json_number(7) == 7


def test_synthetic_orders_have_unique_ids_under_the_run_prefix() -> None:
    orders = AuctionPlatform(random.Random(1), 1.0).synthetic_orders(25, "random-run-1")
    assert len({o.record_id for o in orders}) == 25
    assert all(o.record_id.startswith("random-run-1-") for o in orders)
    assert all(isinstance(o.parameter_2, Decimal) for o in orders)


def test_batch_results_keys_are_partitioned_by_date_and_run_and_numbered() -> None:
    key = batch_results_key("2026-11-25", "run-1", 3)
    assert key == "results/date=2026-11-25/run=run-1/batch-00003.jsonl"
    assert key == batch_results_key("2026-11-25", "run-1", 3), "a retried batch, the same key"
    assert key != batch_results_key("2026-11-25", "run-1", 4)
    assert key != batch_results_key("2026-11-25", "run-2", 3)


def test_batch_numbers_sort_in_order_as_text() -> None:
    keys = [batch_results_key("2026-11-25", "run-1", n) for n in (1, 2, 10, 100)]
    assert sorted(keys) == keys


def test_a_runs_batches_object_lies_outside_the_results_prefix() -> None:
    key = batches_key("2026-11-25", "run-1")
    assert key == "batches/date=2026-11-25/run-1.json"
    assert not key.startswith("results/")


ITEM = {
    "order_key": "desk-a#r-1",
    "owner": "desk-a",
    "version": "2026-11-25T10:00:00.000Z/0123456789ab/0000",
    "record_id": "r-1",
    "parameter_1": "buy",
    "parameter_2": Decimal("2.1"),
    "received_at": "2026-11-25T10:00:00.000Z",
    "result_status": "pending",
    "claimed_by": "run-1",
    "claim_expires_at": Decimal(1_900_000_000),
}


def test_result_line_is_built_from_the_claimed_item_and_the_result() -> None:
    line = result_line(ITEM, "accepted", 42, "run-1", "2026-11-25T10:05:00.000Z")
    assert "\n" not in line
    assert json.loads(line) == {
        "record_id": "r-1",
        "owner": "desk-a",
        "version": "2026-11-25T10:00:00.000Z/0123456789ab/0000",
        "parameter_1": "buy",
        "parameter_2": 2.1,
        "received_at": "2026-11-25T10:00:00.000Z",
        "status": "accepted",
        "power": 42,
        "run_id": "run-1",
        "result_at": "2026-11-25T10:05:00.000Z",
    }
    same = result_line(dict(ITEM), "accepted", Decimal(42), "run-1", "2026-11-25T10:05:00.000Z")
    assert same == line, "same item and result, same bytes"


EXACT = "12345678901234567890.123456789"


def test_result_line_writes_decimals_as_their_exact_text() -> None:
    item = {**ITEM, "parameter_2": Decimal(EXACT)}
    line = result_line(item, "accepted", Decimal(42), "run-1", "2026-11-25T10:05:00.000Z")
    assert f'"parameter_2": {EXACT},' in line, "not 1.2345678901234567e+19"
    assert '"power": 42,' in line
    assert json.loads(line, parse_float=Decimal)["parameter_2"] == Decimal(EXACT)
    plain = {**item, "parameter_2": Decimal("2.5")}
    plain_line = result_line(plain, "accepted", 42, "run-1", "t")
    floats = {key: float(v) if isinstance(v, Decimal) else v for key, v in plain.items()}
    expected = json.loads(result_line(floats, "accepted", 42, "run-1", "t"))
    assert json.loads(plain_line) == expected
    assert list(json.loads(plain_line)) == sorted(json.loads(plain_line)), "keys sorted"
    reordered = dict(reversed(list(item.items())))
    assert result_line(reordered, "accepted", 42, "run-1", "2026-11-25T10:05:00.000Z") == line


def test_result_line_keeps_unicode_readable() -> None:
    line = result_line({**ITEM, "record_id": "ünï"}, "accepted", 1, "run-1", "t")
    assert "ünï" in line
    assert json.loads(line)["record_id"] == "ünï"


def test_json_lines_ends_every_line_with_a_newline() -> None:
    body = json_lines(['{"a": 1}', '{"b": "ü"}'])
    assert body == '{"a": 1}\n{"b": "ü"}\n'.encode()
    assert [json.loads(line) for line in body.decode().splitlines()] == [{"a": 1}, {"b": "ü"}]
    assert json_lines([]) == b""


def test_alert_texts_are_safe_for_states_format() -> None:
    for template in (REJECTION_TEXT, NOT_READY_TEXT):
        assert not set(template) & {"'", "\\"}
        assert template.replace("{}", "").count("{") == 0
        assert template.replace("{}", "").count("}") == 0


def test_rejection_text_names_the_order_its_owner_and_run() -> None:
    text = rejection_text("r-1", "desk-a", "run-9", 12)
    assert all(part in text for part in ("r-1", "desk-a", "run-9", "12"))


def test_rejection_alert_carries_the_text_and_the_orders_fields() -> None:
    alert = rejection_alert(ITEM, "run-9", 12)
    assert alert == {
        "text": rejection_text("r-1", "desk-a", "run-9", 12),
        "record_id": "r-1",
        "owner": "desk-a",
        "status": "rejected",
        "run": "run-9",
        "power": 12,
    }
    assert next(iter(alert)) == "text", "the Slack forwarder shows the text first"
    assert slack_payload(json.dumps(alert))["text"].startswith(alert["text"] + "\n")


def test_slack_payload_puts_the_text_first_then_the_fields() -> None:
    message = json.dumps({"text": "Order r-1 was rejected.", "record_id": "r-1", "run": "run-9"})
    assert slack_payload(message) == {"text": "Order r-1 was rejected.\nrecord_id: r-1\nrun: run-9"}


def test_slack_payload_shows_each_of_a_digests_examples_on_its_own_line() -> None:
    digest = {
        "text": "2 of 9 orders were rejected in auction run run-9; the full list: s3://b/p/",
        "status": "rejection_digest",
        "examples": [
            {"record_id": "r-1", "owner": "desk-a", "power": 3},
            {"record_id": "r-2", "owner": "desk-b", "power": -1},
        ],
        "ids": ["x", "y"],
    }
    assert slack_payload(json.dumps(digest))["text"].splitlines()[1:] == [
        "status: rejection_digest",
        "examples 1: record_id: r-1, owner: desk-a, power: 3",
        "examples 2: record_id: r-2, owner: desk-b, power: -1",
        'ids: ["x", "y"]',
    ]


@pytest.mark.parametrize("message", ["plain words", "[1, 2]", '{"no_text": 1}', '{"text": 5}'])
def test_slack_payload_forwards_anything_else_as_plain_text(message: str) -> None:
    assert slack_payload(message) == {"text": message}


def test_rejections_are_partitioned_like_results() -> None:
    results_key = batch_results_key("2026-11-25", "run-1", 3)
    rejections_key = batch_rejections_key(results_key)
    assert rejections_key == "rejections/date=2026-11-25/run=run-1/batch-00003.jsonl"
    assert rejections_key.startswith(run_rejections_prefix("2026-11-25", "run-1"))
    with pytest.raises(ValueError, match="not a results key"):
        batch_rejections_key("batches/date=2026-11-25/run-1.json")
