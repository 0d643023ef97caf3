"""Every processed order lands exactly once across results/ and rejections/, whatever fails.

Lambda B's real processor over moto, its clients Lambda B's own kind (entrix.aws.clients with
PROCESS_CONFIG), faults injected at `before-send`, below botocore's retries: a record refused,
a claim refused in a retried invocation, the invocation dying (a BaseException, as a Lambda timeout
ends it: no release, no reply) between its put and its records. After each, the check of
tests/support/results_once.py holds, and the next run records the line an earlier run stored
instead of writing a second one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from moto import mock_aws

from entrix.auction.batch_item import ResultsBatch
from entrix.auction.processing import BatchProcessor
from entrix.auction.results import ObjectChanged
from entrix.aws.alerts import AlertTopic
from entrix.aws.clients import PROCESS_CONFIG, client
from entrix.aws.order_results import OrderResults
from entrix.aws.orders_table import CancelOutcome, OrdersTable
from entrix.aws.results_store import ResultsStore
from tests.support.inject import refused_request
from tests.support.lambda_b_aws import LambdaBAws, lambda_b_aws
from tests.support.moto_orders import OWNER, TABLE, order_key, put_order, table_items
from tests.support.results_once import every_result_once, stored_lines
from tests.support.stored_orders import post_orders

BUCKET = "exactly-once"
LEASE_SECONDS = 1800


def results_key(run_id: str) -> str:
    return f"results/date=2026-11-25/run={run_id}/batch-00001.jsonl"


class Killed(BaseException):
    """The invocation ends here, as a Lambda timeout ends it: nothing after runs."""


def _operation(request: Any) -> dict[str, Any]:
    body = request.body
    document: dict[str, Any] = json.loads(body.decode() if isinstance(body, bytes) else body)
    return document


def is_record(request: Any) -> bool:
    return "SET result_status" in _operation(request)["UpdateExpression"]


def is_claim(record_id: str) -> Callable[[Any], bool]:
    def claim(request: Any) -> bool:
        operation = _operation(request)
        return "SET claimed_by" in operation["UpdateExpression"] and operation["Key"]["order_key"][
            "S"
        ] == order_key(record_id)

    return claim


class UpdateFault:
    """While `on`, every UpdateItem attempt `matches` picks is answered with a 500 (below the
    retries) or, with `kill`, raises Killed from the send itself."""

    def __init__(self, dynamodb: Any, matches: Callable[[Any], bool], kill: bool = False) -> None:
        self.on, self.matches, self.kill = True, matches, kill
        self.hits = 0
        dynamodb.meta.events.register_first("before-send.dynamodb.UpdateItem", self._send)

    def _send(self, request: Any, **_: Any) -> Any:
        if not (self.on and self.matches(request)):
            return None
        self.hits += 1
        if self.kill:
            raise Killed("the invocation ends")
        return refused_request(request, "InternalServerError", 500, "json")


@pytest.fixture
def aws() -> Iterator[LambdaBAws]:
    with mock_aws():
        yield lambda_b_aws(BUCKET)


@pytest.fixture
def lambda_b(aws: LambdaBAws) -> BatchProcessor:
    return processor(aws)


def processor(aws: LambdaBAws) -> BatchProcessor:
    """Lambda B's processor, its clients as the handler makes them (its own on each call)."""
    dynamodb, s3, sns = (client(service, PROCESS_CONFIG) for service in ("dynamodb", "s3", "sns"))
    return BatchProcessor(
        orders=OrderResults(dynamodb, TABLE),
        results=ResultsStore(s3, BUCKET),
        alerts=AlertTopic(sns, aws.topic_arn),
        lease_seconds=LEASE_SECONDS,
    )


def dynamodb_of(processor: BatchProcessor) -> Any:
    orders = processor.orders
    assert isinstance(orders, OrderResults)
    return orders._client


def batch(run_id: str, *orders: tuple[str, str, int]) -> ResultsBatch:
    """A batch of desk-a's orders, (record_id, status, power), at the versions the table holds."""
    items = table_items(client("dynamodb"), TABLE)
    return ResultsBatch.model_validate(
        {
            "run_id": run_id,
            "results_key": results_key(run_id),
            "orders": [
                {
                    "order_key": order_key(record_id),
                    "version": items[record_id]["version"],
                    "status": status,
                    "power": power,
                }
                for record_id, status, power in orders
            ],
        }
    )


def alerts(aws: LambdaBAws) -> list[dict[str, Any]]:
    received = []
    while messages := aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            received.append(json.loads(message["Body"]))
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return received


def check(aws: LambdaBAws, settled: bool = False) -> dict[str, tuple[str, dict[str, Any]]]:
    return every_result_once(
        aws.s3, BUCKET, table_items(aws.dynamodb, TABLE).values(), settled=settled
    )


