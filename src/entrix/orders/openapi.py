"""The OpenAPI document of the order API, generated from the order model.

`make openapi` (`python -m entrix.orders.openapi --output docs/openapi.json`, which replaces the
file atomically) regenerates the committed document; a test fails when the two differ, so the
published schema follows the validator.
"""

from __future__ import annotations

import json
from typing import Any

from entrix.handlers.order_list import DEFAULT_LIMIT, MAX_LIMIT
from entrix.http import (
    BAD_REQUEST_BODY,
    DAILY_ORDER_QUOTA_EXCEEDED,
    NOT_FOUND,
    ORDER_CONFLICT,
    ORDER_EXPIRED,
    ORDERS_NOT_STORED,
    RATE_LIMITED,
    REQUEST_TOO_LARGE,
    UNAUTHORIZED,
    UNSUPPORTED_MEDIA_TYPE,
    USAGE_UNAVAILABLE,
)
from entrix.identity import LEEWAY_SECONDS
from entrix.orders import lifecycle
from entrix.orders.generated import main
from entrix.orders.limits import MAX_BODY_BYTES, MAX_ORDERS, MAX_RECORD_ID_BYTES, TTL_SECONDS
from entrix.orders.model import Order

_REF = "#/components/schemas/{model}"

# The states an order a request may not change is in (a refused POST or DELETE).
REFUSED_STATES = (
    lifecycle.CLAIMED,
    lifecycle.ACCEPTED,
    lifecycle.REJECTED,
    lifecycle.CANCELLED,
)
_GATEWAY_CODES = (
    "API Gateway answers some requests itself, in the same shape, with its response type as "
    "the code"
)
OWNER_RULE = (
    "Every order belongs to the subject (`sub`) of the token that stored it, its owner. "
    "Orders are addressed by the owner and the record_id: two clients may use the same "
    "record_id and never touch each other's orders. A client never reads, changes or learns "
    "of another client's order: to it, that order does not exist (404, exactly as for an "
    "unknown record_id), and GET /orders lists only its own."
)
FAIR_SHARE = (
    "Each client (token subject) may make a number of requests per fixed window of seconds, "
    "every method counted, and store a number of orders per UTC day; both are deployment "
    "settings. A request over either is refused whole with 429 and `Retry-After` (the seconds "
    "to the window's end, or to the next UTC midnight) and nothing is done. A POST's orders are "
    "counted before they are written, so the whole request must fit; orders that come back "
    "`unchanged` or `not_stored` are given back afterwards, so an identical retry does not count "
    "twice. One client at its limit does not slow another."
)
LIFECYCLE_RULES = (
    "Sending a stored order again (same record_id, identical content) changes nothing and "
    "succeeds in every state, so a client may always resend after a timeout. Different content "
    "replaces the order (amend) while it is pending and no auction run has claimed it; DELETE "
    "cancels it then, and no run processes it. Once a run has claimed it, its result is "
    "recorded or it is cancelled, a change or a DELETE is refused with 409 naming the order and "
    "its state, and the order and its result stay as they are. An order expires 24 hours after "
    "it was stored."
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(schema_name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema_name)}},
    }


def _refusal(description: str, *codes: str, examples: bool = False) -> dict[str, Any]:
    """A reply in the one error shape; `codes` are the values its `code` takes (or examples of
    them: API Gateway's own response types)."""
    named = ", ".join(f"`{code}`" for code in codes)
    kind = "Code, for example" if examples else "Code"
    return _json("Error", f"{description} {kind}: {named}.")


def _retry_after(description: str) -> dict[str, Any]:
    return {
        "Retry-After": {"description": description, "schema": {"type": "integer", "minimum": 1}}
    }


