"""The benchmark's request classification and cost arithmetic (figures printed by `make bench`)."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import pytest

from bench import aws_cost
from bench.aws_requests import (
    OBSERVER_KEY,
    Call,
    CountingMiddleware,
    RequestCounter,
    classify,
    tally,
)
from bench.observed_system import PROCESS_HANDLER, RESULTS_HANDLER, Invoked

PROCESS = "Entrix-Process"
RESULTS = "Entrix-Results"


def environ(
    service: str, method: str = "POST", path: str = "/", key: str = "ak", **headers: str
) -> dict[str, Any]:
    signature = (
        f"AWS4-HMAC-SHA256 Credential={key}/20261125/eu-west-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "HTTP_AUTHORIZATION": signature,
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }


def test_json_protocol_operations_come_from_the_target_header() -> None:
    call = classify(
        environ("dynamodb", X_AMZ_TARGET="DynamoDB_20120810.UpdateItem", key="entrix-local"), b"{}"
    )
    assert call == Call("entrix-local", "dynamodb", "UpdateItem")


def test_batch_write_counts_the_items_it_writes() -> None:
    body = json.dumps(
        {"RequestItems": {"t": [{"PutRequest": {"Item": {}}}] * 25, "u": [{"DeleteRequest": {}}]}}
    ).encode()
    call = classify(environ("dynamodb", X_AMZ_TARGET="DynamoDB_20120810.BatchWriteItem"), body)
    assert (call.operation, call.items) == ("BatchWriteItem", 26)


def test_lambda_invoke_names_the_function() -> None:
    arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{PROCESS}"
    call = classify(environ("lambda", path=f"/2015-03-31/functions/{arn}/invocations"), b"{}")
    assert (call.operation, call.target) == ("Invoke", arn)
    assert aws_cost.function_name(call.target) == PROCESS
    assert aws_cost.function_name(PROCESS) == PROCESS


@pytest.mark.parametrize(
    ("method", "path", "query", "operation"),
    [
        ("PUT", "/bucket/results/abc.json", "", "PutObject"),
        ("GET", "/bucket/results/abc.json", "", "GetObject"),
        ("GET", "/bucket", "", "ListObjects"),
        ("GET", "/bucket", "versions", "GetBucket(versions)"),
    ],
)
def test_s3_operations_from_method_and_path(
    method: str, path: str, query: str, operation: str
) -> None:
    request = environ("s3", method, path)
    request["QUERY_STRING"] = query
    assert classify(request, b"").operation == operation


def test_query_protocol_operations_come_from_the_form() -> None:
    call = classify(environ("sns"), b"Action=Publish&TopicArn=arn&Message=hi")
    assert (call.service, call.operation) == ("sns", "Publish")


def test_middleware_counts_and_passes_the_body_on() -> None:
    seen: list[bytes] = []

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(env["wsgi.input"].read())
        return [b"ok"]

    counter = RequestCounter()
    middleware = CountingMiddleware(app, counter)
    body = b"Action=Publish"
    request = {**environ("sns"), "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    assert middleware(request, None) == [b"ok"]
    assert seen == [body]
    assert tally(counter.snapshot()) == Counter({("sns", "Publish"): 1})
    counter.reset()
    assert not counter.snapshot()


MEASURED = [
    Invoked(RESULTS, RESULTS_HANDLER, 1024, 500.0),
    Invoked(PROCESS, PROCESS_HANDLER, 256, 10_000.0),
]


def usage(
    calls: Counter[Call], orders: int = 1_000, index_key: str = "pending_shard"
) -> aws_cost.Usage:
    return aws_cost.Usage(
        orders=orders,
        accepted=orders // 2,
        rejected=orders // 2,
        parent_transitions=6,
        calls=calls,
        invocations=MEASURED,
        process_memory_mb=256,
        pending_index_key=index_key,
    )


def by_item(lines: list[aws_cost.LineItem]) -> dict[str, float]:
    return {line.item: line.dollars_per_million for line in lines}


BATCH_RUN = Counter(
    {
        # one run of 1,000 orders in one batch: the calls the batched design makes
        Call("ak", "lambda", "Invoke", target=RESULTS): 1,
        Call("ak", "lambda", "Invoke", target=PROCESS): 1,
        Call("entrix-local", "dynamodb", "Query"): 16,
        Call("entrix-local", "dynamodb", "UpdateItem"): 2_000,
        Call("entrix-local", "s3", "PutObject"): 2,
        Call("ak", "s3", "GetObject"): 1,
        Call("entrix-local", "sns", "PublishBatch", items=10): 50,
        Call("entrix-local", "sqs", "ReceiveMessage"): 40,
        Call(OBSERVER_KEY, "dynamodb", "Scan"): 9,
    }
)


def test_our_cost_per_million_orders_from_counted_requests_and_measured_durations() -> None:
    ours = by_item(aws_cost.ours(usage(BATCH_RUN)))
    # parent 6 + 2 per child (1 child), per 1,000 orders, at $25 per million transitions
    assert ours[aws_cost.TRANSITIONS] == pytest.approx(8 / 1_000 * 25)
    assert ours[aws_cost.LAMBDA_REQUESTS] == pytest.approx(2 / 1_000 * 0.20)
    gb_s = 1.0 * 0.5 + 0.25 * 10.0  # measured: 1 GB x 0.5 s + 0.25 GB x 10 s
    assert ours[aws_cost.LAMBDA_GB_SECONDS] == pytest.approx(gb_s * 1_000 * 0.0000133334)
    assert ours[aws_cost.SNS_REQUESTS] == pytest.approx(50 / 1_000 * 0.50)
    assert ours[aws_cost.S3_PUTS] == pytest.approx(2 / 1_000 * 5)
    assert ours[aws_cost.TABLE_WRITES] == pytest.approx(2 * 0.625)  # claim + record
    (index,) = [item for item in ours if item.startswith("DynamoDB write units (pending")]
    assert ours[index] == pytest.approx(0.625), "sparse index: the recorded order leaves it"
    assert aws_cost.unpriced(usage(BATCH_RUN)) == Counter(), "SQS is the local tap, not priced"


def test_an_index_keyed_on_result_status_is_billed_a_delete_and_a_put_per_record() -> None:
    lines = by_item(aws_cost.ours(usage(BATCH_RUN, index_key="result_status")))
    (index,) = [item for item in lines if item.startswith("DynamoDB write units (pending")]
    assert lines[index] == pytest.approx(2 * 0.625)


def test_seed_style_pays_per_order_for_transitions_lambda_and_s3_and_no_dynamodb() -> None:
    seed = by_item(aws_cost.seed_style(usage(BATCH_RUN)))
    # 6 parent states + 1 per order + 1 per rejected order
    assert seed[aws_cost.TRANSITIONS] == pytest.approx((6 + 1_000 + 500) / 1_000 * 25)
    assert seed[aws_cost.LAMBDA_REQUESTS] == pytest.approx(1_001 / 1_000 * 0.20)
    assert seed[aws_cost.S3_PUTS] == pytest.approx(0.5 * 5)
    assert seed[aws_cost.SNS_REQUESTS] == pytest.approx(0.5 * 0.50)
    assert not [item for item in seed if item.startswith("DynamoDB")]
    ours_total = aws_cost.total(aws_cost.ours(usage(BATCH_RUN)))
    assert ours_total <= 0.10 * aws_cost.total(aws_cost.seed_style(usage(BATCH_RUN)))


def test_batch_write_items_are_billed_as_write_units() -> None:
    calls = Counter({Call("entrix-local", "dynamodb", "BatchWriteItem", items=25): 40})
    lines = {line.item: line for line in aws_cost.ours(usage(calls))}
    assert lines[aws_cost.TABLE_WRITES].per_order == pytest.approx(1.0)
