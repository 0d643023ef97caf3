"""A run's rejections reach people as one digest; the per-order alerts stay for clients.

The synthesized state machine, executed by moto with the real handlers: the run-summary step
writes the digest and the state machine publishes it with `status` and `run` attributes. An SQS
queue subscribed with the Slack forwarder's filter policy (entrix.aws.alerts.PEOPLE_FILTER_POLICY,
the very policy tests/infra finds on the forwarder's subscription) receives what Slack would:
moto applies filter policies to SQS subscriptions as SNS does.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from entrix.auction.digest import DIGEST_EXAMPLES
from entrix.auction.processing import BatchProcessor
from entrix.aws.alerts import PEOPLE_FILTER_POLICY
from tests.pipeline.conftest import (
    ACCEPT,
    MAX_POLLS,
    NOT_READY,
    READY,
    REJECT,
    Pipeline,
    Published,
    received_messages,
)


def _people_queue(pipeline: Pipeline) -> str:
    """A queue subscribed to the alert topic as the Slack forwarder is."""
    sqs = pipeline.client("sqs")
    url = sqs.create_queue(QueueName="people")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pipeline.client("sns").subscribe(
        TopicArn=pipeline.topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps(PEOPLE_FILTER_POLICY)},
    )
    return str(url)


def test_a_run_with_rejections_publishes_exactly_one_digest(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", "b", "c", "d", "e")
    pipeline.script(READY, REJECT, REJECT, ACCEPT, REJECT, ACCEPT)

    described = pipeline.run("run-1")

    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output == {
        "orders": 5,
        "accepted": 2,
        "rejected": 3,
        "skipped": 0,
        "failed": 0,
        "batches": 3,
    }, "the run's output keeps the totals, without the digest"
    ((digest, attributes),) = pipeline.digests()
    assert attributes == {"status": "rejection_digest", "run": "run-1"}
    match = re.fullmatch(
        r"s3://(?P<bucket>[^/]+)/rejections/date=\d{4}-\d\d-\d\d/run=run-1/", digest["rejections"]
    )
    assert match and match["bucket"] == pipeline.bucket, digest["rejections"]
    assert digest["text"] == (
        f"3 of 5 orders were rejected in auction run run-1; the full list: {digest['rejections']}"
    )
    assert (digest["run"], digest["rejected"], digest["orders"]) == ("run-1", 3, 5)
    rejected = {r for r, item in pipeline.items().items() if item["result_status"] == "rejected"}
    assert len(rejected) == 3
    # Lambda B names its rejected examples (entrix.auction.outcomes); a batch that names none
    # gives fewer, never others.
    assert len(digest["examples"]) <= DIGEST_EXAMPLES
    assert {example["record_id"] for example in digest["examples"]} <= rejected
    assert sorted(alert["record_id"] for alert in pipeline.alerts()) == sorted(rejected)


def test_a_run_without_rejections_publishes_no_digest(pipeline: Pipeline) -> None:
    pipeline.add_orders("a", "b", "c")
    pipeline.script(READY, ACCEPT, ACCEPT, ACCEPT)

    assert pipeline.summary("run-1")["rejected"] == 0

    assert pipeline.digests() == []
    assert pipeline.alerts() == []


def test_people_get_the_digest_and_failures_but_no_per_order_rejection(
    pipeline: Pipeline,
) -> None:
    """Slack's view of two runs: one with rejections and a crashed batch, one never ready."""
    people = _people_queue(pipeline)
    pipeline.add_orders("a", "b", "c", "d")
    pipeline.script(READY, ACCEPT, ACCEPT, REJECT, REJECT)
    real_process = BatchProcessor.process

    def crash_on_first_batch(processor: BatchProcessor, batch: Any, *args: Any) -> Any:
        if batch.results_key.endswith("batch-00001.jsonl"):
            raise RuntimeError("simulated bug")
        return real_process(processor, batch, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BatchProcessor, "process", crash_on_first_batch)
        assert pipeline.summary("run-1")["rejected"] == 2
    pipeline.script(*[NOT_READY] * (MAX_POLLS + 5))
    assert pipeline.run("run-2")["status"] == "FAILED"

    seen: list[Published] = received_messages(pipeline.client("sqs"), people)

    assert sorted((body["status"], body["run"]) for body, _ in seen) == [
        ("batch_failed", "run-1"),
        ("not_ready", "run-2"),
        ("rejection_digest", "run-1"),
    ]
    for body, attributes in seen:
        assert attributes == {"status": body["status"], "run": body["run"]}
    # The per-order rejections were published all the same, for clients' own subscriptions.
    rejections = [a for a in pipeline.alerts() if a["status"] == "rejected"]
    assert sorted(alert["record_id"] for alert in rejections) == ["c", "d"]
