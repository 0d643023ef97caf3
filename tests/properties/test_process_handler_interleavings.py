"""Two runs processing a batch of the same orders, their AWS calls interleaved every way.

Runs overlap (the schedule fires every 5 minutes; a slow run may still be working), and Lambda A
of each hands its Lambda B the same pending orders, each with its own draw of results. Lambda B
is many AWS calls (claim each order, write the batch's object, publish the alerts, record each
order, release what failed); here the real `process` of two runs runs in two threads, and every
AWS call waits for its turn in a schedule Hypothesis chooses, so any interleaving of the two
runs' calls can be tried. Whatever the order, each order's result is recorded by one run only,
stored only in that run's object (once across results/ and rejections/, never written by the
other run: tests/support/results_once.py), alerted at most once, and no claim is left behind,
also when a run's objects cannot be written.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Final
from unittest.mock import patch

import boto3
from botocore.config import Config
from botocore.retries.standard import ExponentialBackoff
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from entrix.auction.batch_item import ResultsBatch
from entrix.auction.outcomes import OUTCOMES
from entrix.auction.processing import BatchProcessor
from entrix.aws.alerts import AlertTopic
from entrix.aws.order_results import OrderResults
from entrix.aws.results_store import ResultsStore
from tests.support.inject import refused_request
from tests.support.lambda_b_aws import lambda_b_aws
from tests.support.moto_orders import TABLE, put_order, table_items
from tests.support.results_once import every_result_once
from tests.support.turns import Turns, thread_owner

BUCKET = "interleavings"
REGION: Final = "eu-west-1"
ORDERS = ("a", "b", "c")
RUNS = ("run-0", "run-1")
LEASE_SECONDS = 1800
# Per run: 1 read of the orders, 3 claims, 2 object reads and 2 puts, 1 alert request, 3
# records, releases; a schedule this long covers them all.
SCHEDULE_LENGTH = 32


def items(dynamodb: Any) -> dict[str, dict[str, Any]]:
    return table_items(dynamodb, TABLE)


def every_version(s3: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every version ever written of every results object, with its lines."""
    written = []
    for version in s3.list_object_versions(Bucket=BUCKET).get("Versions", []):
        body = s3.get_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])
        lines = [json.loads(line) for line in body["Body"].read().splitlines()]
        written.append((version["Key"], lines))
    return written


