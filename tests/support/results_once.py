"""The exactly-once check of a run's outcome in S3: every line under `results/` and `rejections/`
against the orders table.

- Each processed order (accepted or rejected in the table) has exactly one line across both
  prefixes, under the prefix of its status, for the version the table holds, with the table's
  status, power, run, time and every client field and receipt exactly as the table holds them.
- An order the table shows pending may have at most one line, and only when the item names that
  object (`stored_in`: a run stored the line, then failed before recording it; the next run that
  claims the order records that line) and the line is for the version the table holds. Checked
  `settled` (no run is live, and a later run has had the chance to take up what earlier ones
  left), a pending order has no line: that run recorded it.
- No other line: none for a pending order without `stored_in`, a cancelled order, an order of
  another version, or an order the table does not hold.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from entrix.orders.order_schema import FIELDS

_STATUS_OF_PREFIX = {"results/": "accepted", "rejections/": "rejected"}


def stored_lines(s3: Any, bucket: str) -> list[tuple[str, dict[str, Any]]]:
    """Every line of every object under results/ and rejections/, with its object's key."""
    found = []
    for prefix in _STATUS_OF_PREFIX:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
                assert body.endswith(b"\n"), f"{entry['Key']}: every line ends with a newline"
                for text in body.decode("utf-8").splitlines():
                    found.append((entry["Key"], json.loads(text, parse_float=Decimal)))
    return found


def every_result_once(
    s3: Any, bucket: str, table_items: Iterable[Mapping[str, Any]], settled: bool = False
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Check the rules above; each processed order's (key, line) by its order_key."""
    items = {str(item["order_key"]): item for item in table_items}
    lines: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for key, line in stored_lines(s3, bucket):
        prefix = next(p for p in _STATUS_OF_PREFIX if key.startswith(p))
        assert line["status"] == _STATUS_OF_PREFIX[prefix], f"{key}: {line}"
        lines.setdefault(f"{line['owner']}#{line['record_id']}", []).append((key, line))

    processed = {}
    for order_key, found in lines.items():
        item = items.get(order_key)
        assert item is not None, f"a line for an order the table does not hold: {found}"
        assert len(found) == 1, f"{order_key} has {len(found)} lines: {found}"
        ((key, line),) = found
        assert line["version"] == item["version"], f"a line of another version: {line}, {item}"
        status = item["result_status"]
        if status == "pending":
            assert not settled, f"settled, yet pending {order_key} has a line: {line}, {item}"
            assert item.get("stored_in") == key, (
                f"a line of pending {order_key}, which names no object or another: {item}"
            )
            continue
        assert status in ("accepted", "rejected"), f"a line of a {status} order: {line}"
        assert (line["status"], line["power"], line["run_id"], line["result_at"]) == (
            status,
            item["power"],
            item["result_run_id"],
            item["result_at"],
        ), (line, item)
        for name in (*FIELDS, "owner", "received_at"):
            assert line.get(name) == item.get(name), (name, line, item)
        processed[order_key] = (key, line)
    for order_key, item in items.items():
        if item["result_status"] in ("accepted", "rejected"):
            assert order_key in processed, f"processed {order_key} has no line: {item}"
    return processed
