"""A field added to the order model reaches every place an order's fields go, or a test fails.

The model (entrix.orders.model.Order) is the one home of the client's fields: the validator's
schema, the table item, GET's replies, the results' S3 line and the OpenAPI document derive
theirs from it. This test does what an engineer adding a field does, on a copy of the package:
it adds two fields to `class Order` in model.py (a required text field and an optional number,
as `delivery_hour` would be), runs the two generators (`make order-schema`, `make openapi`),
then, in a fresh interpreter that imports the copy, stores orders through POST /orders' handler,
reads the table, GET /orders/{record_id} and GET /orders, runs Lambda B on the accepted order
(moto), and reads its line from the results bucket. Each place must carry the new fields as
sent, and an optional field left out must be absent everywhere (not null).

A place that lists the fields by hand, or reads them at a time the copy cannot reach, drops the
new fields and fails here, naming the place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import entrix

PACKAGE = Path(entrix.__file__).resolve().parent
REPOSITORY = Path(__file__).resolve().parents[2]

# The lines an engineer adds to `class Order` (types from model.py itself).
NEW_FIELDS = (
    "    portfolio: Parameter1\n",
    "    delivery_hour: Annotated[DynamoDBNumber, OPTIONAL]\n",
)
OWNER = "desk-a"
BUCKET = "results-fields-test"
RESULTS_KEY = "results/date=2026-11-25/run=run-fields/batch-00001.jsonl"
# One order with every new field, one leaving the optional one out.
ORDERS = [
    {
        "record_id": "with-hour",
        "parameter_1": "buy",
        "parameter_2": 2.5,
        "portfolio": "north",
        "delivery_hour": 7,
    },
    {"record_id": "without-hour", "parameter_1": "sell", "parameter_2": -1, "portfolio": "south"},
]


def add_fields(model_source: str) -> str:
    """model.py with NEW_FIELDS added at the end of `class Order`; fails if there is none."""
    lines = model_source.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if re.match(r"class Order\(", line)]
    assert len(starts) == 1, "model.py has no single `class Order(`: update this test"
    end = starts[0] + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith((" ", "\t"))):
        end += 1
    while not lines[end - 1].strip():
        end -= 1
    return "".join([*lines[:end], *NEW_FIELDS, *lines[end:]])


def _run(arguments: list[str], path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(path), str(REPOSITORY)]),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    environment.pop("COVERAGE_PROCESS_START", None)
    completed = subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, (
        f"{' '.join(arguments)} failed on the model with the new fields:\n{completed.stderr}"
    )
    return completed


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What each place holds of the orders, with the fields added to a copy of the package."""
    root = tmp_path_factory.mktemp("order-fields")
    copy = root / "src" / "entrix"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    model = copy / "orders" / "model.py"
    model.write_text(add_fields(model.read_text(encoding="utf-8")), encoding="utf-8")
    document = root / "openapi.json"
    schema_module = copy / "orders" / "order_schema.py"
    _run(["-m", "entrix.orders.schema_export", "--output", str(schema_module)], copy.parent, root)
    _run(["-m", "entrix.orders.openapi", "--output", str(document)], copy.parent, root)
    report = root / "seen.json"
    _run(["-m", "tests.unit.test_order_fields", str(report)], copy.parent, REPOSITORY)
    result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    result["schema_module"] = schema_module.read_text(encoding="utf-8")
    result["openapi"] = json.loads(document.read_text(encoding="utf-8"))
    result["copy"] = str(copy)
    return result


def test_the_probe_ran_the_copy_with_the_new_fields(seen: dict[str, Any]) -> None:
    assert seen["entrix"].startswith(seen["copy"])
    assert seen["fields"][-2:] == ["portfolio", "delivery_hour"]
    assert seen["optional_fields"] == ["delivery_hour"]
    assert seen["post"]["statusCode"] == 201, seen["post"]
    assert json.loads(seen["post"]["body"])["created"] == ["with-hour", "without-hour"]


def test_the_validator_takes_the_new_fields(seen: dict[str, Any]) -> None:
    assert '"portfolio": {' in seen["schema_module"]
    refused = json.loads(seen["missing_portfolio"]["body"])
    assert seen["missing_portfolio"]["statusCode"] == 400
    assert {"index": 0, "field": "portfolio", "reason": "is required"} in refused["errors"]


def _as_sent(values: dict[str, Any]) -> dict[str, Any]:
    return {name: values.get(name) for name in ("portfolio", "delivery_hour")}


def test_the_table_item_holds_the_new_fields(seen: dict[str, Any]) -> None:
    items = seen["table"]
    assert _as_sent(items["with-hour"]) == {"portfolio": "north", "delivery_hour": "7"}
    assert items["without-hour"]["portfolio"] == "south"
    assert "delivery_hour" not in items["without-hour"], "an optional field left out is absent"


def test_get_shows_the_new_fields(seen: dict[str, Any]) -> None:
    for reply in (seen["get"]["with-hour"], seen["get"]["without-hour"], seen["list"]):
        assert reply["statusCode"] == 200, reply
    with_hour = json.loads(seen["get"]["with-hour"]["body"])
    without_hour = json.loads(seen["get"]["without-hour"]["body"])
    assert _as_sent(with_hour) == {"portfolio": "north", "delivery_hour": 7}
    assert without_hour["portfolio"] == "south"
    assert "delivery_hour" not in without_hour
    listed = {order["record_id"]: order for order in json.loads(seen["list"]["body"])["orders"]}
    assert listed == {"with-hour": with_hour, "without-hour": without_hour}


