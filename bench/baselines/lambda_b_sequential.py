"""Lambda B as it was at commit cb46575, kept as the baseline of the Lambda B latency row: one
order at a time, each claim and each record a request of its own, waited for before the next.

A copy of that commit's handler (`entrix.handlers.process`), its batch algorithm
(`entrix.auction.processing.BatchProcessor.process`) and the AWS calls it made through
`OrderResults.claim/record/release`, `ResultsStore.put_lines` and `AlertTopic.publish`, with its
stores passed in instead of made from the environment. What formats a line or an alert (the
domain's `result_line`, `rejection_alert`, ...) and the batch contract are imported: they are not
what the row compares.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from entrix.auction.batch_item import OrderResult, ResultsBatch
from entrix.auction.platform import Status
from entrix.auction.results import failed_batch_alert, json_lines, rejection_alert, result_line
from entrix.aws.orders_table import plain_item
from entrix.orders.numbers import number_text
from entrix.telemetry import correlated, publish
from entrix.timestamps import iso_milliseconds

OUTCOMES = ("accepted", "rejected", "skipped", "failed")
ENTRIES_PER_REQUEST = 10
MAX_REQUEST_BYTES = 256 * 1024
ATTRIBUTES = ("owner", "status", "run")
_AVAILABLE_TO_RUN = (
    "version = :version AND ("
    "(result_status = :pending AND expires_at > :now AND ("
    "attribute_not_exists(claimed_by) OR claimed_by = :run OR claim_expires_at < :now))"
    " OR result_run_id = :run)"
)
_CLAIMED_BY_RUN = (
    "version = :version AND ("
    "(result_status = :pending AND claimed_by = :run) OR result_run_id = :run)"
)


class StoreUnavailable(Exception):
    """A request to the table or the bucket failed (the baseline's OrderStoreUnavailable and
    ResultStoreUnavailable in one)."""


@dataclass(frozen=True)
class Stores:
    """Lambda B's clients and resources: the orders table, the results bucket, the alert topic."""

    dynamodb: Any
    s3: Any
    sns: Any
    table_name: str
    bucket: str
    topic_arn: str
    lease_seconds: int


def handler(event: dict[str, Any], stores: Stores) -> dict[str, int]:
    """cb46575's `entrix.handlers.process.handler` over `stores`."""
    batch = ResultsBatch.model_validate(event)
    with correlated(batch.run_id):
        outcome = process(stores, batch, time.time())
        publish(
            "process",
            ResultsAccepted=outcome["accepted"],
            ResultsRejected=outcome["rejected"],
            ResultsSkipped=outcome["skipped"],
            ResultsFailed=outcome["failed"],
        )
    return outcome


