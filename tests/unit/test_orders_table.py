"""The DynamoDB adapter's batched puts (Lambda A's made-up orders) against moto: exact items,
batching, retries of leftovers and throttling, and the deadline its writes keep (on a fake clock;
tests/faults/test_ingest_time_budget.py measures real time). The clients' conditional puts,
cancels and listing: tests/unit/test_order_lifecycle_table.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import (
    ExponentialBackoff,
    RetryContext,
    RetryEventAdapter,
    ThrottlingErrorDetector,
)
from moto import mock_aws

from entrix.aws import clients
from entrix.aws.orders_table import BATCH_SIZE, Backoff, Deadline, OrdersTable, plain_item
from tests.support.inject import Fault
from tests.support.lambda_context import lambda_context

TABLE = "orders"


def create_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "record_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "record_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        create_table(dynamodb)
        yield dynamodb


class FlakyClient:
    """Passes calls to a real client, but leaves the items `refuse` picks unprocessed."""

    def __init__(self, client: Any, refuse: Callable[[str, int], bool]) -> None:
        self.client = client
        self.refuse = refuse
        self.calls: list[list[str]] = []

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        (requests,) = RequestItems.values()
        ids = [request["PutRequest"]["Item"]["record_id"]["S"] for request in requests]
        self.calls.append(ids)
        attempt = sum(ids[0] in call for call in self.calls)
        kept = [r for r, i in zip(requests, ids, strict=True) if not self.refuse(i, attempt)]
        left = [r for r, i in zip(requests, ids, strict=True) if self.refuse(i, attempt)]
        if kept:
            self.client.batch_write_item(RequestItems={TABLE: kept})
        return {"UnprocessedItems": {TABLE: left} if left else {}}


class ThrottledClient:
    """Raises a throttling error for a whole batch the first `failures` times."""

    def __init__(self, client: Any, failures: int, code: str) -> None:
        self.client = client
        self.failures = failures
        self.code = code
        self.calls = 0

    def batch_write_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise ClientError({"Error": {"Code": self.code, "Message": "slow down"}}, "BatchWrite")
        return dict(self.client.batch_write_item(**kwargs))


def item(record_id: str, number: str = "2.1") -> dict[str, str | Decimal | int]:
    return {
        "record_id": record_id,
        "parameter_1": "p",
        "parameter_2": Decimal(number),
        "expires_at": 1_764_086_400,
    }


def no_sleep(sleeps: list[float]) -> Backoff:
    return Backoff(sleep=sleeps.append, random=lambda: 1.0)


def stored_ids(client: Any) -> set[str]:
    return {entry["record_id"]["S"] for entry in client.scan(TableName=TABLE)["Items"]}


def read(client: Any, record_id: str) -> dict[str, Any]:
    return plain_item(client.get_item(TableName=TABLE, Key={"record_id": {"S": record_id}})["Item"])


def test_items_are_written_exactly_and_read_back_as_decimals(client: Any) -> None:
    table = OrdersTable(client, TABLE)
    outcome = table.put_items([item("a", "2.1"), item("ü-日", "-1E-130"), item("z", "1E+100")])
    assert (outcome.stored, outcome.not_stored) == (["a", "ü-日", "z"], [])
    raw = client.get_item(TableName=TABLE, Key={"record_id": {"S": "a"}})["Item"]
    assert raw == {
        "record_id": {"S": "a"},
        "parameter_1": {"S": "p"},
        "parameter_2": {"N": "2.1"},
        "expires_at": {"N": "1764086400"},
    }
    assert read(client, "ü-日") == {**item("ü-日"), "parameter_2": Decimal("-1E-130")}
    assert read(client, "z") == {**item("z"), "parameter_2": Decimal("1E+100")}


def test_a_thousand_items_take_forty_batch_requests(client: Any) -> None:
    calls: list[int] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.BatchWriteItem",
        lambda params, **_: calls.append(len(params["RequestItems"][TABLE])),
    )
    outcome = OrdersTable(client, TABLE).put_items([item(f"r{i}") for i in range(1000)])
    assert calls == [BATCH_SIZE] * 40
    assert len(outcome.stored) == 1000
    assert stored_ids(client) == {f"r{i}" for i in range(1000)}


def test_batched_puts_overwrite_an_existing_key(client: Any) -> None:
    """Unconditional: only Lambda A's made-up orders, under fresh ids, are put this way."""
    table = OrdersTable(client, TABLE)
    table.put_items([item("a", "1")])
    table.put_items([item("a", "2")])
    assert client.scan(TableName=TABLE)["Count"] == 1
    assert read(client, "a") == item("a", "2")


