"""The alert topic: Slack-style JSON messages, published ten to a request.

PublishBatch carries up to 10 messages (256 KiB in all) and SNS bills it by 64 KiB of payload,
so a batch of small alerts costs one request instead of ten. Each entry succeeds or fails on its
own; entries SNS reports as failed are retried once, and whatever still fails is returned.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

ENTRIES_PER_REQUEST = 10
MAX_REQUEST_BYTES = 256 * 1024


class AlertTopic:
    """Publishes alerts; reports which ones could not be published instead of raising."""

    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, alerts: Sequence[dict[str, Any]]) -> list[int]:
        """Publish every alert; the positions in `alerts` of those that were not published."""
        messages = [json.dumps(alert, ensure_ascii=False) for alert in alerts]
        failed: list[int] = []
        for chunk in _requests(messages):
            unpublished = self._publish(chunk, messages)
            if unpublished:
                unpublished = self._publish(unpublished, messages)
            failed.extend(unpublished)
        return failed

    def _publish(self, positions: list[int], messages: list[str]) -> list[int]:
        entries = [{"Id": str(position), "Message": messages[position]} for position in positions]
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


def _requests(messages: list[str]) -> list[list[int]]:
    """Positions of `messages` grouped into PublishBatch requests (10 entries, 256 KiB)."""
    requests: list[list[int]] = []
    current: list[int] = []
    size = 0
    for position, message in enumerate(messages):
        length = len(message.encode("utf-8"))
        if current and (len(current) == ENTRIES_PER_REQUEST or size + length > MAX_REQUEST_BYTES):
            requests.append(current)
            current, size = [], 0
        current.append(position)
        size += length
    if current:
        requests.append(current)
    return requests