def _common_refusals(*limits: str, charged: bool = True) -> dict[str, Any]:
    """The refusals every operation may give, most of them by API Gateway itself; `limits` are
    the operation's own 429 codes besides the request rate's (the daily order quota's). An
    operation not `charged` to the caller's share (cancel) is refused only by the stage's
    throttle."""
    quota = "".join(f"; `{code}`: its orders of the UTC day" for code in limits)
    share_refusals = {
        "429": {
            **_refusal(
                f"The caller is over its share (`{RATE_LIMITED}`: its requests of the current "
                f"window{quota}; with Retry-After; nothing is done), or API Gateway throttled the "
                "whole stage (`THROTTLED`, no Retry-After).",
                RATE_LIMITED,
                *limits,
                "THROTTLED",
            ),
            "headers": _retry_after(
                "Seconds until the caller's share allows the request again: the end of the "
                "rate window, or the next UTC midnight for the daily order quota."
            ),
        },
        "503": {
            **_refusal(
                "The caller's share could not be counted (the usage table did not answer): "
                "nothing was done; send the request again after Retry-After.",
                USAGE_UNAVAILABLE,
            ),
            "headers": _retry_after("Seconds to wait before sending the request again."),
        },
    }
    stage_throttle = {
        "429": _refusal(
            "API Gateway throttled the whole stage (`THROTTLED`, no Retry-After). This "
            "operation is never refused for the caller's own share.",
            "THROTTLED",
        )
    }
    return {
        "401": _refusal(
            "Missing, malformed, forged, expired, over-long or revoked bearer token (an expired "
            f"token is refused {LEEWAY_SECONDS} s after its `exp` at the latest, even while API "
            "Gateway still caches the authorizer's answer), or a subject that cannot own orders.",
            "UNAUTHORIZED",
        ),
        "403": _refusal(
            "The call is not allowed (by the authorizer or the web application firewall).",
            "ACCESS_DENIED",
            "WAF_FILTERED",
        ),
        **(share_refusals if charged else stage_throttle),
        "5XX": _refusal(
            "API Gateway's own reply when the function failed or timed out or the authorizer "
            "could not answer; the code is its response type.",
            "INTEGRATION_FAILURE",
            "INTEGRATION_TIMEOUT",
            "AUTHORIZER_FAILURE",
            "DEFAULT_5XX",
            examples=True,
        ),
    }


def _record_id_parameter() -> dict[str, Any]:
    return {
        "name": "record_id",
        "in": "path",
        "required": True,
        "description": "The record_id of one of the caller's orders.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_RECORD_ID_BYTES},
    }


def _lifecycle_properties(number: dict[str, Any]) -> dict[str, Any]:
    """What the service adds to an order beside the client's fields, as GET shows it
    (`number` is the schema of a DynamoDB number)."""
    return {
        "received_at": {
            "type": "string",
            "format": "date-time",
            "description": "When this content of the order was stored (an amend sets it anew).",
        },
        "expires_at": {
            "type": "integer",
            "description": (
                f"Epoch seconds (received_at + {TTL_SECONDS}) after which the order is gone "
                "(404 ORDER_EXPIRED until the table deletes it, within days; then 404 "
                "NOT_FOUND) and its record_id "
                "free again."
            ),
        },
        "result_status": {
            "type": "string",
            "enum": list(lifecycle.RESULT_STATUSES),
            "description": (
                "pending until an auction run records the order's result (accepted or "
                "rejected), or cancelled by DELETE while it was pending."
            ),
        },
        "power": {**number, "title": "Power", "description": "The power the auction gave."},
        "result_run_id": {"type": "string", "description": "The run that recorded the result."},
        "result_at": {"type": "string", "format": "date-time"},
        "cancelled_at": {"type": "string", "format": "date-time"},
    }


def _outcome_lists() -> dict[str, Any]:
    ids = {"type": "array", "items": {"type": "string"}}
    return {
        "received_at": {"type": "string", "format": "date-time"},
        "expires_at": {
            "type": "integer",
            "description": f"Epoch seconds: received_at + {TTL_SECONDS}.",
        },
        "created": {**ids, "description": "New orders, stored."},
        "amended": {
            **ids,
            "description": "Pending orders no run had claimed, replaced by the new content.",
        },
        "unchanged": {
            **ids,
            "description": "Orders already stored with this very content: nothing was written.",
        },
        "refused": {
            "type": "array",
            "items": _ref("RefusedOrder"),
            "description": "Orders whose state does not allow a change: nothing was written.",
        },
        "not_stored": {
            **ids,
            "description": "Orders the table did not take in time: send the request again.",
        },
    }