def test_unprocessed_items_are_retried_with_growing_jittered_pauses(client: Any) -> None:
    # Odd ids are left unprocessed three times, then accepted.
    flaky = FlakyClient(
        client, lambda record_id, attempt: int(record_id[1:]) % 2 == 1 and attempt <= 3
    )
    sleeps: list[float] = []
    outcome = OrdersTable(flaky, TABLE, no_sleep(sleeps)).put_items(  # type: ignore[arg-type]
        [item(f"r{i}") for i in range(30)]
    )
    assert sorted(outcome.stored) == sorted(f"r{i}" for i in range(30))
    assert outcome.not_stored == []
    assert stored_ids(client) == {f"r{i}" for i in range(30)}
    assert [len(call) for call in flaky.calls] == [25, 12, 12, 12, 5, 3, 3, 3]
    assert sleeps == [0.1, 0.2, 0.4, 0.1, 0.2, 0.4]


def test_items_still_unprocessed_after_every_attempt_are_reported_not_stored(client: Any) -> None:
    flaky = FlakyClient(client, lambda record_id, attempt: record_id in {"r3", "r27"})
    sleeps: list[float] = []
    backoff = Backoff(max_attempts=4, sleep=sleeps.append, random=lambda: 0.5)
    outcome = OrdersTable(flaky, TABLE, backoff).put_items([item(f"r{i}") for i in range(30)])  # type: ignore[arg-type]
    assert sorted(outcome.not_stored) == ["r27", "r3"]
    assert set(outcome.stored) == {f"r{i}" for i in range(30)} - {"r3", "r27"}
    assert stored_ids(client) == set(outcome.stored)
    assert len(flaky.calls) == 8
    assert sleeps == [0.05, 0.1, 0.2] * 2


def test_the_pause_is_capped_and_jittered_from_zero() -> None:
    assert Backoff(base_seconds=0.5, cap_seconds=3.0, random=lambda: 0.0).seconds(10) == 0.0
    assert Backoff(base_seconds=0.5, cap_seconds=3.0, random=lambda: 1.0).seconds(10) == 3.0


@pytest.mark.parametrize(
    "code",
    ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"],
)
def test_a_throttled_batch_is_retried_whole(client: Any, code: str) -> None:
    throttled = ThrottledClient(client, failures=2, code=code)
    sleeps: list[float] = []
    outcome = OrdersTable(throttled, TABLE, no_sleep(sleeps)).put_items([item("a"), item("b")])  # type: ignore[arg-type]
    assert outcome.stored == ["a", "b"]
    assert throttled.calls == 3
    assert stored_ids(client) == {"a", "b"}


def test_persistent_throttling_leaves_this_and_later_batches_not_stored(client: Any) -> None:
    throttled = ThrottledClient(client, failures=10**6, code="ThrottlingException")
    table = OrdersTable(throttled, TABLE, Backoff(max_attempts=3, sleep=lambda _: None))  # type: ignore[arg-type]
    outcome = table.put_items([item(f"r{i}") for i in range(30)])
    assert outcome.stored == []
    assert outcome.not_stored == [f"r{i}" for i in range(30)]
    assert throttled.calls == 3
    assert stored_ids(client) == set()


def test_a_non_transient_error_stops_and_reports_what_was_not_stored(client: Any) -> None:
    calls = 0

    def fail_second_batch(**_: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "BatchWriteItem")

    client.meta.events.register("before-call.dynamodb.BatchWriteItem", fail_second_batch)
    outcome = OrdersTable(client, TABLE, Backoff(sleep=lambda _: None)).put_items(
        [item(f"r{i}") for i in range(60)]
    )
    assert outcome.stored == [f"r{i}" for i in range(25)]
    assert outcome.not_stored == [f"r{i}" for i in range(25, 60)]
    assert calls == 2
    assert stored_ids(client) == set(outcome.stored)


def test_a_missing_table_reports_everything_not_stored(client: Any) -> None:
    outcome = OrdersTable(client, "no-such-table").put_items([item("a")])
    assert (outcome.stored, outcome.not_stored) == ([], ["a"])