def received_alerts(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    received = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return received


@settings(max_examples=40, deadline=None)
@given(
    statuses=st.tuples(
        *[st.lists(st.sampled_from(["accepted", "rejected"]), min_size=3, max_size=3)] * 2
    ),
    put_fails=st.tuples(st.booleans(), st.booleans()),
    schedule=st.lists(st.sampled_from(RUNS), min_size=SCHEDULE_LENGTH, max_size=SCHEDULE_LENGTH),
)
def test_any_interleaving_of_two_runs_processes_each_order_once(
    statuses: tuple[list[str], list[str]], put_fails: tuple[bool, bool], schedule: list[str]
) -> None:
    with mock_aws(), patch.object(ExponentialBackoff, "delay_amount", return_value=0):
        made = lambda_b_aws(BUCKET)
        dynamodb, s3, sqs = made.dynamodb, made.s3, made.sqs
        topic_arn, queue_url = made.topic_arn, made.queue_url
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        put = {record_id: put_order(dynamodb, record_id) for record_id in ORDERS}

        # Lambda B's own clients, every call of theirs taking its turn.
        turns = Turns(schedule)
        # Standard retries, 3 attempts (as Lambda B's clients); their backoff is not waited for
        # (below): its seconds inside a turn made 40 examples outlast pytest's timeout under load.
        retries = Config(retries={"mode": "standard", "total_max_attempts": 3})
        clients = {
            name: boto3.client(name, region_name=REGION, config=retries)
            for name in ("dynamodb", "s3", "sns")
        }
        for client in clients.values():
            turns.register(client)

        def refuse_failing_puts(request: Any, **_: Any) -> Any:
            """Below botocore's retries, inside the run's turn: every attempt of a failing
            run's put is refused."""
            run = thread_owner()
            if not put_fails[RUNS.index(run)]:
                return None
            return refused_request(request, "SlowDown", 503, "rest-xml")

        clients["s3"].meta.events.register("before-send.s3.PutObject", refuse_failing_puts)
        processor = BatchProcessor(
            orders=OrderResults(clients["dynamodb"], TABLE),
            results=ResultsStore(clients["s3"], BUCKET),
            alerts=AlertTopic(clients["sns"], topic_arn),
            lease_seconds=LEASE_SECONDS,
        )

        keys = {run: f"results/date=2026-11-25/run={run}/batch-00001.jsonl" for run in RUNS}
        outcomes: dict[str, dict[str, int]] = {}
        errors: list[BaseException] = []

        def run_batch(run: str, run_statuses: list[str]) -> None:
            try:
                batch = ResultsBatch.model_validate(
                    {
                        "run_id": run,
                        "results_key": keys[run],
                        "orders": [
                            {
                                "order_key": put[record_id]["order_key"],
                                "version": put[record_id]["version"],
                                "status": status,
                                "power": 7,
                            }
                            for record_id, status in zip(ORDERS, run_statuses, strict=True)
                        ],
                    }
                )
                outcomes[run] = processor.process(batch, time.time())
            except BaseException as error:  # reported by the main thread
                errors.append(error)
            finally:
                turns.finished(run)

        threads = [
            threading.Thread(target=run_batch, name=run, args=(run, run_statuses))
            for run, run_statuses in zip(RUNS, statuses, strict=True)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join(timeout=60)
        finally:
            # However the example ends (pytest's timeout interrupts this join), its threads end
            # with it instead of calling into the next example's moto as run-0 and run-1.
            turns.abandon()
            for thread in threads:
                thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "the runs ended"
        assert not errors, errors
        assert set(outcomes) == set(RUNS)

        final = items(dynamodb)
        winners = {
            record_id: RUNS.index(item["result_run_id"])
            for record_id, item in final.items()
            if item["result_status"] != "pending"
        }
        for record_id, item in final.items():
            assert "claimed_by" not in item, "no claim is left behind"
            if record_id in winners:
                winner = winners[record_id]
                assert item["result_status"] == statuses[winner][ORDERS.index(record_id)]
            else:
                assert any(put_fails), "an order stays pending only when a write failed"

        recorded_counts = sum(o["accepted"] + o["rejected"] for o in outcomes.values())
        assert recorded_counts == len(winners), "each recorded order is counted by one run"
        for outcome in outcomes.values():
            assert sum(outcome[name] for name in OUTCOMES) == len(ORDERS)

        accepted = {r for r, w in winners.items() if statuses[w][ORDERS.index(r)] == "accepted"}
        for key, lines in every_version(s3):
            run = RUNS.index(key.split("/")[2].removeprefix("run="))
            for line in lines:
                assert winners.get(line["record_id"]) == run, "only the recording run writes it"
        processed = every_result_once(s3, BUCKET, final.values())
        assert len(processed) == len(winners), "each recorded order is stored once"
        written = sorted(
            (line["record_id"], line["status"]) for _, lines in every_version(s3) for line in lines
        )
        assert written == sorted(
            (r, "accepted" if r in accepted else "rejected") for r in winners
        ), "each recorded order is written once, in no version of any object twice"

        received = received_alerts(sqs, queue_url)
        alerts = [a for a in received if a["status"] != "batch_failed"]
        failures = {a["run"]: a["orders_to_retry"] for a in received if a not in alerts}
        assert failures == {run: o["failed"] for run, o in outcomes.items() if o["failed"]}, (
            "a run that left orders unfinished says so once, with how many"
        )
        rejected = sorted(set(winners) - accepted)
        assert sorted(a["record_id"] for a in alerts) == rejected, "each rejection alerted once"
        for alert in alerts:
            assert winners[alert["record_id"]] == RUNS.index(alert["run"]), "by the recording run"
