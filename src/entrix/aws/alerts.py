"""The alert topic: Slack-style JSON messages, published ten to a request, requests in parallel.

PublishBatch carries up to 10 messages (256 KiB in all) and SNS bills it by 64 KiB of payload,
so a batch of small alerts costs one request instead of ten. Each entry succeeds or fails on its
own; entries SNS reports as failed are retried once, and whatever still fails is returned.

Each message carries the alert's `owner`, `status` and `run` as String message attributes
(those it has: a failed-batch alert has no owner), so a client's system can subscribe to the
topic with a filter policy such as `{"owner": ["desk-a"], "status": ["rejected"]}` and receive
its own rejections only. SNS counts the attributes in the 256 KiB limit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

ENTRIES_PER_REQUEST = 10
# PublishBatch requests in flight at once (the client's connection pool allows as many:
# entrix.aws.clients.PROCESS_CONFIG). Eight keep a 1,000-order batch's 50 requests to about
# 7 rounds (~0.2 s in region) while the Distributed Map's concurrent batches multiply them: the
# local emulator answers one request at a time, and 32 a batch made its replies outlast the
# 5 s read timeout (the retries then published some alerts twice).
PARALLEL_REQUESTS = 8
MAX_REQUEST_BYTES = 256 * 1024
# The alert fields sent as message attributes, for subscription filter policies.
ATTRIBUTES = ("owner", "status", "run")
# What people read (the Slack forwarder, the local console): every message but the per-order
# rejections, which are for clients' own subscriptions; a run's rejections reach people as its
# one digest. SNS delivers to a filtered subscription only messages that carry the attribute
# (`anything-but` needs it, and `exists: false` never matches a message without attributes), so
# every publisher of the topic sends `status`.
PEOPLE_FILTER_POLICY = {"status": [{"anything-but": ["rejected"]}]}


def message_attributes(alert: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The alert's `owner`, `status` and `run` (those it holds, non-empty) as String message
    attributes."""
    return {
        name: {"DataType": "String", "StringValue": str(value)}
        for name in ATTRIBUTES
        if (value := alert.get(name)) not in (None, "")
    }


def _attributes_size(attributes: dict[str, dict[str, str]]) -> int:
    """What SNS counts of the attributes toward the message size: names, types and values."""
    return sum(
        len(name.encode()) + len(value["DataType"]) + len(value["StringValue"].encode())
        for name, value in attributes.items()
    )


class AlertTopic:
    """Publishes alerts; reports which ones could not be published instead of raising."""

    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, alerts: Sequence[dict[str, Any]]) -> list[int]:
        """Publish every alert; the positions in `alerts` of those that were not published."""
        messages = [json.dumps(alert, ensure_ascii=False) for alert in alerts]
        attributes = [message_attributes(alert) for alert in alerts]
        sizes = [
            len(message.encode("utf-8")) + _attributes_size(attrs)
            for message, attrs in zip(messages, attributes, strict=True)
        ]
        requests = _requests(sizes)

        def publish_request(positions: list[int]) -> list[int]:
            unpublished = self._publish(positions, messages, attributes)
            if unpublished:
                unpublished = self._publish(unpublished, messages, attributes)
            return unpublished

        if len(requests) <= 1:
            return [position for chunk in requests for position in publish_request(chunk)]
        with ThreadPoolExecutor(max_workers=min(PARALLEL_REQUESTS, len(requests))) as pool:
            return [
                position for failed in pool.map(publish_request, requests) for position in failed
            ]

    def _publish(
        self,
        positions: list[int],
        messages: list[str],
        attributes: list[dict[str, dict[str, str]]],
    ) -> list[int]:
        entries: list[dict[str, Any]] = []
        for position in positions:
            entry: dict[str, Any] = {"Id": str(position), "Message": messages[position]}
            if attributes[position]:
                entry["MessageAttributes"] = attributes[position]
            entries.append(entry)
        try:
            response = self._client.publish_batch(
                TopicArn=self._topic_arn,
                PublishBatchRequestEntries=entries,  # type: ignore[arg-type]
            )
        except (ClientError, BotoCoreError) as error:
            logger.error("publishing %d alerts failed: %s", len(entries), error)
            return positions
        for failure in response.get("Failed", []):
            logger.error("alert %s not published: %s", failure["Id"], failure.get("Message"))
        return [int(failure["Id"]) for failure in response.get("Failed", [])]


def _requests(sizes: list[int]) -> list[list[int]]:
    """Positions of messages of `sizes` bytes grouped into PublishBatch requests (10 entries,
    256 KiB)."""
    requests: list[list[int]] = []
    current: list[int] = []
    size = 0
    for position, length in enumerate(sizes):
        if current and (len(current) == ENTRIES_PER_REQUEST or size + length > MAX_REQUEST_BYTES):
            requests.append(current)
            current, size = [], 0
        current.append(position)
        size += length
    if current:
        requests.append(current)
    return requests
