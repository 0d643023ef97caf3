"""Shows the messages published to the system's SNS topics that the Slack channel would get.

A queue of the embedded endpoint, made for the console and not part of the template, subscribes
to every topic with the Slack forwarder's filter policy (entrix.aws.alerts.PEOPLE_FILTER_POLICY):
each run's rejection digest, failed batches and runs never ready, but not the per-order
rejections, which are for clients' own subscriptions (a run of 100,000 orders would print
thousands of lines). A background thread long-polls it and hands each message, as one readable
text (`entrix.auction.messages.slack_payload`: the alert's line and its fields; the deployed
forwarder posts the same content as escaped Block Kit fields), to `show`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from entrix.auction.messages import slack_payload
from entrix.aws.alerts import PEOPLE_FILTER_POLICY

CONSOLE_QUEUE_NAME = "entrix-local-console"


class NotificationTap:
    def __init__(self, sns: Any, sqs: Any, topic_arns: list[str], show: Callable[[str, str], None]):
        self.sns = sns
        self.sqs = sqs
        self.topic_arns = topic_arns
        self.show = show  # (topic name, Slack text)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="notifications", daemon=True)
        self._queue_url = ""

    def start(self) -> None:
        self._queue_url = self.sqs.create_queue(QueueName=CONSOLE_QUEUE_NAME)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        for topic_arn in self.topic_arns:
            self.sns.subscribe(
                TopicArn=topic_arn,
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes={"FilterPolicy": json.dumps(PEOPLE_FILTER_POLICY)},
            )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                received = self.sqs.receive_message(
                    QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )
            except Exception:  # noqa: BLE001 - the endpoint is going away, or a blip
                if self._stop.wait(1):
                    return
                continue
            for message in received.get("Messages", []):
                self.show(*_slack_text(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


def _slack_text(body: str) -> tuple[str, str]:
    """(topic name, text) of an SNS envelope delivered to SQS."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return "", body
    if not isinstance(envelope, dict) or "Message" not in envelope:
        return "", body
    topic = str(envelope.get("TopicArn", "")).rsplit(":", 1)[-1]
    return topic, str(slack_payload(envelope["Message"])["text"])
