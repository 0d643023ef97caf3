"""One pipeline run over thousands of orders under `entrix local`, checked order by order, and
what people see of it: one digest on the console and in `entrix alerts`.

Lambda A's random mode makes up the orders (as the seed's did) and stores them as pending first;
small batches make the Distributed Map run several child executions. The 10,000-order version of
this run is a row of `make bench` (about a minute there); this one keeps `make test` quick.
The last test runs Lambda A's random mode in process, enforcement on, with and without the
`dynamodb:BatchWriteItem` that only the random-mode template grants it.
"""

import json
import time

import pytest

from entrix.handlers.results import SIMULATOR_OWNER
from entrix.local import harness, synth
from tests.local.test_enforcement import without_action
from tests.support.enforced import record_checks
from tests.support.local_process import running_local

pytestmark = pytest.mark.e2e

ORDERS = 2_000
BATCH = 500
RESULTS = "entrix.handlers.results.handler"


@pytest.fixture(scope="module")
def local():
    """The service synthesized in random mode: its Lambda A may write the orders it makes up
    (switching the mode on the function alone is refused, as in AWS)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(synth.LOCAL_CONTEXT_VARIABLE, json.dumps({"entrix:auction_mode": "random"}))
        with running_local(
            schedule_seconds=86_400, wide_shares=True
        ) as system:  # only the run this test starts
            yield system


def _stored_lines(local, execution, prefix="results/"):
    """Every JSON Lines document stored for the run under `prefix`, by record_id (each at most
    once)."""
    s3 = local.client("s3")
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    (bucket,) = [name for name in buckets if name.startswith("order-results-")]
    stored = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            if f"/run={execution}/" not in entry["Key"]:
                continue
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            for line in body.decode().splitlines():
                document = json.loads(line)
                assert document["record_id"] not in stored, document
                stored[document["record_id"]] = document
    return stored


def _client_queue(local):
    """A queue subscribed to the alert topic with no filter, as a client's system may be."""
    sqs = local.client("sqs")
    url = sqs.create_queue(QueueName="every-alert")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    (topic,) = [
        topic["TopicArn"]
        for topic in local.client("sns").list_topics()["Topics"]
        if "AlertTopic" in topic["TopicArn"]
    ]
    local.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def _received(local, url):
    """Every alert in the queue, consumed, with its SNS message attributes (as `attributes`)."""
    sqs = local.client("sqs")
    alerts = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            notification = json.loads(message["Body"])
            attributes = {
                name: value["Value"]
                for name, value in notification.get("MessageAttributes", {}).items()
            }
            alerts.append({**json.loads(notification["Message"]), "attributes": attributes})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return alerts