def _schemas() -> dict[str, Any]:
    order = Order.model_json_schema(ref_template=_REF)
    number = order["properties"]["parameter_2"]
    outcomes = _outcome_lists()
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
        "OrderOutcomes": {
            "type": "object",
            "description": (
                "What happened to each order of the request, by record_id: every order is in "
                "exactly one list, in request order."
            ),
            "properties": outcomes,
            "required": list(outcomes),
        },
        "RefusedOrder": {
            "type": "object",
            "properties": {
                "record_id": {"type": "string"},
                "state": _ref("OrderState"),
            },
            "required": ["record_id", "state"],
        },
        "OrderState": {
            "type": "string",
            "enum": list(REFUSED_STATES),
            "description": (
                "Why the order cannot change: an auction run has claimed it (`claimed`), its "
                "result is recorded (`accepted`, `rejected`) or it was cancelled."
            ),
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
                    "description": (
                        "Field of the order, header or query parameter; empty for the whole "
                        "order or body."
                    ),
                },
                "reason": {"type": "string"},
            },
            "required": ["index", "field", "reason"],
        },
        "Error": {
            "type": "object",
            "description": (
                "Every refusal, the handlers' and API Gateway's own, has this shape: a message "
                "for people, a machine-readable code and the request id, plus fields of its own "
                f"where useful. {_GATEWAY_CODES} (UNAUTHORIZED, ACCESS_DENIED, THROTTLED, "
                "MISSING_AUTHENTICATION_TOKEN for an unknown route, ...)."
            ),
            "properties": {
                "message": {"type": "string"},
                "code": {
                    "type": "string",
                    "pattern": "^[A-Z][A-Z0-9_]*$",
                    "description": (
                        "API Gateway's response-type vocabulary: "
                        f"{BAD_REQUEST_BODY}, {UNAUTHORIZED}, {NOT_FOUND}, {ORDER_EXPIRED}, "
                        f"{ORDER_CONFLICT}, {REQUEST_TOO_LARGE}, {UNSUPPORTED_MEDIA_TYPE}, "
                        f"{ORDERS_NOT_STORED} "
                        "from the service, API Gateway's response types from the gateway."
                    ),
                },
                "request_id": {
                    "type": "string",
                    "description": "API Gateway's id of the request: quote it when asking why.",
                },
                "errors": {
                    "type": "array",
                    "items": _ref("Problem"),
                    "description": "Every problem found (400, 413, 415): nothing was stored.",
                },
                "record_id": {
                    "type": ["string", "null"],
                    "description": "The order the refusal is about (404, DELETE's 409).",
                },
                "state": {
                    **_ref("OrderState"),
                    "description": "The state of that order (DELETE's 409).",
                },
                "expires_at": {
                    "type": "integer",
                    "description": (
                        "When that order expired, epoch seconds (GET's 404 ORDER_EXPIRED)."
                    ),
                },
            },
            "required": ["message", "code", "request_id"],
            "additionalProperties": True,
        },
        "PartlyApplied": {
            "description": (
                "An Error (409 ORDER_CONFLICT, 503 ORDERS_NOT_STORED) that also says what "
                "happened to each order: the orders listed as created, amended or unchanged "
                "are stored."
            ),
            "allOf": [_ref("Error"), _ref("OrderOutcomes")],
        },
        "NotStored": {
            "description": (
                "POST's 503: a PartlyApplied (ORDERS_NOT_STORED) when orders were not stored, "
                "an Error (USAGE_UNAVAILABLE) when nothing was done."
            ),
            "anyOf": [_ref("PartlyApplied"), _ref("Error")],
        },
        "StoredOrder": {
            "type": "object",
            "description": "One of the caller's orders as stored, and its result once recorded.",
            "properties": {**order["properties"], **_lifecycle_properties(number)},
            "required": [*order["required"], "received_at", "expires_at", "result_status"],
        },
        "OrderPage": {
            "type": "object",
            "properties": {
                "orders": {
                    "type": "array",
                    "items": _ref("StoredOrder"),
                    "maxItems": MAX_LIMIT,
                    "description": "The caller's orders, newest first.",
                },
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": (
                        "Pass as `cursor` for the next page; null on the last page. A page may "
                        "hold fewer orders than `limit` (even none) and still have a next one."
                    ),
                },
            },
            "required": ["orders", "next_cursor"],
        },
    }


def _post_orders() -> dict[str, Any]:
    partly = "Some orders were"
    return {
        "operationId": "submitOrders",
        "summary": "Store, amend or resend a batch of the caller's orders",
        "description": (
            "Each order is applied on its own under the lifecycle rules (see the API's "
            "description); the reply lists every order under what happened to it. 201 when "
            "every order is created, amended or unchanged; 409 when some were refused (the "
            "others are applied); 503 when some were not stored (the others are): a status a "
            "generic HTTP client retries rather than reads as success, and sending the whole "
            "request again is safe, because the orders already stored come back `unchanged`."
        ),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("Orders")}},
        },
        "responses": {
            "201": _json(
                "OrderOutcomes", "Every order is created, amended or unchanged (none refused)."
            ),
            "400": _refusal(
                "Invalid JSON or invalid orders: every problem, nothing stored.", BAD_REQUEST_BODY
            ),
            "409": _json(
                "PartlyApplied",
                f"{partly} refused (`refused`, each with its state); the others are applied as "
                f"listed. Code: `{ORDER_CONFLICT}`.",
            ),
            "413": _refusal(
                f"More than {MAX_ORDERS} orders or {MAX_BODY_BYTES} bytes: nothing stored.",
                REQUEST_TOO_LARGE,
            ),
            "415": _refusal(
                "Content-Type is not application/json: nothing stored.", UNSUPPORTED_MEDIA_TYPE
            ),
            **_common_refusals(DAILY_ORDER_QUOTA_EXCEEDED),
            "503": {
                "description": (
                    f"{partly} not stored (`not_stored`); the others are applied as listed. Or "
                    "the caller's share could not be counted: nothing was done. Either way, "
                    "send the whole request again after Retry-After. Code: "
                    f"`{ORDERS_NOT_STORED}`, `{USAGE_UNAVAILABLE}`."
                ),
                "content": {"application/json": {"schema": _ref("NotStored")}},
                "headers": _retry_after("Seconds to wait before sending the request again."),
            },
        },
    }


