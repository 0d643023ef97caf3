"""Each client's fair share: the window and day arithmetic, and the usage table's conditional
charges against moto (the limit is DynamoDB's condition, so concurrent charges never pass it)."""

from __future__ import annotations

import calendar
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from entrix import settings
from entrix.aws import clients
from entrix.aws.client_usage import (
    ClientUsage,
    QuotaExceeded,
    RateLimited,
    UsageUnavailable,
)
from entrix.aws.orders_table import Deadline
from entrix.handlers.fair_share import USAGE_CONFIG
from entrix.orders import usage
from entrix.orders.usage import Limits
from tests.support.inject import Fault
from tests.support.moto_usage import USAGE_TABLE, create_usage_table

# 2026-12-06 23:59:55 UTC, 5 s before midnight.
NOW = float(calendar.timegm((2026, 12, 6, 23, 59, 55)))
LIMITS = Limits(rate_limit=3, window_seconds=10, daily_orders=100)


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        create_usage_table(dynamodb)
        yield dynamodb


def counted(client: Any, key: str, attribute: str) -> int | None:
    item = client.get_item(TableName=USAGE_TABLE, Key={"usage_key": {"S": key}}).get("Item")
    return None if item is None or attribute not in item else int(item[attribute]["N"])


# --- the arithmetic ------------------------------------------------------------------------


def test_a_rate_window_is_fixed_and_retry_after_counts_to_its_end() -> None:
    counter = usage.rate_counter("desk-a", 1_000_003.2, 10)
    assert counter.key == "desk-a#rate#1000000"
    assert counter.ends_at == 1_000_010
    assert counter.expires_at == 1_000_010 + usage.EXPIRY_GRACE_SECONDS
    assert counter.retry_after(1_000_003.2) == 7  # 6.8 s left, rounded up
    assert usage.rate_counter("desk-a", 1_000_009.99, 10).key == counter.key
    assert usage.rate_counter("desk-a", 1_000_010, 10).key == "desk-a#rate#1000010"


def test_retry_after_is_at_least_one_second() -> None:
    assert usage.rate_counter("desk-a", 1_000_009.999, 10).retry_after(1_000_009.999) == 1


def test_the_order_day_is_the_utc_day_and_retry_after_counts_to_midnight() -> None:
    counter = usage.order_counter("desk-a", NOW)
    assert counter.key == "desk-a#orders#2026-12-06"
    assert counter.retry_after(NOW) == 5
    assert usage.order_counter("desk-a", NOW + 5).key == "desk-a#orders#2026-12-07"
    assert usage.order_counter("desk-a", NOW + 5).retry_after(NOW + 5) == 86_400


def test_the_refund_is_the_unchanged_and_not_stored_orders() -> None:
    outcomes = {"created": 4, "amended": 1, "unchanged": 2, "refused": 3, "not_stored": 5}
    assert usage.refund(outcomes) == 7
    assert usage.refund({"created": 1}) == 0


# --- the adapter against moto --------------------------------------------------------------


def test_requests_are_counted_up_to_the_limit_then_refused_until_the_next_window(
    client: Any,
) -> None:
    meter = ClientUsage(client, USAGE_TABLE, LIMITS)
    for _ in range(3):
        meter.charge_request("desk-a", NOW)
    with pytest.raises(RateLimited) as refused:
        meter.charge_request("desk-a", NOW + 1)
    assert refused.value.retry_after == 4  # the window 23:59:50..24:00:00
    key = usage.rate_counter("desk-a", NOW, 10).key
    assert counted(client, key, "requests") == 3, "a refused charge adds nothing"
    meter.charge_request("desk-b", NOW)  # another client's counter
    meter.charge_request("desk-a", NOW + 5)  # the next window


def test_a_counter_carries_its_expiry_for_the_ttl(client: Any) -> None:
    ClientUsage(client, USAGE_TABLE, LIMITS).charge_request("desk-a", NOW)
    counter = usage.rate_counter("desk-a", NOW, 10)
    item = client.get_item(TableName=USAGE_TABLE, Key={"usage_key": {"S": counter.key}})["Item"]
    assert int(item["expires_at"]["N"]) == counter.expires_at


def test_orders_are_charged_whole_or_not_at_all(client: Any) -> None:
    meter = ClientUsage(client, USAGE_TABLE, LIMITS)
    key = usage.order_counter("desk-a", NOW).key
    meter.charge_orders("desk-a", NOW, 60)
    with pytest.raises(QuotaExceeded) as refused:
        meter.charge_orders("desk-a", NOW, 41)
    assert refused.value.retry_after == 5  # to UTC midnight
    assert counted(client, key, "orders") == 60
    meter.charge_orders("desk-a", NOW, 40)  # exactly the quota
    assert counted(client, key, "orders") == 100
    with pytest.raises(QuotaExceeded):
        meter.charge_orders("desk-a", NOW, 1)


def test_a_request_larger_than_the_quota_is_refused_on_an_empty_day(client: Any) -> None:
    with pytest.raises(QuotaExceeded):
        ClientUsage(client, USAGE_TABLE, LIMITS).charge_orders("desk-a", NOW, 101)
    assert counted(client, usage.order_counter("desk-a", NOW).key, "orders") is None