def test_one_run_processes_thousands_of_random_orders_each_stored_or_alerted_once(local):
    queue = _client_queue(local)
    local.configure_lambda_a(
        {
            "RESULTS_READY_PROBABILITY": "1",
            "AUCTION_MODE": "random",
            "RANDOM_ORDER_COUNT": str(ORDERS),
            "BATCH_MAX_ORDERS": str(BATCH),
        },
    )

    result = local.cli("pipeline", "run")

    summary = json.loads(result.stdout)
    assert result.returncode == 0, (summary, result.stderr)
    assert summary["status"] == "SUCCEEDED", summary
    assert summary["orders"] == ORDERS
    assert summary["batches"] == ORDERS // BATCH
    assert summary["failed"] == summary["skipped"] == 0, local.output[-6000:]
    assert summary["accepted"] + summary["rejected"] == ORDERS
    assert 0 < summary["accepted"] < ORDERS, "random results: both outcomes occur"

    stored = _stored_lines(local, summary["execution"])
    assert len(stored) == summary["accepted"]
    assert all(document["status"] == "accepted" for document in stored.values())
    assert {document["owner"] for document in stored.values()} == {SIMULATOR_OWNER}
    run = summary["execution"]
    rejections = [a for a in _received(local, queue) if a["status"] == "rejected"]
    assert {alert["run"] for alert in rejections} == {run}
    assert {alert["owner"] for alert in rejections} == {SIMULATOR_OWNER}
    # Each carries what a client's filter policy selects on: its owner, status and run.
    for alert in rejections:
        assert alert["attributes"] == {"owner": SIMULATOR_OWNER, "status": "rejected", "run": run}
    alerted = {alert["record_id"] for alert in rejections}
    assert len(alerted) == len(rejections) == summary["rejected"]
    assert all(record_id.startswith("random-") for record_id in alerted | set(stored))
    assert not alerted & set(stored), "an order is either stored or alerted"
    # The run's outcome is auditable from S3 alone: each rejection once under rejections/.
    rejected_lines = _stored_lines(local, run, prefix="rejections/")
    assert set(rejected_lines) == alerted
    assert all(document["status"] == "rejected" for document in rejected_lines.values())

    # People read one digest for the run, on the console and in `entrix alerts`; the console
    # names no rejected order on a line of its own.
    digest = f"{summary['rejected']} of {ORDERS} orders were rejected in auction run {run}"
    deadline = time.monotonic() + 60  # a guard against a hang, not a speed check
    while not (
        any(f'[pipeline] {{"execution": "{run}"' in line for line in local.lines)
        and any(digest in line for line in local.lines)
    ):
        assert time.monotonic() < deadline, local.output[-3000:]
        time.sleep(0.2)
    assert sum(digest in line for line in local.lines) == 1, local.output[-3000:]
    assert not any(" was rejected in auction run " in line for line in local.lines)
    listed = local.cli("alerts")
    assert listed.returncode == 0, listed.stderr
    assert sum(digest in line for line in listed.stdout.splitlines()) == 1, listed.stdout
    assert f'[pipeline] {{"execution": "{run}"' in listed.stdout


@pytest.mark.parametrize("granted", [True, False], ids=["granted", "grant-removed"])
def test_random_mode_writes_its_orders_only_with_lambda_as_batch_write_grant(granted, tmp_path):
    """Under enforcement, in the random-mode template: Lambda A's made-up orders are stored with
    its `dynamodb:BatchWriteItem`, and refused by name without it (nothing stored, the poll
    fails)."""
    source, _ = synth.ensure_template(synth.project_root(), {"entrix:auction_mode": "random"})
    template = json.loads(source.read_text())
    if not granted:
        without_action(template, RESULTS, "dynamodb:BatchWriteItem")
    path = tmp_path / f"{synth.STACK_NAME}.template.json"
    path.write_text(json.dumps(template))
    with record_checks() as checks, harness.in_process(path) as system:
        lambda_a = harness.function_with_handler(system, RESULTS)
        harness.reconfigure(
            system.endpoint.client("lambda"),
            lambda_a,
            {"RESULTS_READY_PROBABILITY": "1", "RANDOM_ORDER_COUNT": "30"},
        )
        invocation = system.invoke(lambda_a, {"run_id": "random-enforced"})
        table = harness.orders_table(system)
        stored = system.endpoint.client("dynamodb").scan(TableName=table)["Items"]

    writes = [
        (call, refusal) for call, refusal in checks.decided if call.operation == "BatchWriteItem"
    ]
    assert writes, checks.decided
    assert {call.function for call, _ in writes} == {lambda_a}
    if granted:
        assert not invocation.errored, invocation.payload
        assert invocation.json()["order_count"] == 30
        assert len(stored) == 30
        assert checks.refused == []
    else:
        assert invocation.errored
        assert "30 synthetic orders were not stored" in invocation.json()["errorMessage"]
        assert stored == []
        ((_, refusal),) = writes  # a refusal is not retried
        assert refusal is not None and refusal.code == "AccessDeniedException"
        assert "not authorized to perform: dynamodb:BatchWriteItem on resource: " in (
            refusal.message
        )
        assert f"table/{table} because no identity-based policy allows" in refusal.message