def test_the_s3_result_line_holds_the_new_fields(seen: dict[str, Any]) -> None:
    assert seen["process"] == {"accepted": 2, "rejected": 0, "skipped": 0, "failed": 0}
    lines = {line["record_id"]: line for line in seen["lines"]}
    assert _as_sent(lines["with-hour"]) == {"portfolio": "north", "delivery_hour": 7}
    assert lines["without-hour"]["portfolio"] == "south"
    assert "delivery_hour" not in lines["without-hour"]


def test_the_openapi_document_holds_the_new_fields(seen: dict[str, Any]) -> None:
    schemas = seen["openapi"]["components"]["schemas"]
    order = schemas["Order"]
    assert order["properties"]["portfolio"]["type"] == "string"
    assert order["properties"]["delivery_hour"]["type"] == "number"
    assert "portfolio" in order["required"]
    assert "delivery_hour" not in order["required"]
    assert "default" not in order["properties"]["delivery_hour"]
    stored = schemas["StoredOrder"]
    assert {"portfolio", "delivery_hour"} <= set(stored["properties"])
    assert "portfolio" in stored["required"]
    assert "delivery_hour" not in stored["required"]


def _event(**fields: Any) -> dict[str, Any]:
    return {
        "headers": {"Content-Type": "application/json"},
        "requestContext": {
            "requestId": "req-fields",
            "authorizer": {"principalId": OWNER, "sub": OWNER, "exp": str(int(time.time()) + 600)},
        },
        **fields,
    }


def _plain(value: Any) -> Any:
    """Table values as JSON: numbers as their text, so the test sees them exactly."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return str(value)
    return value


def probe(report: Path) -> None:
    """Run in the copy (see `seen`): store, read and process ORDERS; write what each place holds."""
    import boto3
    from moto import mock_aws

    from entrix import settings
    from entrix.aws.orders_table import plain_item
    from entrix.handlers import ingest, order_list, order_status, process
    from entrix.orders import order_schema
    from tests.support.lambda_b_aws import lambda_b_aws
    from tests.support.moto_orders import TABLE as PIPELINE_TABLE
    from tests.support.moto_usage import unlimited_usage

    os.environ[settings.ORDERS_TABLE_NAME.name] = PIPELINE_TABLE
    os.environ[settings.RESULTS_BUCKET_NAME.name] = BUCKET
    seen: dict[str, Any] = {
        "entrix": entrix_file(),
        "fields": list(order_schema.FIELDS),
        "optional_fields": sorted(order_schema.OPTIONAL_FIELDS),
    }
    with mock_aws():
        made = lambda_b_aws(BUCKET)
        os.environ[settings.ALERT_TOPIC_ARN.name] = made.topic_arn
        now = time.time()
        table = ingest.orders_table()
        seen["post"] = ingest.handle(
            _event(body=json.dumps(ORDERS)), table, now, usage=unlimited_usage()
        )
        missing = [{key: value for key, value in ORDERS[0].items() if key != "portfolio"}]
        seen["missing_portfolio"] = ingest.handle(
            _event(body=json.dumps(missing)), table, now, usage=unlimited_usage()
        )
        items = {}
        for page in made.dynamodb.get_paginator("scan").paginate(TableName=PIPELINE_TABLE):
            for raw in page["Items"]:
                item = plain_item(raw)
                items[item["record_id"]] = item
        seen["table"] = _plain(items)
        seen["get"] = {
            record_id: order_status.handle(
                _event(pathParameters={"record_id": record_id}),
                order_status.orders_table(),
                now,
                usage=unlimited_usage(),
            )
            for record_id in items
        }
        seen["list"] = order_list.handle(
            _event(), order_list.orders_table(), now, usage=unlimited_usage()
        )
        batch = {
            "run_id": "run-fields",
            "results_key": RESULTS_KEY,
            "orders": [
                {
                    "order_key": item["order_key"],
                    "version": item["version"],
                    "status": "accepted",
                    "power": 5,
                }
                for item in items.values()
            ],
        }
        seen["process"] = process.handler(batch, None)
        s3 = boto3.client("s3", region_name="eu-west-1")
        body = s3.get_object(Bucket=BUCKET, Key=RESULTS_KEY)["Body"].read().decode("utf-8")
        seen["lines"] = [json.loads(line) for line in body.splitlines()]
    report.write_text(json.dumps(seen, default=str), encoding="utf-8")


def entrix_file() -> str:
    import entrix as imported

    return str(Path(imported.__file__).resolve())


def test_adding_the_fields_edits_the_end_of_class_order() -> None:
    source = "class Order(BaseModel):\n    a: int\n\n    b: int\n\n\nX = 1\n"
    assert add_fields(source) == (
        "class Order(BaseModel):\n    a: int\n\n    b: int\n" + "".join(NEW_FIELDS) + "\n\nX = 1\n"
    )


if __name__ == "__main__":
    probe(Path(sys.argv[1]))
