"""Splitting a run's results into batches, each one child execution of the Distributed Map.

A batch is bounded twice: by orders (how much one Lambda B invocation does) and by bytes (a
child execution's input, the batch plus a few fields, must stay under Step Functions' 256 KiB).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

DEFAULT_MAX_BATCH_ORDERS = 1_000
DEFAULT_MAX_BATCH_BYTES = 200_000


def batched(
    results: Iterable[dict[str, Any]],
    max_orders: int = DEFAULT_MAX_BATCH_ORDERS,
    max_bytes: int = DEFAULT_MAX_BATCH_BYTES,
) -> Iterator[list[dict[str, Any]]]:
    """Consecutive batches of `results`, none over `max_orders` items or `max_bytes` of JSON."""
    if max_orders < 1 or max_bytes < 1:
        raise ValueError("a batch must be allowed at least one order and one byte")
    batch: list[dict[str, Any]] = []
    size = 2  # the brackets of the array
    for result in results:
        result_size = len(json.dumps(result, ensure_ascii=False).encode("utf-8")) + 1
        if result_size + 2 > max_bytes:
            raise ValueError(f"one result is {result_size} bytes, over the {max_bytes} byte batch")
        if batch and (len(batch) == max_orders or size + result_size > max_bytes):
            yield batch
            batch, size = [], 2
        batch.append(result)
        size += result_size
    if batch:
        yield batch
