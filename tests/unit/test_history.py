"""The history archiver over stream records as Lambda delivers them, with the bucket in moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from entrix import settings
from entrix.handlers import archive
from entrix.orders import history, lifecycle

BUCKET = "history-test"
RECEIVED = "2026-12-06T10:00:00.000Z"
EXPIRES = 1_796_637_600
CREATED = 1_796_551_200  # 2026-12-06T10:00:00Z
ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-12-06T00:00:00.000"


def typed(item: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"N": str(value)} if isinstance(value, int | Decimal) else {"S": value}
        for name, value in item.items()
    }


def stored(power: str = "-3.4028234660E+38", **extra: Any) -> dict[str, Any]:
    order = {"record_id": "r/1", "parameter_1": "x", "parameter_2": Decimal(power)}
    version = lifecycle.version(RECEIVED, "0123456789ab", 0)
    return {**lifecycle.stored_item(order, "desk-a", RECEIVED, EXPIRES, version), **extra}


def record(
    name: str, sequence: int, new: dict[str, Any] | None, old: dict[str, Any] | None, **extra: Any
) -> dict[str, Any]:
    images = {"NewImage": typed(new)} if new else {}
    images |= {"OldImage": typed(old)} if old else {}
    return {
        "eventID": f"e{sequence}",
        "eventName": name,
        "eventSource": "aws:dynamodb",
        "eventSourceARN": ARN,
        "dynamodb": {
            "ApproximateCreationDateTime": CREATED + sequence,
            "Keys": {"order_key": {"S": "desk-a#r/1"}},
            "SequenceNumber": f"{sequence:021d}",
            "StreamViewType": "NEW_AND_OLD_IMAGES",
            **images,
        },
        **extra,
    }


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv(settings.RESULTS_BUCKET_NAME.name, BUCKET)
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        archive.store.cache_clear()
        yield client
    archive.store.cache_clear()


def lifetime() -> list[dict[str, Any]]:
    """An order's stream: received, claimed, its result recorded, deleted by TTL."""
    order = stored()
    claimed = {**order, "claimed_by": "run-1", "claim_expires_at": CREATED + 1800}
    recorded = {
        **{k: v for k, v in order.items() if k != "pending_shard"},
        "result_status": "accepted",
        "power": Decimal("0.1000000000000000055511151231257827"),
        "result_run_id": "run-1",
        "result_at": "2026-12-06T10:05:00Z",
    }
    return [
        record("INSERT", 1, order, None),
        record("MODIFY", 2, claimed, order),
        record("MODIFY", 3, recorded, claimed),
        record(
            "REMOVE",
            4,
            None,
            recorded,
            userIdentity={"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        ),
    ]


def test_a_batch_is_one_object_of_the_changes_that_matter_with_exact_numbers(s3: Any) -> None:
    assert archive.handler({"Records": lifetime()}, None) == {"batchItemFailures": []}
    key = f"history/date=2026-12-06/{1:021d}-{4:021d}.jsonl"
    (listed,) = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert listed["Key"] == key
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert "-340282346600000000000000000000000000000" in body
    assert "0.1000000000000000055511151231257827" in body
    lines = [json.loads(text, parse_float=Decimal) for text in body.splitlines()]
    assert [line["event"] for line in lines] == ["received", "result", "expired"]
    received, result, expired = lines
    assert received == {
        "event": "received",
        "order_key": "desk-a#r/1",
        "owner": "desk-a",
        "record_id": "r/1",
        "parameter_1": "x",
        "parameter_2": Decimal("-3.4028234660E+38"),
        "version": lifecycle.version(RECEIVED, "0123456789ab", 0),
        "received_at": RECEIVED,
        "expires_at": EXPIRES,
        "changed_at": "2026-12-06T10:00:01Z",
        "sequence_number": f"{1:021d}",
    }
    assert (result["status"], result["run"], result["result_at"]) == (
        "accepted",
        "run-1",
        "2026-12-06T10:05:00Z",
    )
    assert result["power"] == Decimal("0.1000000000000000055511151231257827")
    assert (expired["result_status"], expired["expires_at"]) == ("accepted", EXPIRES)


def test_a_retried_batch_overwrites_its_object(s3: Any) -> None:
    archive.handler({"Records": lifetime()}, None)
    archive.handler({"Records": lifetime()}, None)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_a_batch_of_claims_and_releases_writes_nothing(s3: Any) -> None:
    order = stored()
    claimed = {**order, "claimed_by": "run-1", "claim_expires_at": CREATED + 1800}
    batch = [record("MODIFY", 1, claimed, order), record("MODIFY", 2, order, claimed)]
    assert archive.handler({"Records": batch}, None) == {"batchItemFailures": []}
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_a_failed_write_fails_the_whole_batch_from_its_first_record(s3: Any) -> None:
    s3.delete_bucket(Bucket=BUCKET)
    assert archive.handler({"Records": lifetime()}, None) == {
        "batchItemFailures": [{"itemIdentifier": f"{1:021d}"}]
    }


@pytest.mark.parametrize(
    ("old", "new", "event"),
    [
        (None, stored(), history.RECEIVED),
        (stored(), stored(version="later"), history.AMENDED),
        (stored(expires_at=CREATED - 1), stored(version="later"), history.RECEIVED),
        (stored(), stored(result_status="cancelled", cancelled_at="t"), history.CANCELLED),
        (stored(), stored(result_status="rejected", power=Decimal(0)), history.RESULT),
    ],
)
def test_each_change_that_matters_is_named(
    old: dict[str, Any] | None, new: dict[str, Any], event: str
) -> None:
    change = history.Change("MODIFY" if old else "INSERT", "1", CREATED, new, old)
    line = history.line(change)
    assert line is not None and line["event"] == event


def test_a_delete_not_made_by_ttl_is_a_removal() -> None:
    line = history.line(history.Change("REMOVE", "1", CREATED, None, stored()))
    assert line is not None and line["event"] == history.REMOVED
