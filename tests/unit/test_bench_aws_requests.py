"""The benchmark's request classification and cost arithmetic (figures printed by `make bench`)."""

from __future__ import annotations

import copy
import io
import json
import os
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
from bench.pipeline_scale import InterpreterCopyClock

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


def usage(calls: Counter[Call], orders: int = 1_000, transitions: int = 1_500) -> aws_cost.Usage:
    return aws_cost.Usage(
        orders=orders,
        accepted=orders // 2,
        rejected=orders // 2,
        transitions=transitions,
        calls=calls,
        memory_mb={PROCESS: 256, RESULTS: 512},
    )


def by_item(lines: list[aws_cost.LineItem]) -> dict[str, float]:
    return {line.item: line.dollars_per_million for line in lines}


def test_cost_per_million_orders_from_counts() -> None:
    calls = Counter(
        {
            Call("ak", "lambda", "Invoke", target=PROCESS): 1_000,
            Call("ak", "lambda", "Invoke", target=RESULTS): 1,
            Call("entrix-local", "dynamodb", "UpdateItem"): 1_500,
            Call("entrix-local", "dynamodb", "Query"): 1,
            Call("entrix-local", "s3", "PutObject"): 500,
            Call("ak", "sns", "Publish"): 500,
            Call("entrix-local", "sqs", "ReceiveMessage"): 40,
            Call(OBSERVER_KEY, "dynamodb", "Scan"): 9,
        }
    )
    ours = by_item(aws_cost.ours(usage(calls)))
    assert ours["Step Functions Standard transitions"] == pytest.approx(37.5)  # 1.5 x $25/M
    assert ours["Lambda requests"] == pytest.approx(0.2002)
    # 1,000 x 0.25 GB + 1 x 0.5 GB, 60 ms each, per 1,000 orders
    gb_s = (1_000 * 0.25 + 0.5) * 0.06 * 1_000
    lambda_gb_s = f"Lambda GB-s ({aws_cost.ASSUMED_DURATION_MS} ms an invoke, arm64)"
    assert ours[lambda_gb_s] == pytest.approx(gb_s * 0.0000133334)
    assert ours["DynamoDB write units (table)"] == pytest.approx(0.9375)
    assert ours["DynamoDB write units (index)"] == pytest.approx(1.25)  # 2 per order recorded
    assert ours["SNS publishes"] == pytest.approx(0.25)
    assert ours["S3 PUT-class"] == pytest.approx(2.5)
    seed = by_item(aws_cost.seed_style(usage(calls)))
    assert seed["S3 PUT-class"] == pytest.approx(2.5)
    assert not [item for item in seed if item.startswith("DynamoDB")]
    # ours = seed-style + DynamoDB table writes (1.5/order) + index writes (2/order) + reads
    extra = 1.5 * 0.625 + 2 * 0.625 + 0.001 * 0.125
    total_ours = aws_cost.total(aws_cost.ours(usage(calls)))
    total_seed = aws_cost.total(aws_cost.seed_style(usage(calls)))
    assert total_ours - total_seed == pytest.approx(extra)
    assert aws_cost.unpriced(usage(calls)) == Counter({("sqs", "ReceiveMessage"): 40})


def test_batch_write_items_are_billed_as_write_units() -> None:
    calls = Counter({Call("entrix-local", "dynamodb", "BatchWriteItem", items=25): 40})
    lines = {line.item: line for line in aws_cost.ours(usage(calls))}
    assert lines["DynamoDB write units (table)"].per_order == pytest.approx(1.0)


def test_copy_clock_times_only_moto_interpreter_copies() -> None:
    moto_file = os.path.join("site-packages", "moto", "stepfunctions", "parser", "states.py")
    code = compile("copied = copy.deepcopy(value)", moto_file, "exec")
    clock = InterpreterCopyClock()
    value = {"orders": [{"record_id": str(i)} for i in range(1_000)]}
    with clock.installed():
        copy.deepcopy(value)
        assert clock.seconds == 0.0
        namespace = {"copy": copy, "value": value}
        exec(code, namespace)
        assert namespace["copied"] == value
        assert namespace["copied"] is not value
        assert clock.seconds > 0.0
    assert copy.deepcopy is clock._original
    clock.reset()
    assert clock.seconds == 0.0
