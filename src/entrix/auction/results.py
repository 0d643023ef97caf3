"""What processing one order's result means, independent of where it is stored.

Lambda B stores accepted results under a key derived only from the record_id, so a retried or
repeated run overwrites the same object instead of adding a second one. record_ids may hold up to
1,024 UTF-8 bytes of any text, so the key uses their SHA-256, which is short and URL-safe.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from entrix.auction.platform import Status, json_number

RESULTS_PREFIX = "results/"
# Alert texts, `{}` filled in order; the state machine fills them with States.Format, so they must
# not contain the characters States.Format reserves (quote, backslash, literal braces).
REJECTION_TEXT = "Order {} was rejected in auction run {} (power offered: {})."
NOT_READY_TEXT = "Auction results were not ready after {} polls; run {} stopped, nothing processed."


class OrderRejected(Exception):
    """The auction rejected the order: an outcome the state machine routes to the alert topic."""


class ResultStoreUnavailable(Exception):
    """Writing the result object failed; transient, so the state machine retries the order."""


class OrderStoreUnavailable(Exception):
    """Reading or recording the order in the table failed; transient, retried likewise."""


def result_key(record_id: str) -> str:
    """The S3 key of an accepted order's result: the same for every run that processes it."""
    digest = hashlib.sha256(record_id.encode("utf-8")).hexdigest()
    return f"{RESULTS_PREFIX}{digest}.json"


def result_document(item: Mapping[str, Any]) -> bytes:
    """The stored JSON object of an accepted order, built from its recorded table item.

    Built only from the item, so every writer of the same recorded result writes the same bytes.
    """
    document = {
        "record_id": item["record_id"],
        "parameter_1": item["parameter_1"],
        "parameter_2": json_number(item["parameter_2"]),
        "received_at": item.get("received_at"),
        "status": Status.ACCEPTED.value,
        "power": json_number(item["power"]),
        "run_id": item["result_run_id"],
        "result_at": item["result_at"],
    }
    return json.dumps(document, sort_keys=True, ensure_ascii=False).encode("utf-8")


def rejection_text(record_id: str, run_id: str, power: int | float) -> str:
    """The readable line a person sees for a rejected order."""
    return REJECTION_TEXT.format(record_id, run_id, power)
