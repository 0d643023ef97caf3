"""A run's rejection digest: the one message about its rejections that people read.

Lambda B publishes every rejected order on the alert topic, so a client's system can take its
own; at 100,000 orders a run that is far more than a Slack channel can carry or a person can
read. The Slack subscription filters those out (status `rejected`), and the run-summary step
publishes this digest instead: how many of the run's orders were rejected, the first few as
examples, and where the full list is. It imports nothing beyond the standard library: the
run-summary function stays small at a cold start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from entrix.auction.outcomes import REJECTED_EXAMPLES

DIGEST_STATUS = "rejection_digest"
# `{}` filled in order: rejected, orders, run, the rejections' S3 URL.
DIGEST_TEXT = "{} of {} orders were rejected in auction run {}; the full list: {}"
# Examples a digest quotes at most, in batch order.
DIGEST_EXAMPLES = 5
EXAMPLE_FIELDS = ("record_id", "owner", "power")


def rejections_url(bucket: str, prefix: str) -> str:
    """Where a run's rejections objects are, as an S3 URL."""
    return f"s3://{bucket}/{prefix}"


def rejection_digest(
    run_id: str,
    orders: int,
    batches: Iterable[Mapping[str, Any]],
    bucket: str,
    rejections_prefix: str,
) -> dict[str, Any] | None:
    """The run's digest from its batches' replies, or None when none of its orders was rejected.

    A batch names at most a few rejected examples (entrix.auction.outcomes); the digest quotes
    the first DIGEST_EXAMPLES of them across batches. A reply without examples (a batch the
    state machine counted as failed, or one from before Lambda B named them) adds none.
    """
    rejected = 0
    examples: list[dict[str, Any]] = []
    for batch in batches:
        rejected += int(batch.get("rejected", 0))
        named = batch.get(REJECTED_EXAMPLES)
        for example in named if isinstance(named, list) else []:
            if len(examples) < DIGEST_EXAMPLES and isinstance(example, Mapping):
                examples.append({field: example.get(field) for field in EXAMPLE_FIELDS})
    if rejected <= 0:
        return None
    url = rejections_url(bucket, rejections_prefix)
    return {
        "text": DIGEST_TEXT.format(rejected, orders, run_id, url),
        "status": DIGEST_STATUS,
        "run": run_id,
        "rejected": rejected,
        "orders": orders,
        "examples": examples,
        "rejections": url,
    }
