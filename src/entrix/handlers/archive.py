"""The history archiver: each batch of the orders table's stream as one JSON Lines object.

Lambda's event source mapping hands it up to a batch of stream records; the changes that are
history (entrix.orders.history: received, amended, result, cancelled, expired, removed; not a
run's claims and releases) go to `history/date=D/<first>-<last>.jsonl` in the results bucket,
one line each with exact numbers. The key is the batch's own, so a retried batch overwrites its
object. When the write fails the whole batch is reported failed (its first record), Lambda
retries it, splits it on repeated failure, and sends what still fails to the mapping's
on-failure queue: no change is dropped unseen.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from entrix import settings
from entrix.auction.results import ResultStoreUnavailable, exact_json
from entrix.aws.clients import PIPELINE_CONFIG, client
from entrix.aws.order_stream import change
from entrix.aws.results_store import ResultsStore
from entrix.orders import history

logger = logging.getLogger(__name__)


@functools.cache
def store() -> ResultsStore:
    """The results bucket, made on first use and kept for the warm container."""
    return ResultsStore(client("s3", PIPELINE_CONFIG), settings.RESULTS_BUCKET_NAME.read())


def handler(event: dict[str, Any], context: object) -> dict[str, list[dict[str, str]]]:
    records = event.get("Records") or []
    if not records:
        return {"batchItemFailures": []}
    changes = [change(record) for record in records]
    lines = history.lines(changes)
    if lines:
        key = history.batch_key(changes)
        body = "".join(exact_json(entry) + "\n" for entry in lines).encode("utf-8")
        try:
            store().put_lines(key, body)
        except ResultStoreUnavailable as error:
            logger.error("history of %d changes not written: %s", len(changes), error)
            return {"batchItemFailures": [{"itemIdentifier": changes[0].sequence_number}]}
        logger.info("%d history lines of %d changes in %s", len(lines), len(changes), key)
    return {"batchItemFailures": []}
