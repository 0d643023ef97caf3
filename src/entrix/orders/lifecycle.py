"""An order's life in the table: its key, its item, its states, and what a client may see.

No AWS here: the adapters (entrix.aws) turn these rules into DynamoDB keys and conditions.

- Every order belongs to its owner, the token subject that stored it: the table's key is
  `<owner>#<record_id>`, so two clients may use the same record_id.
- Each put gets a new `version`: the receipt time, a nonce of the request and the order's
  position in it. It sorts by receipt time (both indexes use it as their sort key) and names the
  very content a run claims: a run records a result only on the version it claimed.
- States: `pending` (waiting; `claimed` while a run works on it), then `accepted` or `rejected`
  once a run recorded its result, or `cancelled` by its owner. Only a pending order that no live
  run has claimed, and whose line no run may have stored yet, may be amended or cancelled; an
  identical resend changes nothing in any state.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from entrix.orders.order_schema import FIELDS

PENDING = "pending"
CLAIMED = "claimed"
ACCEPTED = "accepted"
REJECTED = "rejected"
CANCELLED = "cancelled"
RESULT_STATUSES = (PENDING, ACCEPTED, REJECTED, CANCELLED)

# Both indexes spread over this many partitions, chosen by a hash of the order: each index
# partition serves about 1,000 writes a second, so one client storing 10,000 orders a second
# (ten 1,000-order requests) stays within every key's limit (docs/architecture.md, "Keys").
SHARDS = 16
_KEY_SEPARATOR = "#"

# What the service adds to the client's fields and shows back (GET), beside the fields.
_PUBLIC_LIFECYCLE_FIELDS = (
    "received_at",
    "expires_at",
    "result_status",
    "power",
    "result_run_id",
    "result_at",
    "cancelled_at",
)
PUBLIC_FIELDS = (*FIELDS, *_PUBLIC_LIFECYCLE_FIELDS)


def order_key(owner: str, record_id: str) -> str:
    """The table's partition key of `owner`'s order `record_id` (owners never contain `#`)."""
    return f"{owner}{_KEY_SEPARATOR}{record_id}"


def owner_and_record_id(key: str) -> tuple[str, str]:
    """The owner and record id of table key `key` (the simulator's owner starts with `#`, no
    other owner holds one: the first `#` after the first character ends the owner)."""
    cut = key.index(_KEY_SEPARATOR, 1)
    return key[:cut], key[cut + 1 :]


def _shard(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"{int.from_bytes(digest[:4], 'big') % SHARDS:02d}"


def pending_shard(key: str) -> str:
    """The pending-results index partition of the order with table key `key`."""
    return _shard(key)


def pending_shards() -> list[str]:
    """Every value `pending_shard` can take."""
    return [f"{shard:02d}" for shard in range(SHARDS)]


def owner_shard(owner: str, record_id: str) -> str:
    """The owner-orders index partition of an order: the owner and one of SHARDS values."""
    return f"{owner}{_KEY_SEPARATOR}{_shard(record_id)}"


def owner_shards(owner: str) -> list[str]:
    """Every owner-orders index partition of `owner`'s orders."""
    return [f"{owner}{_KEY_SEPARATOR}{shard}" for shard in pending_shards()]


def request_nonce() -> str:
    """A request's part of its orders' versions: two requests in one millisecond differ."""
    return secrets.token_hex(6)


def version(received_at: str, nonce: str, position: int) -> str:
    """The version of the order at `position` of a request received at `received_at`."""
    return f"{received_at}/{nonce}/{position:04d}"


def stored_item(
    order: Mapping[str, Any],
    owner: str,
    received_at: str,
    expires_at: int,
    order_version: str,
) -> dict[str, Any]:
    """The table item of a newly received (or amended) order (docs/architecture.md)."""
    key = order_key(owner, order["record_id"])
    return {
        **{name: order[name] for name in FIELDS if name in order},
        "order_key": key,
        "owner": owner,
        "received_at": received_at,
        "expires_at": expires_at,
        "result_status": PENDING,
        "version": order_version,
        "pending_shard": pending_shard(key),
        "owner_shard": owner_shard(owner, order["record_id"]),
    }


def same_content(item: Mapping[str, Any], order: Mapping[str, Any]) -> bool:
    """Whether the stored `item` holds exactly the client's `order` (numbers by value)."""
    return all(_same(item.get(name), order.get(name)) for name in FIELDS)


def _same(stored: Any, sent: Any) -> bool:
    if isinstance(stored, Decimal) and isinstance(sent, Decimal):
        return stored == sent
    return type(stored) is type(sent) and stored == sent


def lease_live(item: Mapping[str, Any], now: float) -> bool:
    """Whether a run holds the order: claimed, and the claim's lease has not ended."""
    return "claimed_by" in item and item.get("claim_expires_at", 0) >= now


def state(item: Mapping[str, Any], now: float) -> str:
    """The order's state as a client is told it: `claimed` while a run holds it, or while a
    pending order's line may already be in S3 (`stored_in`: a run stored it, then failed before
    recording it; the next run settles it), else its result status."""
    status = str(item.get("result_status", PENDING))
    being_processed = lease_live(item, now) or "stored_in" in item
    return CLAIMED if status == PENDING and being_processed else status


def expired(item: Mapping[str, Any], now: float) -> bool:
    """Whether the order's 24 hours are over (DynamoDB's TTL deletes it up to days later)."""
    return bool(item.get("expires_at", 0) <= now)


def public_view(item: Mapping[str, Any]) -> dict[str, Any]:
    """The order as its owner sees it; keys, versions and claims stay internal."""
    return {name: item[name] for name in PUBLIC_FIELDS if name in item}
