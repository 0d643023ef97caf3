"""The OpenAPI document: valid, generated from the order model, and committed without drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

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
    post: dict[str, Any] = document["paths"]["/orders"]["post"]
    get: dict[str, Any] = document["paths"]["/orders/{record_id}"]["get"]
    assert set(post["responses"]) == {"201", "400", "401", "403", "413", "415", "503"}
    assert set(get["responses"]) == {"200", "401", "403", "404"}
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert document["security"] == [{"bearerAuth": []}]
