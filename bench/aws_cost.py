"""Dollars per million orders from the requests a local pipeline run made, at list prices.

Prices are the us-east-1 list prices in FIELD-NOTES. Lambda duration is not observable locally
(handlers run in this process, next to moto), so each invocation is billed ASSUMED_DURATION_MS at
its function's configured memory on arm64; that is the results-pipeline doc's figure for Lambda B.

Two designs are priced from the same counts of one run:
- ours: every request the endpoint served for the run (SQS excluded: that is the local
  notification tap reading the alert topic, not part of the AWS design), every state transition
  of the execution, and the `pending-results` index writes, which no request shows: recording a
  result changes the index's hash key (`result_status`), which DynamoDB bills as a delete and a
  put in the index, 2 write units per order recorded.
- seed-style: the seed's pipeline as the issue describes it: the same Standard execution (one
  transition chain per order in an inline Map, as counted), the same Lambda requests and SNS
  publishes, and one S3 PUT per accepted order, with no DynamoDB bookkeeping of results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from bench.aws_requests import Call, not_observer

MILLION = 1_000_000
ASSUMED_DURATION_MS = 60
INDEX_WRITE_UNITS_PER_RECORD = 2

LAMBDA_PER_REQUEST = 0.20 / MILLION
LAMBDA_PER_GB_SECOND_ARM64 = 0.0000133334
DYNAMODB_PER_WRITE_UNIT = 0.625 / MILLION
DYNAMODB_PER_READ_UNIT = 0.125 / MILLION
SFN_STANDARD_PER_TRANSITION = 0.025 / 1_000
SNS_PER_PUBLISH = 0.50 / MILLION
S3_PER_PUT = 0.005 / 1_000
S3_PER_GET = 0.0004 / 1_000

DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
DYNAMODB_READS = {"GetItem", "Query", "Scan", "BatchGetItem"}
S3_PUT_CLASS = {"PutObject", "PostObject", "ListObjects", "PutBucket"}
S3_GET_CLASS = {"GetObject", "HeadObject"}


@dataclass(frozen=True)
class Usage:
    """What one pipeline run used, and how many orders it recorded a result for."""

    orders: int
    accepted: int
    rejected: int
    transitions: int
    calls: Counter[Call]
    memory_mb: Mapping[str, int]  # function name -> configured memory

    def requests(self, service: str, operations: set[str] | None = None) -> int:
        """Requests (BatchWriteItem: items written) to `service`, other than the observer's."""
        return sum(
            times * (call.items if call.operation == "BatchWriteItem" else 1)
            for call, times in self.calls.items()
            if not_observer(call)
            and call.service == service
            and (operations is None or call.operation in operations)
        )

    def lambda_gb_seconds(self) -> float:
        return sum(
            times * self.memory_mb[function_name(call.target)] / 1024 * ASSUMED_DURATION_MS / 1000
            for call, times in self.calls.items()
            if not_observer(call) and call.service == "lambda" and call.operation == "Invoke"
        )


def function_name(target: str) -> str:
    """The function name from an Invoke target, which is a name or a function ARN."""
    return target.rsplit(":function:", 1)[-1].split(":")[0]


@dataclass(frozen=True)
class LineItem:
    item: str
    per_order: float  # billable units per order
    dollars_per_million: float


def ours(usage: Usage) -> list[LineItem]:
    """Our design's bill, per million orders, from the run's counts."""
    index_writes = INDEX_WRITE_UNITS_PER_RECORD * (usage.accepted + usage.rejected)
    table_writes = usage.requests("dynamodb", DYNAMODB_WRITES)
    return [
        *_shared(usage),
        _item(usage, "DynamoDB write units (table)", table_writes, DYNAMODB_PER_WRITE_UNIT),
        _item(usage, "DynamoDB write units (index)", index_writes, DYNAMODB_PER_WRITE_UNIT),
        _item(
            usage,
            "DynamoDB read units (>= 1 a request)",
            usage.requests("dynamodb", DYNAMODB_READS),
            DYNAMODB_PER_READ_UNIT,
        ),
        _item(usage, "S3 PUT-class", usage.requests("s3", S3_PUT_CLASS), S3_PER_PUT),
        _item(usage, "S3 GET-class", usage.requests("s3", S3_GET_CLASS), S3_PER_GET),
    ]


def seed_style(usage: Usage) -> list[LineItem]:
    """The seed-style bill for the same run (see the module docstring)."""
    return [*_shared(usage), _item(usage, "S3 PUT-class", usage.accepted, S3_PER_PUT)]


def _shared(usage: Usage) -> list[LineItem]:
    return [
        _item(
            usage,
            "Step Functions Standard transitions",
            usage.transitions,
            SFN_STANDARD_PER_TRANSITION,
        ),
        _item(usage, "Lambda requests", usage.requests("lambda", {"Invoke"}), LAMBDA_PER_REQUEST),
        _item(
            usage,
            f"Lambda GB-s ({ASSUMED_DURATION_MS} ms an invoke, arm64)",
            usage.lambda_gb_seconds(),
            LAMBDA_PER_GB_SECOND_ARM64,
        ),
        _item(usage, "SNS publishes", usage.requests("sns", {"Publish"}), SNS_PER_PUBLISH),
    ]


def _item(usage: Usage, name: str, count: float, price: float) -> LineItem:
    per_order = count / usage.orders
    return LineItem(name, per_order, per_order * MILLION * price)


def total(items: list[LineItem]) -> float:
    return sum(line.dollars_per_million for line in items)


def unpriced(usage: Usage) -> Counter[tuple[str, str]]:
    """Requests the run made that neither bill prices (shown so nothing is silently dropped)."""
    priced = {
        "dynamodb": DYNAMODB_WRITES | DYNAMODB_READS,
        "s3": S3_PUT_CLASS | S3_GET_CLASS,
        "lambda": {"Invoke"},
        "sns": {"Publish"},
    }
    left: Counter[tuple[str, str]] = Counter()
    for call, times in usage.calls.items():
        if not_observer(call) and call.operation not in priced.get(call.service, set()):
            left[(call.service, call.operation)] += times
    return left