def counts(outcome: dict[str, Any]) -> tuple[int, int, int, int]:
    return outcome["accepted"], outcome["rejected"], outcome["skipped"], outcome["failed"]


@pytest.mark.parametrize("status", ["accepted", "rejected"])
def test_a_record_failing_after_the_store_leaves_one_line_which_the_next_run_records(
    aws: LambdaBAws, lambda_b: BatchProcessor, status: str
) -> None:
    put_order(aws.dynamodb, "a")
    fault = UpdateFault(dynamodb_of(lambda_b), is_record)

    first = lambda_b.process(batch("run-1", ("a", status, 5)), time.time())

    assert counts(first) == (0, 0, 0, 1) and fault.hits == 3, "each attempt refused"
    item = table_items(aws.dynamodb, TABLE)["a"]
    assert item["result_status"] == "pending" and "claimed_by" not in item
    assert item["stored_in"].endswith("run=run-1/batch-00001.jsonl"), "a line may be there"
    check(aws)
    fault.on = False
    alerts(aws)

    # The next run's platform says otherwise: the stored line is what counts.
    other = "rejected" if status == "accepted" else "accepted"
    second = lambda_b.process(batch("run-2", ("a", other, 9)), time.time())

    assert counts(second)[:2] == ((1, 0) if status == "accepted" else (0, 1))
    ((key, line),) = check(aws, settled=True).values()
    assert (line["run_id"], line["power"], key.split("/")[2]) == ("run-1", 5, "run=run-1")
    assert [(a["record_id"], a["run"]) for a in alerts(aws) if a["status"] == "rejected"] == (
        [("a", "run-1")] if status == "rejected" else []
    ), "a recovered rejection is alerted again (its first alert may have been lost)"


def test_a_retried_invocation_keeps_the_lines_of_its_first_attempt(
    aws: LambdaBAws, lambda_b: BatchProcessor
) -> None:
    """The first attempt stores every line and records a (and b), then dies recording c; the
    retry (same run, same batch) cannot claim a: a's line stays, no line is written twice."""
    for record_id in "abc":
        put_order(aws.dynamodb, record_id)
    dynamodb = dynamodb_of(lambda_b)
    the_batch = batch("run-1", ("a", "accepted", 1), ("b", "rejected", 2), ("c", "accepted", 3))
    dying = UpdateFault(dynamodb, lambda r: is_record(r) and "desk-a#c" in r.body.decode(), True)
    with pytest.raises(Killed):
        lambda_b.process(the_batch, time.time())
    dying.on = False
    recorded = table_items(aws.dynamodb, TABLE)
    assert (recorded["a"]["result_status"], recorded["c"]["result_status"]) == (
        "accepted",
        "pending",
    )

    claim_of_a = UpdateFault(dynamodb, is_claim("a"))
    retry = lambda_b.process(the_batch, time.time())

    assert claim_of_a.hits == 3
    assert counts(retry) == (1, 1, 0, 1), "a not claimed this time; b and c recorded"
    processed = check(aws, settled=True)
    assert sorted(processed) == [order_key(r) for r in "abc"], "a's line was kept"
    assert [line["record_id"] for _, line in stored_lines(aws.s3, BUCKET)] == ["a", "c", "b"]


def test_an_invocation_dying_after_its_put_leaves_lines_the_next_run_records_after_the_lease(
    aws: LambdaBAws, lambda_b: BatchProcessor
) -> None:
    for record_id in "ab":
        put_order(aws.dynamodb, record_id)
    short_lease = BatchProcessor(
        lambda_b.orders, lambda_b.results, lambda_b.alerts, lease_seconds=2
    )
    dying = UpdateFault(dynamodb_of(lambda_b), is_record, kill=True)
    # A whole second's clock: the lease ends 2 s after it, however late in its second it starts.
    whole_second = float(math.floor(time.time()))
    with pytest.raises(Killed):
        short_lease.process(
            batch("run-1", ("a", "accepted", 1), ("b", "rejected", 2)), whole_second
        )
    dying.on = False
    stored = check(aws)
    assert stored == {}, "nothing recorded"
    with pytest.raises(AssertionError, match="settled, yet pending"):
        check(aws, settled=True)  # no later run has taken the lines up yet
    assert len(stored_lines(aws.s3, BUCKET)) == 2
    claimed = table_items(aws.dynamodb, TABLE)
    assert {claimed[r]["claimed_by"] for r in "ab"} == {"run-1"}

    # The lease ends (real time: the claim's end is compared with the clock of the next claim).
    lease_end = max(int(claimed[r]["claim_expires_at"]) for r in "ab")
    while time.time() < lease_end + 1:
        time.sleep(0.1)
    # The owner can neither amend nor cancel an order a line of which may be stored: it is
    # being processed.
    status, reply = post_orders(
        aws.dynamodb,
        TABLE,
        [{"record_id": "a", "parameter_1": "changed", "parameter_2": 3}],
        OWNER,
        time.time(),
    )
    assert status == 409 and reply["refused"][0]["state"] == "claimed", reply
    cancel = OrdersTable(aws.dynamodb, TABLE).cancel(OWNER, "b", time.time(), "2026-11-25T10:09Z")
    assert cancel == CancelOutcome("refused", "claimed")
    alerts(aws)

    second = lambda_b.process(
        batch("run-2", ("a", "accepted", 7), ("b", "accepted", 8)), time.time()
    )

    assert counts(second) == (1, 1, 0, 0)
    processed = check(aws, settled=True)
    assert {line["run_id"] for _, line in processed.values()} == {"run-1"}
    assert len(stored_lines(aws.s3, BUCKET)) == 2, "no second line"
    assert [a["record_id"] for a in alerts(aws)] == ["b"], "b's rejection alerted again"


