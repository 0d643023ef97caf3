"""The alert topic (entrix.aws.alerts): alerts published ten to a request, failures reported.

Delivery is checked end to end in moto (a raw SQS subscription receives what the topic
published); partial failures, which moto does not produce for ordinary messages, are scripted
with botocore's Stubber; whole-request failures are injected into the moto client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws

from entrix.auction.results import failed_batch_alert, rejection_alert
from entrix.aws.alerts import (
    ENTRIES_PER_REQUEST,
    MAX_REQUEST_BYTES,
    AlertTopic,
    message_attributes,
)
from tests.support.inject import Fault
from tests.support.moto_alerts import subscribe_queue

REGION = "eu-west-1"
STUBBED_TOPIC = "arn:aws:sns:eu-west-1:123456789012:alerts"


def alert(index: int, text: str = "") -> dict[str, Any]:
    return {"text": text or f"Order r-{index} was rejected.", "record_id": f"r-{index}"}


@dataclass
class Topic:
    """A moto topic with a raw SQS subscription, and every PublishBatch request made to it."""

    sns: Any
    sqs: Any
    arn: str
    queue_url: str
    requests: list[list[dict[str, Any]]] = field(default_factory=list)

    def record(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(list(params["PublishBatchRequestEntries"]))

    def received(self) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        while True:
            reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            if not reply.get("Messages"):
                return bodies
            bodies.extend(json.loads(message["Body"]) for message in reply["Messages"])


@pytest.fixture
def topic() -> Iterator[Topic]:
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        arn = sns.create_topic(Name="alerts")["TopicArn"]
        queue_url = subscribe_queue(sns, sqs, arn)
        recorded = Topic(sns, sqs, arn, queue_url)
        sns.meta.events.register("provide-client-params.sns.PublishBatch", recorded.record)
        yield recorded


def test_alerts_are_published_ten_to_a_request(topic: Topic) -> None:
    alerts = [alert(index) for index in range(23)]

    assert AlertTopic(topic.sns, topic.arn).publish(alerts) == []

    # The requests go out in parallel: their grouping is fixed, the order they arrive in not.
    assert sorted(len(entries) for entries in topic.requests) == [3, 10, 10]
    assert ENTRIES_PER_REQUEST == 10
    assert sorted(topic.received(), key=lambda a: int(a["record_id"][2:])) == alerts


def test_each_message_is_the_alert_as_json_with_unicode_kept(topic: Topic) -> None:
    alerts = [alert(0, text="Order ünï was rejected.")]

    AlertTopic(topic.sns, topic.arn).publish(alerts)

    ((entry,),) = topic.requests
    assert "ünï" in entry["Message"]
    assert json.loads(entry["Message"]) == alerts[0]
    assert topic.received() == alerts


def test_no_alerts_make_no_request(topic: Topic) -> None:
    assert AlertTopic(topic.sns, topic.arn).publish([]) == []
    assert topic.requests == []


def test_a_request_stays_under_256_kib(topic: Topic) -> None:
    big = 100 * 1024  # two fit in one request, three do not
    alerts = [alert(index, text=f"{index}" + "x" * big) for index in range(5)]

    assert AlertTopic(topic.sns, topic.arn).publish(alerts) == []

    assert sorted(len(entries) for entries in topic.requests) == [1, 2, 2]
    for entries in topic.requests:
        assert sum(len(e["Message"].encode("utf-8")) for e in entries) <= MAX_REQUEST_BYTES
    assert len(topic.received()) == 5


def test_a_refused_request_is_retried_once(topic: Topic) -> None:
    Fault(topic.sns, "PublishBatch", "InternalError", status=500, when=lambda n: n == 1)

    assert AlertTopic(topic.sns, topic.arn).publish([alert(i) for i in range(3)]) == []
    assert len(topic.received()) == 3


def test_a_request_refused_twice_returns_all_its_positions(topic: Topic) -> None:
    # 15 alerts: the first request (0-9) goes through, the second (10-14) and its retry fail.
    Fault(topic.sns, "PublishBatch", "AuthorizationError", status=403, when=lambda n: n > 1)

    unpublished = AlertTopic(topic.sns, topic.arn).publish([alert(i) for i in range(15)])

    assert unpublished == [10, 11, 12, 13, 14]
    assert sorted(a["record_id"] for a in topic.received()) == sorted(f"r-{i}" for i in range(10))


def test_a_connection_failure_returns_the_positions_instead_of_raising(topic: Topic) -> None:
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sns.invalid")

    topic.sns.meta.events.register("before-call.sns.PublishBatch", unreachable)

    assert AlertTopic(topic.sns, topic.arn).publish([alert(0), alert(1)]) == [0, 1]
    assert topic.received() == []


def entries(*positions: int) -> list[dict[str, str]]:
    return [{"Id": str(p), "Message": json.dumps(alert(p))} for p in positions]


def reply(published: list[int], failed: list[int]) -> dict[str, Any]:
    return {
        "Successful": [{"Id": str(p), "MessageId": f"m-{p}"} for p in published],
        "Failed": [
            {"Id": str(p), "Code": "InternalError", "SenderFault": False, "Message": "busy"}
            for p in failed
        ],
    }


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("sns", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expect(stubber: Stubber, sent: list[int], published: list[int], failed: list[int]) -> None:
    stubber.add_response(
        "publish_batch",
        reply(published, failed),
        {"TopicArn": STUBBED_TOPIC, "PublishBatchRequestEntries": entries(*sent)},
    )


def test_failed_entries_are_retried_once_alone(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    expect(stubber, sent=[0, 1, 2, 3], published=[0, 2], failed=[1, 3])
    expect(stubber, sent=[1, 3], published=[1, 3], failed=[])

    assert AlertTopic(client, STUBBED_TOPIC).publish([alert(i) for i in range(4)]) == []


class _FailingEntries:
    """A client whose PublishBatch fails the entries with the given Ids (as many times as
    given), answering requests from several threads; each request waits at `barrier` first, so
    the first requests must be in flight together."""

    def __init__(self, failing: dict[int, int], barrier: threading.Barrier) -> None:
        self.failing, self.barrier = dict(failing), barrier
        self.sent: list[list[int]] = []
        self._lock = threading.Lock()

    def publish_batch(self, TopicArn: str, PublishBatchRequestEntries: list[dict]) -> dict:
        ids = [int(entry["Id"]) for entry in PublishBatchRequestEntries]
        with self._lock:
            first_round = len(self.sent) < self.barrier.parties
            self.sent.append(ids)
            failed = [i for i in ids if self.failing.get(i, 0) > 0]
            for i in failed:
                self.failing[i] -= 1
        if first_round:
            self.barrier.wait()
        return reply([i for i in ids if i not in failed], failed)


def test_entries_failing_twice_are_returned_by_position() -> None:
    """Requests go out in parallel (both first requests wait for each other); an entry that
    fails is retried once alone, and those failing twice are returned."""
    client = _FailingEntries({4: 2, 11: 1, 12: 2}, threading.Barrier(2, timeout=10))

    failed = AlertTopic(client, STUBBED_TOPIC).publish([alert(i) for i in range(13)])  # type: ignore[arg-type]

    assert sorted(failed) == [4, 12]
    assert sorted(client.sent) == sorted([list(range(10)), [4], [10, 11, 12], [11, 12]])


def test_a_request_error_on_the_retry_returns_the_retried_positions(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    expect(stubber, sent=[0, 1, 2], published=[1], failed=[0, 2])
    stubber.add_client_error("publish_batch", "ThrottlingException", http_status_code=400)

    assert AlertTopic(client, STUBBED_TOPIC).publish([alert(i) for i in range(3)]) == [0, 2]


# --- Message attributes for subscription filter policies (issue 18) -------------------------

CLIENT_FILTER = {"owner": ["desk-a"], "status": ["rejected"]}


def _rejection(record_id: str, owner: str) -> dict[str, Any]:
    item = {"record_id": record_id, "owner": owner}
    return rejection_alert(item, "run-1", 7)


def test_each_entry_carries_owner_status_and_run_as_string_attributes(topic: Topic) -> None:
    alerts = [_rejection("r-1", "desk-a"), failed_batch_alert("run-1", "batch-00002", "x", 3)]

    assert AlertTopic(topic.sns, topic.arn).publish(alerts) == []

    ((rejected, failed),) = topic.requests
    assert rejected["MessageAttributes"] == {
        "owner": {"DataType": "String", "StringValue": "desk-a"},
        "status": {"DataType": "String", "StringValue": "rejected"},
        "run": {"DataType": "String", "StringValue": "run-1"},
    }
    assert failed["MessageAttributes"] == {
        "status": {"DataType": "String", "StringValue": "batch_failed"},
        "run": {"DataType": "String", "StringValue": "run-1"},
    }, "a failed batch has no owner"
    assert message_attributes({"text": "t"}) == {}
    assert json.loads(rejected["Message"]) == alerts[0], "the message itself is unchanged"


def test_a_queue_subscribed_with_a_filter_policy_receives_only_its_owners_rejections(
    topic: Topic,
) -> None:
    client_url = topic.sqs.create_queue(QueueName="desk-a-rejections")["QueueUrl"]
    client_arn = topic.sqs.get_queue_attributes(QueueUrl=client_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    topic.sns.subscribe(
        TopicArn=topic.arn,
        Protocol="sqs",
        Endpoint=client_arn,
        Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps(CLIENT_FILTER)},
    )
    alerts = [
        *(_rejection(f"a-{i}", "desk-a") for i in range(12)),
        *(_rejection(f"b-{i}", "desk-b") for i in range(5)),
        {**failed_batch_alert("run-1", "batch-00001", "x", 2), "owner": "desk-a"},
        failed_batch_alert("run-1", "batch-00002", "x", 2),
    ]

    assert AlertTopic(topic.sns, topic.arn).publish(alerts) == []

    assert sorted(len(entries) for entries in topic.requests) == [9, 10], "PublishBatch"
    received: list[dict[str, Any]] = []
    while reply := topic.sqs.receive_message(QueueUrl=client_url, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        received.extend(json.loads(message["Body"]) for message in reply)
    assert sorted(a["record_id"] for a in received) == sorted(f"a-{i}" for i in range(12))
    assert len(topic.received()) == len(alerts), "the unfiltered subscriber gets every alert"


def test_the_attributes_count_toward_a_requests_256_kib(topic: Topic) -> None:
    owner = "o" * 1000  # about 1 KiB of attributes per message
    empty = len(json.dumps({**_rejection("r-0", owner), "text": ""}))
    # Each message is 200 bytes short of half a request: two fit alone, not with attributes.
    text = "x" * (MAX_REQUEST_BYTES // 2 - 200 - empty)
    alerts = [{**_rejection(f"r-{i}", owner), "text": text} for i in range(2)]
    assert sum(len(json.dumps(a).encode()) for a in alerts) == MAX_REQUEST_BYTES - 400

    assert AlertTopic(topic.sns, topic.arn).publish(alerts) == []

    assert [len(entries) for entries in topic.requests] == [1, 1]
    assert len(topic.received()) == 2