class Clock:
    """Time that moves only when the table sleeps or a BatchWriteItem is made."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def timed_table(clock: Clock, sleeps: list[float], call_seconds: float = 1.0) -> OrdersTable:
    """A table over a client configured like the Lambdas' (so its longest call is known), whose
    every BatchWriteItem takes `call_seconds` on `clock`, as do its pauses."""
    dynamodb = clients.client("dynamodb")
    dynamodb.meta.events.register(
        "before-call.dynamodb.BatchWriteItem", lambda **_: clock.advance(call_seconds)
    )

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    return OrdersTable(dynamodb, TABLE, Backoff(sleep=sleep, random=lambda: 1.0))


LONGEST_CALL = 22.0  # clients.DEFAULT_CONFIG: 3 attempts of 1 + 2 s, pauses of 1 + 5 and 2 + 5 s


def test_the_default_client_retries_in_standard_mode_whatever_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "10")
    config = clients.client("dynamodb").meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert (config.connect_timeout, config.read_timeout) == (1, 2)
    assert clients.longest_call_seconds(clients.client("dynamodb")) == LONGEST_CALL
    tighter = clients.client("dynamodb", Config(retries={"mode": "standard", "max_attempts": 1}))
    assert tighter.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}
    assert tighter.meta.config.read_timeout == 2, "the default's other settings are kept"
    assert clients.longest_call_seconds(tighter) == 2 * (1 + 2) + (1 + 5)


def test_a_client_without_a_known_retry_bound_is_refused() -> None:
    legacy = clients.client("dynamodb", Config(retries={"mode": "legacy"}))
    with pytest.raises(ValueError, match="no known bound"):
        clients.longest_call_seconds(legacy)


@pytest.mark.parametrize("retry", [1, 2, 3, 5, 6, 9])
def test_the_pause_allowed_before_a_retry_is_botocores_longest(retry: int) -> None:
    """botocore's own standard-mode backoff, at its most (throttled, jitter 1, a huge
    x-amz-retry-after), sleeps exactly what longest_call_seconds allows for."""
    backoff = ExponentialBackoff(
        random=lambda: 1.0,
        service_name="dynamodb",
        throttling_detector=ThrottlingErrorDetector(RetryEventAdapter()),
    )
    throttled = RetryContext(
        attempt_number=retry,
        parsed_response={"Error": {"Code": "ThrottlingException"}},
        http_response=AWSResponse("https://x", 400, {"x-amz-retry-after": "3600000"}, None),
    )
    assert backoff.delay_amount(throttled) == clients.retry_pause_limit(retry)


def test_no_call_is_started_that_could_end_after_the_deadline(client: Any) -> None:
    clock, sleeps = Clock(), list[float]()
    table = timed_table(clock, sleeps)
    outcome = table.put_items([item("a")], Deadline(LONGEST_CALL - 0.01, clock))
    assert (outcome.stored, outcome.not_stored, clock.now) == ([], ["a"], 0.0)
    outcome = table.put_items([item("a")], Deadline(LONGEST_CALL, clock))
    assert (outcome.stored, outcome.not_stored, clock.now) == (["a"], [], 1.0)
    assert stored_ids(client) == {"a"}


def test_later_batches_are_not_started_once_the_deadline_is_near(client: Any) -> None:
    clock, sleeps = Clock(), list[float]()
    outcome = timed_table(clock, sleeps).put_items(
        [item(f"r{i}") for i in range(60)], Deadline(LONGEST_CALL + 1.5, clock)
    )
    assert outcome.stored == [f"r{i}" for i in range(50)]
    assert outcome.not_stored == [f"r{i}" for i in range(50, 60)]
    assert stored_ids(client) == set(outcome.stored)
    assert clock.now == 2.0


def test_a_pause_is_not_slept_when_it_and_the_next_call_would_end_after_the_deadline(
    client: Any,
) -> None:
    clock, sleeps = Clock(), list[float]()
    table = timed_table(clock, sleeps)
    throttled = Fault(table._client, "BatchWriteItem", "ThrottlingException")
    # Calls at 0 and 1.1 s fit (the second after a pause of 0.1 s), one at 2.3 s would too, but
    # not the pause of 0.4 s before a fourth: 3.3 + 0.4 + 22 > 25.5.
    outcome = table.put_items([item("a"), item("b")], Deadline(LONGEST_CALL + 3.5, clock))
    assert (outcome.stored, outcome.not_stored) == ([], ["a", "b"])
    assert throttled.calls == 3
    assert sleeps == [0.1, 0.2]
    assert clock.now == pytest.approx(3.3)
    assert stored_ids(client) == set()


@pytest.mark.parametrize("ended_by", ["deadline", "throttling"])
def test_a_batch_given_up_after_a_partial_write_counts_its_written_items_stored(
    client: Any, ended_by: str
) -> None:
    clock, sleeps = Clock(), list[float]()
    table = timed_table(clock, sleeps)
    events = table._client.meta.events
    taken: list[Any] = []

    def take_out_b(params: dict[str, Any], **_: Any) -> None:
        """On the first call, of "a" and "b": the retry of "b" alone is sent as it is."""
        (requests,) = params["RequestItems"].values()
        taken[:] = [
            r
            for r in requests
            if len(requests) > 1 and r["PutRequest"]["Item"]["record_id"]["S"] == "b"
        ]
        params["RequestItems"] = {TABLE: [r for r in requests if r not in taken]}

    # The first call stores "a" and leaves "b" unprocessed; the retry is too late or throttled.
    events.register("before-parameter-build.dynamodb.BatchWriteItem", take_out_b)
    events.register(
        "after-call.dynamodb.BatchWriteItem",
        lambda parsed, **_: parsed.update(UnprocessedItems={TABLE: taken}),
    )
    throttled = Fault(table._client, "BatchWriteItem", "ThrottlingException", when=lambda n: n > 1)
    deadline = Deadline(LONGEST_CALL + 1.0, clock) if ended_by == "deadline" else None
    outcome = table.put_items([item("a"), item("b")], deadline)
    assert (outcome.stored, outcome.not_stored) == (["a"], ["b"])
    assert stored_ids(client) == {"a"}
    assert throttled.calls == (1 if deadline else Backoff().max_attempts)


def test_the_deadline_is_the_invocations_end_less_a_margin() -> None:
    deadline = Deadline.from_context(lambda_context(28_000), margin_seconds=2.0)
    assert deadline.leaves(25.9)
    assert not deadline.leaves(26.1)