def test_a_definite_s3_error_leaves_the_order_free_an_ambiguous_one_does_not(
    aws: LambdaBAws, lambda_b: BatchProcessor
) -> None:
    """S3 answering the put with an error: nothing written, stored_in dropped (the owner may
    amend at once). An attempt answered by nothing (a read timeout, retried into errors): the
    put may have landed, so the next claimer looks first."""
    put_order(aws.dynamodb, "a")
    results = lambda_b.results
    assert isinstance(results, ResultsStore)
    s3 = results._client
    answers: list[str] = []

    def put(request: Any, **_: Any) -> Any:
        if answers.pop(0) == "error":
            return refused_request(request, "InternalError", 500, "rest-xml")
        raise ReadTimeoutError(endpoint_url=request.url)

    s3.meta.events.register_first("before-send.s3.PutObject", put)

    answers[:] = ["error"] * 3
    lambda_b.process(batch("run-1", ("a", "accepted", 1)), time.time())
    assert "stored_in" not in table_items(aws.dynamodb, TABLE)["a"]

    answers[:] = ["no answer", "error", "error"]
    lambda_b.process(batch("run-2", ("a", "accepted", 1)), time.time())
    item = table_items(aws.dynamodb, TABLE)["a"]
    assert item["stored_in"] == results_key("run-2") and "claimed_by" not in item


def test_s3_refuses_a_write_over_an_object_changed_since_it_was_read(
    aws: LambdaBAws, lambda_b: BatchProcessor
) -> None:
    """The conditions hold in moto as in S3: no object yet (IfNoneMatch), or its ETag (IfMatch)."""
    results = lambda_b.results
    assert isinstance(results, ResultsStore)
    key = results_key("run-1")
    results.put_lines_over(key, b"first\n", None)
    with pytest.raises(ObjectChanged):
        results.put_lines_over(key, b"not first\n", None)
    etag = results.read_object(key)[1]
    assert etag is not None
    results.put_lines_over(key, b"first\nsecond\n", etag)
    with pytest.raises(ObjectChanged):
        results.put_lines_over(key, b"first\nstale\n", etag)
    assert results.read_object(key)[0] == ["first", "second"]


def test_two_invocations_of_a_batch_at_once_keep_each_others_lines(aws: LambdaBAws) -> None:
    """Step Functions retries ProcessBatch while its first invocation still runs: both hold the
    claims. The first claims a and b (its claim of c is refused) and reads the object; the retry
    claims all three, stores and records them before the first one's put. That put is refused
    (the object changed), the first reads it again and records a and b with the retry's lines:
    c's line stays."""
    for record_id in "abc":
        put_order(aws.dynamodb, record_id)
    first, retry = processor(aws), processor(aws)
    the_batch = batch("run-1", ("a", "accepted", 1), ("b", "accepted", 2), ("c", "accepted", 3))
    claim_of_c = UpdateFault(dynamodb_of(first), is_claim("c"))
    retried: list[dict[str, Any]] = []

    def retry_before_the_first_put(**_: Any) -> None:
        if not retried:
            retried.append(retry.process(the_batch, time.time() + 1))

    results = first.results
    assert isinstance(results, ResultsStore)
    results._client.meta.events.register_first(
        "before-send.s3.PutObject", retry_before_the_first_put
    )

    outcome = first.process(the_batch, time.time())

    assert claim_of_c.hits == 3
    assert counts(retried[0]) == (3, 0, 0, 0)
    assert counts(outcome) == (2, 0, 0, 1)
    processed = check(aws, settled=True)
    assert sorted(processed) == [order_key(r) for r in "abc"], "no line lost"
    assert [line["record_id"] for _, line in stored_lines(aws.s3, BUCKET)] == ["a", "b", "c"]
    times = {line["result_at"] for _, line in processed.values()}
    assert len(times) == 1, "a and b recorded with the retry's lines, not the first's"
