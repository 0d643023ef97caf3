"""The OpenAPI document of the order API, generated from the order model.

`make openapi` (`python -m entrix.orders.openapi --output docs/openapi.json`, which replaces the
file atomically) regenerates the committed document; a test fails when the two differ, so the
published schema follows the validator.
"""

from __future__ import annotations

import json
from typing import Any

from entrix.orders.generated import main
from entrix.orders.limits import MAX_BODY_BYTES, MAX_ORDERS, MAX_RECORD_ID_BYTES, TTL_SECONDS
from entrix.orders.model import Order

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(schema_name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema_name)}},
    }


def _schemas() -> dict[str, Any]:
    order = Order.model_json_schema(ref_template=_REF)
    number = order["properties"]["parameter_2"]
    return {
        "Order": order,
        "Orders": {
            "type": "array",
            "items": _ref("Order"),
            "minItems": 1,
            "maxItems": MAX_ORDERS,
            "examples": [
                [
                    {"record_id": "order-1", "parameter_1": "bid", "parameter_2": 2.1},
                    {"record_id": "order-2", "parameter_1": "ask", "parameter_2": -150},
                ]
            ],
            "description": (
                f"1 to {MAX_ORDERS} orders with distinct record_ids, in a body of at most "
                f"{MAX_BODY_BYTES} bytes. Strict JSON: no duplicate keys, no NaN or Infinity."
            ),
        },
        "IngestSummary": {
            "type": "object",
            "properties": {
                "stored": {"type": "integer", "description": "Number of orders stored."},
                "record_ids": {"type": "array", "items": {"type": "string"}},
                "received_at": {"type": "string", "format": "date-time"},
                "expires_at": {
                    "type": "integer",
                    "description": f"Epoch seconds: received_at + {TTL_SECONDS}.",
                },
            },
            "required": ["stored", "record_ids", "received_at", "expires_at"],
        },
        "Problem": {
            "type": "object",
            "properties": {
                "index": {
                    "type": ["integer", "null"],
                    "description": "Position of the order in the array; null for the body.",
                },
                "field": {
                    "type": "string",
                    "description": "Field of the order; empty for the whole order or body.",
                },
                "reason": {"type": "string"},
            },
            "required": ["index", "field", "reason"],
        },
        "Error": {
            "type": "object",
            "description": "The request was refused and nothing was stored.",
            "properties": {
                "message": {"type": "string"},
                "errors": {"type": "array", "items": _ref("Problem")},
            },
            "required": ["message", "errors"],
        },
        "NotStored": {
            "type": "object",
            "description": (
                "Some orders could not be stored; the others were. Send the listed ones again "
                "(sending a record_id again overwrites it)."
            ),
            "properties": {
                "message": {"type": "string"},
                "stored": {"type": "integer"},
                "record_ids_not_stored": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["message", "stored", "record_ids_not_stored"],
        },
        "StoredOrder": {
            "type": "object",
            "properties": {
                **order["properties"],
                "received_at": {"type": "string", "format": "date-time"},
                "expires_at": {
                    "type": "integer",
                    "description": "Epoch seconds after which the order is gone.",
                },
                "result_status": {"type": "string", "enum": ["pending", "accepted", "rejected"]},
                "power": {**number, "title": "Power"},
                "result_run_id": {"type": "string"},
                "result_at": {"type": "string", "format": "date-time"},
            },
            "required": [*order["required"], "received_at", "expires_at", "result_status"],
        },
        "NotFound": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "record_id": {"type": ["string", "null"]},
            },
            "required": ["message", "record_id"],
        },
        "GatewayError": {
            "type": "object",
            "description": "API Gateway's own reply (for example from the authorizer).",
            "properties": {"message": {"type": "string"}},
        },
    }


def build_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of POST /orders and GET /orders/{record_id}."""
    auth_failures = {
        "401": _json("GatewayError", "Missing, malformed, forged or expired bearer token."),
        "403": _json("GatewayError", "The token does not allow this call."),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Entrix auction orders",
            "version": "1.0.0",
            "description": (
                "Submit auction orders and read their result status. Every call needs "
                "`Authorization: Bearer <JWT>` (HS256)."
            ),
        },
        "security": [{"bearerAuth": []}],
        "paths": {
            "/orders": {
                "post": {
                    "operationId": "submitOrders",
                    "summary": "Store a batch of orders (each expires after 24 hours)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Orders")}},
                    },
                    "responses": {
                        "201": _json("IngestSummary", "Every order was stored."),
                        "400": _json("Error", "Invalid JSON or invalid orders; every problem."),
                        **auth_failures,
                        "413": _json(
                            "Error",
                            f"More than {MAX_ORDERS} orders or {MAX_BODY_BYTES} bytes.",
                        ),
                        "415": _json("Error", "Content-Type is not application/json."),
                        "503": _json("NotStored", "Some orders were not stored."),
                    },
                }
            },
            "/orders/{record_id}": {
                "get": {
                    "operationId": "getOrder",
                    "summary": "A stored order and its result status",
                    "parameters": [
                        {
                            "name": "record_id",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": MAX_RECORD_ID_BYTES,
                            },
                        }
                    ],
                    "responses": {
                        "200": _json("StoredOrder", "The order as stored."),
                        **auth_failures,
                        "404": _json("NotFound", "No such order, or it has expired."),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": _schemas(),
        },
    }


def render() -> str:
    """The document as committed in docs/openapi.json."""
    return json.dumps(build_document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    main(render, "Print (or write to --output) the OpenAPI document of the order API.")
