"""DynamoDB stream event source mappings, emulated: moto records a table's stream but runs no
mapping (its own would invoke functions in Docker).

Every `interval` seconds the poller reads each mapped stream from where it left off (the
mapping's starting position at first) and invokes the function with up to `batch_size` records
in the event AWS sends: `Records`, each with eventName, dynamodb (Keys, NewImage, OldImage,
SequenceNumber, ApproximateCreationDateTime in epoch seconds), eventSourceARN, awsRegion, and
`userIdentity` {"type": "Service", "principalId": "dynamodb.amazonaws.com"} on the deletions
the local TTL sweeper made (moto's stream records them as plain REMOVEs: the sweeper tells the
poller which ones were its own).

A batch that fails (the invocation raised, or reported batch item failures) is invoked again
from the first failed record on the next poll, up to the mapping's MaximumRetryAttempts; then a
record of it goes to the mapping's on-failure queue, shaped as Lambda's (`DDBStreamBatchInfo`),
and the poller moves on. Not emulated: bisecting a failing batch, the batching window (a poll
takes what is there), the stream's 24 h retention (moto keeps every record), several shards
(moto has one).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from entrix.local.lambda_runner import Invocation
from entrix.local.periodic import Periodic

logger = logging.getLogger(__name__)

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


@dataclass(frozen=True)
class StreamMapping:
    """An AWS::Lambda::EventSourceMapping on a DynamoDB stream, as the template defines it."""

    logical_id: str
    function_name: str
    stream_arn: str
    batch_size: int = 100
    starting_position: str = "TRIM_HORIZON"
    retry_attempts: int = 10
    on_failure_arn: str | None = None

    @property
    def table_name(self) -> str:
        """arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<time>"""
        return self.stream_arn.split(":table/", 1)[1].split("/stream/", 1)[0]


class TtlDeletions:
    """The keys the local TTL sweeper deleted, until the poller has seen their REMOVE."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: set[tuple[str, str]] = set()

    def add(self, table_name: str, key: Mapping[str, Any]) -> None:
        with self._lock:
            self._keys.add((table_name, _canonical(key)))

    def take(self, table_name: str, key: Mapping[str, Any]) -> bool:
        """Whether the sweeper deleted `key` (forgotten once told)."""
        entry = (table_name, _canonical(key))
        with self._lock:
            found = entry in self._keys
            self._keys.discard(entry)
            return found


def _canonical(key: Mapping[str, Any]) -> str:
    return json.dumps(key, sort_keys=True)


@dataclass
class _Position:
    iterator: str | None = None
    # A failed batch waiting to be invoked again, and how often it failed.
    pending: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0


class StreamPoller(Periodic):
    """Runs every stream mapping of a deployment on a background thread."""

    def __init__(
        self,
        streams: Any,
        sqs: Any,
        mappings: list[StreamMapping],
        invoke: Callable[[str, Any], Invocation],
        region: str,
        ttl_deletions: TtlDeletions,
        interval: float = 1.0,
    ) -> None:
        super().__init__("stream-poller", interval)
        self.streams = streams
        self.sqs = sqs
        self.mappings = mappings
        self.invoke = invoke
        self.region = region
        self.ttl_deletions = ttl_deletions
        self._positions = {mapping.logical_id: _Position() for mapping in mappings}

    def tick(self) -> None:
        for mapping in self.mappings:
            try:
                self.poll(mapping)
            except Exception:
                logger.exception("polling the stream of %s failed", mapping.logical_id)

    def poll(self, mapping: StreamMapping) -> None:
        """Invoke the mapping's function with its next batch (or the batch that failed)."""
        position = self._positions[mapping.logical_id]
        if not position.pending:
            position.pending = self._read(mapping, position)
        if not position.pending:
            return
        failed_from = self._invoke(mapping, position.pending)
        if failed_from is None:
            position.pending, position.failures = [], 0
            return
        position.failures += 1
        if position.failures > mapping.retry_attempts:
            self._give_up(mapping, position.pending[failed_from:])
            position.pending, position.failures = [], 0
        else:
            position.pending = position.pending[failed_from:]

    def _read(self, mapping: StreamMapping, position: _Position) -> list[dict[str, Any]]:
        if position.iterator is None:
            stream = self.streams.describe_stream(StreamArn=mapping.stream_arn)
            (shard,) = stream["StreamDescription"]["Shards"]
            position.iterator = self.streams.get_shard_iterator(
                StreamArn=mapping.stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType=mapping.starting_position,
            )["ShardIterator"]
        page = self.streams.get_records(ShardIterator=position.iterator, Limit=mapping.batch_size)
        position.iterator = page.get("NextShardIterator")
        return [self._record(mapping, record) for record in page.get("Records", [])]

    def _record(self, mapping: StreamMapping, record: dict[str, Any]) -> dict[str, Any]:
        """A stream record as Lambda hands it to the function."""
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
        event = {
            **record,
            "awsRegion": self.region,
            "eventVersion": "1.1",
            "eventSourceARN": mapping.stream_arn,
            "dynamodb": dynamodb,
        }
        if record["eventName"] == "REMOVE" and self.ttl_deletions.take(
            mapping.table_name, dynamodb["Keys"]
        ):
            event["userIdentity"] = TTL_IDENTITY
        return event

    def _invoke(self, mapping: StreamMapping, records: list[dict[str, Any]]) -> int | None:
        """None when the batch succeeded; else the position of its first failed record."""
        invocation = self.invoke(mapping.function_name, {"Records": records})
        if invocation.errored:
            logger.error("%s failed a stream batch: %s", mapping.function_name, invocation.payload)
            return 0
        reply = invocation.json() if invocation.payload else None
        failures = reply.get("batchItemFailures") if isinstance(reply, dict) else None
        if not failures:
            return None
        failed = {failure["itemIdentifier"] for failure in failures}
        numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
        return min((i for i, number in enumerate(numbers) if number in failed), default=0)

    def _give_up(self, mapping: StreamMapping, records: list[dict[str, Any]]) -> None:
        """Lambda's on-failure record of records it will not retry: where to read them again."""
        logger.error("%s: %d stream records given up on", mapping.logical_id, len(records))
        if mapping.on_failure_arn is None:
            return
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        message = {
            "requestContext": {
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": mapping.retry_attempts + 1,
                "functionArn": mapping.function_name,
            },
            "DDBStreamBatchInfo": {
                "shardId": "local",
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": first.get("ApproximateCreationDateTime"),
                "approximateArrivalOfLastRecord": last.get("ApproximateCreationDateTime"),
                "batchSize": len(records),
                "streamArn": mapping.stream_arn,
            },
        }
        name = mapping.on_failure_arn.rsplit(":", 1)[1]
        queue = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        self.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(message))