def test_a_refund_makes_room_again(client: Any) -> None:
    meter = ClientUsage(client, USAGE_TABLE, LIMITS)
    charge = meter.charge_orders("desk-a", NOW, 100)
    meter.refund_orders(charge, 30, None)
    assert counted(client, charge.counter.key, "orders") == 70
    meter.charge_orders("desk-a", NOW, 30)


def test_a_failed_refund_is_logged_not_raised(client: Any, caplog: Any) -> None:
    meter = ClientUsage(client, USAGE_TABLE, LIMITS)
    charge = meter.charge_orders("desk-a", NOW, 10)
    Fault(client, "UpdateItem", "InternalServerError", status=500)
    meter.refund_orders(charge, 10, None)
    assert "refund of 10 orders" in caplog.text


def test_an_unavailable_table_is_not_a_pass(client: Any) -> None:
    """Throttled (or 5xx) after botocore's retries: the charge raises, the handler answers 503."""
    meter = ClientUsage(client, USAGE_TABLE, LIMITS)
    Fault(client, "UpdateItem", "ThrottlingException")
    with pytest.raises(UsageUnavailable):
        meter.charge_request("desk-a", NOW)
    with pytest.raises(UsageUnavailable):
        meter.charge_orders("desk-a", NOW, 1)


def test_concurrent_charges_never_pass_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads hammering one subject's counter: exactly the limit succeed, whatever the
    interleaving; the count is never more than the limit.

    DynamoDB applies a conditional write to an item atomically; moto does not (its check and
    update interleave across threads), so each of moto's UpdateItem is made atomic here, as it
    is in DynamoDB. A read-then-write would still race: its read and write are two calls."""
    update_item = DynamoDBBackend.update_item
    atomic = threading.Lock()

    def atomic_update_item(*args: Any, **kwargs: Any) -> Any:
        with atomic:
            return update_item(*args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "update_item", atomic_update_item)
    limits = Limits(rate_limit=25, window_seconds=60, daily_orders=70)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        create_usage_table(dynamodb)
        meter = ClientUsage(dynamodb, USAGE_TABLE, limits)
        outcomes: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(16)

        def hammer() -> None:
            start.wait()
            for _ in range(5):
                for charge, refusal in (
                    (lambda: meter.charge_request("desk-a", NOW), RateLimited),
                    (lambda: meter.charge_orders("desk-a", NOW, 3), QuotaExceeded),
                ):
                    try:
                        charge()
                        outcome = "ok"
                    except refusal:
                        outcome = "refused"
                    with lock:
                        outcomes.append(f"{refusal.__name__} {outcome}")

        threads = [threading.Thread(target=hammer) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes.count("RateLimited ok") == 25
        assert outcomes.count("RateLimited refused") == 80 - 25
        assert outcomes.count("QuotaExceeded ok") == 70 // 3
        rate_key = usage.rate_counter("desk-a", NOW, 60).key
        assert counted(dynamodb, rate_key, "requests") == 25
        day_key = usage.order_counter("desk-a", NOW).key
        assert counted(dynamodb, day_key, "orders") == 3 * (70 // 3)


def test_a_refund_that_could_outlast_the_deadline_is_skipped(client: Any, caplog: Any) -> None:
    """The reply must not wait for it: the orders stay counted, on the client's side."""
    meter = ClientUsage(clients.client("dynamodb", USAGE_CONFIG), USAGE_TABLE, LIMITS)
    charge = meter.charge_orders("desk-a", NOW, 10)
    longest = clients.longest_call_seconds(meter.client)  # one attempt of 1 s + 1 s
    meter.refund_orders(charge, 10, Deadline(at=longest - 0.5, clock=lambda: 0.0))
    assert counted(client, charge.counter.key, "orders") == 10
    meter.refund_orders(charge, 4, Deadline(at=longest, clock=lambda: 0.0))
    assert counted(client, charge.counter.key, "orders") == 6
    assert "no time left to refund 10 orders" in caplog.text


def test_a_client_with_a_share_of_its_own_gets_it_and_the_others_the_default(
    client: Any,
) -> None:
    overrides = usage.limits_by_subject(LIMITS, {"desk-vip": {"rate_limit": 5}})
    assert overrides == {"desk-vip": Limits(rate_limit=5, window_seconds=10, daily_orders=100)}
    meter = ClientUsage(client, USAGE_TABLE, LIMITS, overrides)
    for _ in range(5):
        meter.charge_request("desk-vip", NOW)
    with pytest.raises(RateLimited, match="at most 5 requests"):
        meter.charge_request("desk-vip", NOW)
    for _ in range(3):
        meter.charge_request("desk-a", NOW)
    with pytest.raises(RateLimited, match="at most 3 requests"):
        meter.charge_request("desk-a", NOW)


def test_client_limits_settings_are_checked_and_made_canonical() -> None:
    assert settings.CLIENT_LIMITS.parse('{"b": {"daily_orders": 2}, "a": {"rate_limit": 1}}') == (
        '{"a":{"rate_limit":1},"b":{"daily_orders":2}}'
    )
    for bad in ("[]", '{"a": {}}', '{"a": {"window_seconds": 5}}', '{"a": {"rate_limit": true}}'):
        with pytest.raises(ValueError):
            settings.CLIENT_LIMITS.parse(bad)
