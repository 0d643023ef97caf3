"""Orders stored and read as the service does, for the pipeline, fault and property tests.

- `api_event`: a POST/GET/DELETE proxy event as API Gateway passes it on after the authorizer
  (its context values `sub` and `exp` as strings, as a REST API passes them).
- `post_orders`: the ingest handler's own path (parse, `lifecycle.stored_item`, one conditional
  put per order) for `owner`, against any table; its reply.
- `stored_items` and `pending_index`: the table by key and what the pending-results index holds,
  read independently of the adapters under test (a scan of the table, a scan of the index).
"""

from __future__ import annotations

import json
from typing import Any

from entrix.aws.orders_table import Backoff, OrdersTable, plain_item
from entrix.handlers import ingest
from tests.support.moto_orders import INDEX, OWNER

# A token's remaining life in the events these helpers make.
TOKEN_SECONDS = 3600


def api_event(
    owner: str = OWNER,
    now: float = 1_764_000_000.0,
    body: Any = None,
    record_id: str | None = None,
    request_id: str = "test-request",
    exp: float | None = None,
) -> dict[str, Any]:
    """A Lambda proxy event of `owner`'s request at `now` (the token expiring TOKEN_SECONDS
    later unless `exp` says), with `body` as JSON text (a str is sent as it is) and
    `record_id` as the path parameter."""
    event: dict[str, Any] = {
        "headers": {"Content-Type": "application/json"},
        "requestContext": {
            "requestId": request_id,
            "authorizer": {
                "sub": owner,
                "exp": str(int(now + TOKEN_SECONDS if exp is None else exp)),
                "principalId": owner,
            },
        },
    }
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    if record_id is not None:
        event["pathParameters"] = {"record_id": record_id}
    return event


def post_orders(
    dynamodb: Any, table: str, orders: list[dict[str, Any]], owner: str, now: float
) -> tuple[int, dict[str, Any]]:
    """`owner`'s POST /orders of `orders` at `now`, through the ingest handler against the
    table `table` (retries not paused); its status and reply body."""
    reply = ingest.handle(
        api_event(owner, now, orders), OrdersTable(dynamodb, table, Backoff(sleep=_no_pause)), now
    )
    return reply["statusCode"], json.loads(reply["body"])


def _no_pause(_: float) -> None:
    """Retries without the backoff's sleep."""


def stored_items(dynamodb: Any, table: str) -> dict[str, dict[str, Any]]:
    """Every item of `table` by its key (`<owner>#<record_id>`), numbers as Decimal."""
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return {
        item["order_key"]: item
        for page in pages
        for item in (plain_item(raw) for raw in page["Items"])
    }


def pending_index(dynamodb: Any, table: str, index: str = INDEX) -> dict[str, str]:
    """What the pending-results index holds: the version of each order key in it."""
    pages = dynamodb.get_paginator("scan").paginate(TableName=table, IndexName=index)
    return {raw["order_key"]["S"]: raw["version"]["S"] for page in pages for raw in page["Items"]}
