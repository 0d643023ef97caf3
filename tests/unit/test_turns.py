"""The turn-taking of tests/support/turns.py: a call that raises gives its turn back, and an
abandoned example's threads make no more calls (moto's state is the process's: a thread left
running would call into the next example's, as a run of the same name)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from tests.support.turns import Turns

BUCKET = "turns-test-bucket"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client(
            "s3", region_name="eu-west-1", config=Config(retries={"total_max_attempts": 1})
        )
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield client


def taking_turns(client: Any, schedule: list[str]) -> Turns:
    turns = Turns(schedule)
    turns.register(client)
    return turns


def keys(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_a_call_that_raises_gives_its_turn_back(s3: Any) -> None:
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.invalid/")

    taking_turns(s3, [])
    s3.meta.events.register_first("before-send.s3.PutObject", unreachable)
    with pytest.raises(EndpointConnectionError):
        s3.put_object(Bucket=BUCKET, Key="lost", Body=b"x")
    s3.meta.events.unregister("before-send.s3.PutObject", unreachable)

    s3.put_object(Bucket=BUCKET, Key="stored", Body=b"x")  # not kept waiting for a turn

    assert keys(s3) == ["stored"]


def test_an_abandoned_examples_calls_raise_instead_of_going(s3: Any) -> None:
    turns = taking_turns(s3, ["run-0", "run-1"])
    errors: list[BaseException] = []

    def run_1() -> None:
        try:
            s3.put_object(Bucket=BUCKET, Key="run-1", Body=b"x")  # waits for run-0's turn
        except AssertionError as error:
            errors.append(error)

    waiting = threading.Thread(target=run_1, name="run-1")
    waiting.start()
    turns.abandon()
    waiting.join(timeout=5)

    assert not waiting.is_alive()
    assert [str(error) for error in errors] == ["run-1 made a call after its example ended"]
    with pytest.raises(AssertionError, match="after its example ended"):
        s3.put_object(Bucket=BUCKET, Key="later", Body=b"x")