def process(stores: Stores, batch: ResultsBatch, clock: float) -> dict[str, int]:
    """Claim each order in turn, store the accepted ones' lines and publish the rejected ones'
    alerts, then record each order in turn (cb46575's BatchProcessor.process)."""
    now = math.floor(clock)
    result_at = iso_milliseconds(clock)
    counts: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))
    accepted: list[tuple[OrderResult, Mapping[str, Any]]] = []
    rejected: list[tuple[OrderResult, Mapping[str, Any]]] = []
    for order in batch.orders:
        try:
            item = _update(
                stores,
                order.order_key,
                order.version,
                "SET claimed_by = :run, claim_expires_at = :until",
                _AVAILABLE_TO_RUN,
                batch.run_id,
                {
                    ":until": {"N": str(now + stores.lease_seconds)},
                    ":now": {"N": str(now)},
                },
            )
        except StoreUnavailable:
            counts["failed"] += 1
            continue
        if item is None:
            counts["skipped"] += 1
        elif order.status is Status.ACCEPTED:
            accepted.append((order, item))
        else:
            rejected.append((order, item))

    finished: list[OrderResult] = []
    unfinished: list[OrderResult] = []
    if accepted:
        body = json_lines(
            result_line(item, Status.ACCEPTED.value, order.power, batch.run_id, result_at)
            for order, item in accepted
        )
        try:
            stores.s3.put_object(
                Bucket=stores.bucket,
                Key=batch.results_key,
                Body=body,
                ContentType="application/x-ndjson",
            )
            finished.extend(order for order, _ in accepted)
        except (ClientError, BotoCoreError):
            unfinished.extend(order for order, _ in accepted)
    if rejected:
        alerts = [rejection_alert(item, batch.run_id, o.power) for o, item in rejected]
        not_published = set(publish_alerts(stores, alerts))
        for position, (order, _) in enumerate(rejected):
            (unfinished if position in not_published else finished).append(order)

    for order in finished:
        try:
            recorded = _update(
                stores,
                order.order_key,
                order.version,
                "SET result_status = :status, power = :power, result_run_id = :run, "
                "result_at = :at REMOVE claimed_by, claim_expires_at, pending_shard",
                _CLAIMED_BY_RUN,
                batch.run_id,
                {
                    ":status": {"S": order.status.value},
                    ":power": {"N": number_text(order.power)},
                    ":at": {"S": result_at},
                },
            )
        except StoreUnavailable:
            unfinished.append(order)
            continue
        counts[order.status.value if recorded is not None else "skipped"] += 1

    for order in unfinished:
        _release(stores, order.order_key, batch.run_id)
        counts["failed"] += 1
    if counts["failed"]:
        reason = "a store, the alert topic or the orders table was unavailable"
        publish_alerts(
            stores, [failed_batch_alert(batch.run_id, batch.results_key, reason, counts["failed"])]
        )
    return dict(counts)


def _update(
    stores: Stores,
    order_key: str,
    version: str,
    update: str,
    condition: str,
    run_id: str,
    values: dict[str, Any],
) -> dict[str, Any] | None:
    try:
        response = stores.dynamodb.update_item(
            TableName=stores.table_name,
            Key={"order_key": {"S": order_key}},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues={
                ":pending": {"S": "pending"},
                ":run": {"S": run_id},
                ":version": {"S": version},
                **values,
            },
            ReturnValues="ALL_NEW",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return None
        raise StoreUnavailable(str(error)) from error
    except BotoCoreError as error:
        raise StoreUnavailable(str(error)) from error
    return plain_item(response["Attributes"])


def _release(stores: Stores, order_key: str, run_id: str) -> None:
    """Give up the claim; when that fails, it ends with its lease."""
    with contextlib.suppress(ClientError, BotoCoreError):
        stores.dynamodb.update_item(
            TableName=stores.table_name,
            Key={"order_key": {"S": order_key}},
            UpdateExpression="REMOVE claimed_by, claim_expires_at",
            ConditionExpression="claimed_by = :run",
            ExpressionAttributeValues={":run": {"S": run_id}},
        )


def publish_alerts(stores: Stores, alerts: Sequence[dict[str, Any]]) -> list[int]:
    """cb46575's AlertTopic.publish: ten alerts (at most 256 KiB) a PublishBatch, failed entries
    sent once more; the positions of those still not published."""
    messages = [json.dumps(alert, ensure_ascii=False) for alert in alerts]
    attributes = [
        {
            name: {"DataType": "String", "StringValue": str(value)}
            for name in ATTRIBUTES
            if (value := alert.get(name)) not in (None, "")
        }
        for alert in alerts
    ]
    sizes = [
        len(message.encode("utf-8"))
        + sum(
            len(name.encode()) + len(value["DataType"]) + len(value["StringValue"].encode())
            for name, value in attrs.items()
        )
        for message, attrs in zip(messages, attributes, strict=True)
    ]
    failed: list[int] = []
    for chunk in _requests(sizes):
        unpublished = _publish(stores, chunk, messages, attributes)
        if unpublished:
            unpublished = _publish(stores, unpublished, messages, attributes)
        failed.extend(unpublished)
    return failed


def _publish(
    stores: Stores,
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
        response = stores.sns.publish_batch(
            TopicArn=stores.topic_arn, PublishBatchRequestEntries=entries
        )
    except (ClientError, BotoCoreError):
        return positions
    return [int(failure["Id"]) for failure in response.get("Failed", [])]


def _requests(sizes: list[int]) -> list[list[int]]:
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
