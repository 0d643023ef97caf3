"""The OpenAPI document: valid, generated from the order model, and committed without drift."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

from entrix.handlers import ingest, order_list
from entrix.orders import lifecycle
from entrix.orders.limits import MAX_ORDERS
from entrix.orders.model import Order
from entrix.orders.openapi import build_document, render

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_committed_document_matches_the_generator() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "docs/openapi.json is stale: run `make openapi` and commit it"
    )


def test_the_module_prints_the_document() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "entrix.orders.openapi"], capture_output=True, check=True, text=True
    ).stdout
    assert printed == render()


def test_the_document_is_valid_openapi() -> None:
    validate(build_document())  # type: ignore[arg-type]


def test_the_request_schema_is_the_order_model_schema() -> None:
    document = build_document()
    schemas = document["components"]["schemas"]
    assert schemas["Order"] == Order.model_json_schema()
    assert schemas["Order"]["additionalProperties"] is False
    assert schemas["Order"]["properties"]["parameter_2"]["type"] == "number"
    body = document["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Orders"}
    assert (schemas["Orders"]["minItems"], schemas["Orders"]["maxItems"]) == (1, MAX_ORDERS)


def test_every_status_and_the_bearer_scheme_are_documented() -> None:
    document = build_document()
    paths: dict[str, Any] = document["paths"]
    common = {"401", "403", "429", "503", "5XX"}
    assert {
        (path, method): set(operation["responses"])
        for path, operations in paths.items()
        for method, operation in operations.items()
    } == {
        ("/orders", "post"): {"201", "400", "409", "413", "415"} | common,
        ("/orders", "get"): {"200", "400"} | common,
        ("/orders/{record_id}", "get"): {"200", "404"} | common,
        # Never charged to the caller's share: no share 429 and no 503 for it.
        ("/orders/{record_id}", "delete"): {"204", "404", "409"} | common - {"503"},
    }
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"
    assert document["security"] == [{"bearerAuth": []}]


def _schema_of(response: dict[str, Any]) -> dict[str, Any] | None:
    content = response.get("content")
    return None if content is None else content["application/json"]["schema"]


def test_every_refusal_has_the_one_error_shape() -> None:
    """Every 4xx and 5xx reply is an Error, or (POST's 409 and 503) an Error with the outcomes
    (POST's 503: or a plain Error, when the caller's share could not be counted)."""
    document = build_document()
    schemas = document["components"]["schemas"]
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                schema = _schema_of(response)
                if status.startswith(("4", "5")):
                    assert schema is not None, (path, method, status)
                    named = schemas.get(schema["$ref"].split("/")[-1], {})
                    assert (
                        schema == error
                        or named.get("allOf", [None])[0] == error
                        or all(
                            option == error
                            or schemas[option["$ref"].split("/")[-1]]["allOf"][0] == error
                            for option in named.get("anyOf", [None])
                        )
                    ), (path, method, status)
                    assert "Code" in response["description"], (path, method, status)
    assert schemas["Error"]["required"] == ["message", "code", "request_id"]
    assert schemas["Error"]["additionalProperties"] is True
    assert _schema_of(document["paths"]["/orders"]["post"]["responses"]["409"]) == {
        "$ref": "#/components/schemas/PartlyApplied"
    }


def test_post_lists_every_outcome_and_a_503_says_when_to_resend() -> None:
    document = build_document()
    schemas = document["components"]["schemas"]
    post = document["paths"]["/orders"]["post"]
    assert set(schemas["OrderOutcomes"]["required"]) == {
        "received_at",
        "expires_at",
        *ingest.OUTCOMES,
    }
    assert schemas["PartlyApplied"]["allOf"][1] == {"$ref": "#/components/schemas/OrderOutcomes"}
    assert schemas["RefusedOrder"]["required"] == ["record_id", "state"]
    assert set(schemas["OrderState"]["enum"]) == {"claimed", "accepted", "rejected", "cancelled"}
    assert post["responses"]["503"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert _schema_of(post["responses"]["503"]) == {"$ref": "#/components/schemas/NotStored"}
    assert schemas["NotStored"]["anyOf"] == [
        {"$ref": "#/components/schemas/PartlyApplied"},
        {"$ref": "#/components/schemas/Error"},
    ]


def test_every_operation_documents_the_callers_share_with_retry_after() -> None:
    """429 (the request rate; POST also the daily order quota) and 503 (the share could not be
    counted) on each operation but cancel, each with Retry-After in whole seconds."""
    for path, operations in build_document()["paths"].items():
        for method, operation in operations.items():
            if method == "delete":
                limited = operation["responses"]["429"]["description"]
                assert "`RATE_LIMITED`" not in limited and "`THROTTLED`" in limited
                continue
            for status in ("429", "503"):
                response = operation["responses"][status]
                retry_after = response["headers"]["Retry-After"]["schema"]
                assert retry_after == {"type": "integer", "minimum": 1}, (path, method, status)
            limited = operation["responses"]["429"]["description"]
            assert "`RATE_LIMITED`" in limited, (path, method)
            quota = "`DAILY_ORDER_QUOTA_EXCEEDED`" in limited
            assert quota == (method == "post"), (path, method)
            assert "`USAGE_UNAVAILABLE`" in operation["responses"]["503"]["description"]


def test_get_shows_what_the_handler_shows() -> None:
    stored = build_document()["components"]["schemas"]["StoredOrder"]
    assert list(stored["properties"]) == list(lifecycle.PUBLIC_FIELDS)
    assert stored["properties"]["result_status"]["enum"] == [
        "pending",
        "accepted",
        "rejected",
        "cancelled",
    ]
    assert stored["properties"]["cancelled_at"]["format"] == "date-time"


def test_the_listing_takes_a_status_a_bounded_limit_and_a_cursor() -> None:
    listing = build_document()["paths"]["/orders"]["get"]
    parameters = {parameter["name"]: parameter for parameter in listing["parameters"]}
    assert set(parameters) == {"result_status", "limit", "cursor"}
    assert all(p["in"] == "query" and not p["required"] for p in parameters.values())
    assert parameters["result_status"]["schema"]["enum"] == list(lifecycle.RESULT_STATUSES)
    limit = parameters["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (
        1,
        order_list.MAX_LIMIT,
        order_list.DEFAULT_LIMIT,
    )
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 50)
    page = build_document()["components"]["schemas"]["OrderPage"]
    assert page["required"] == ["orders", "next_cursor"]
    assert page["properties"]["orders"]["items"] == {"$ref": "#/components/schemas/StoredOrder"}


def test_the_owner_rule_and_the_lifecycle_are_described() -> None:
    document = build_document()
    description = document["info"]["description"]
    assert "`sub`" in description and "404" in description
    assert "identical content" in description and "409" in description
    record_id = document["components"]["schemas"]["Order"]["properties"]["record_id"]
    assert "overwrites" not in record_id["description"]
    assert "identical content changes nothing" in record_id["description"]


def test_the_examples_are_valid_orders() -> None:
    """An example the model refuses (say, after a required field is added) fails here."""
    examples = build_document()["components"]["schemas"]["Orders"]["examples"]
    for example in examples:
        for order in example:
            Order.model_validate_json(json.dumps(order))