def _list_orders() -> dict[str, Any]:
    return {
        "operationId": "listOrders",
        "summary": "The caller's own orders, newest first, a page at a time",
        "parameters": [
            {
                "name": "result_status",
                "in": "query",
                "required": False,
                "description": "Only orders with this result_status (all when left out).",
                "schema": {"type": "string", "enum": list(lifecycle.RESULT_STATUSES)},
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": "At most this many orders on the page.",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT,
                },
            },
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": (
                    "The `next_cursor` of the previous page (opaque); the first page without it."
                ),
                "schema": {"type": "string", "minLength": 1},
            },
        ],
        "responses": {
            "200": _json(
                "OrderPage",
                "A page of the caller's orders. Orders stored a moment ago may show on the "
                "next call only (GET /orders/{record_id} reads them at once).",
            ),
            "400": _refusal(
                "A query parameter out of range or a cursor this API did not give; `errors` "
                "names it.",
                BAD_REQUEST_BODY,
            ),
            **_common_refusals(),
        },
    }


def _get_order() -> dict[str, Any]:
    return {
        "operationId": "getOrder",
        "summary": "One of the caller's orders and its result status",
        "parameters": [_record_id_parameter()],
        "responses": {
            "200": _json("StoredOrder", "The order as stored."),
            **_common_refusals(),
            "404": _refusal(
                "The caller has no such order: `NOT_FOUND` when never stored, another "
                "client's, or expired and since deleted (the table deletes an expired order "
                "within days); `ORDER_EXPIRED` (with `expires_at`) when the caller's order "
                "expired and is not deleted yet.",
                NOT_FOUND,
            ),
        },
    }


def _cancel_order() -> dict[str, Any]:
    return {
        "operationId": "cancelOrder",
        "summary": "Cancel one of the caller's pending orders",
        "description": (
            "A pending order no auction run has claimed becomes `cancelled` and is never "
            "processed. Cancelling an order already cancelled succeeds again (a retried DELETE "
            "is safe)."
        ),
        "parameters": [_record_id_parameter()],
        "responses": {
            "204": {"description": "The order is cancelled."},
            **_common_refusals(charged=False),
            "404": _refusal(
                "The caller has no such order (never stored, expired, or another client's).",
                NOT_FOUND,
            ),
            "409": _refusal(
                "The order cannot be cancelled: a run has claimed it or its result is "
                "recorded (`record_id`, `state`). It is left as it was.",
                ORDER_CONFLICT,
            ),
        },
    }


def _by_status(operation: dict[str, Any]) -> dict[str, Any]:
    """`operation` with its responses in status order (5XX after 503)."""
    return {**operation, "responses": dict(sorted(operation["responses"].items()))}


def build_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of POST and GET /orders, GET and DELETE /orders/{record_id}."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Entrix auction orders",
            "version": "2.0.0",
            "description": (
                "Submit auction orders, read, list and cancel them, and read their result "
                "status. Every call needs `Authorization: Bearer <JWT>` carrying `kid`, `iss`, "
                "`aud`, `sub`, `iat`, `exp` and `jti`.\n\n"
                f"{OWNER_RULE}\n\n{LIFECYCLE_RULES}\n\n{FAIR_SHARE}\n\nEvery refusal, the "
                "service's and API Gateway's own, is an `Error`: `message`, `code`, `request_id`."
            ),
        },
        "security": [{"bearerAuth": []}],
        "paths": {
            "/orders": {"post": _by_status(_post_orders()), "get": _by_status(_list_orders())},
            "/orders/{record_id}": {
                "get": _by_status(_get_order()),
                "delete": _by_status(_cancel_order()),
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": (
                        "The token's `sub` is the caller: the owner of the orders it stores "
                        "and the only one who can read, list or cancel them. Its header names "
                        "its key (`kid`); its payload the issuer and audience the API is "
                        "configured with (`iss`, `aud`), `iat`, `exp` (a bounded lifetime "
                        "after `iat`) and its id (`jti`), by which it can be revoked."
                    ),
                }
            },
            "schemas": _schemas(),
        },
    }


def render() -> str:
    """The document as committed in docs/openapi.json."""
    return json.dumps(build_document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    main(render, "Print (or write to --output) the OpenAPI document of the order API.")
