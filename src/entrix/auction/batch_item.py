"""The contract between Lambda A and Lambda B: one item of the results run's Distributed Map.

Lambda A writes a run's batches to the results bucket as one JSON array of
`{"results_key": ..., "orders": [{"order_key", "version", "status", "power"}, ...]}`; the state
machine's ItemSelector adds the run's id and hands each item to one Lambda B invocation, which
reads it as a `ResultsBatch`. An order's owner and fields are not part of it: Lambda B claims
the very version the platform gave a result for, and writes an accepted order's line from the
item it claimed, the one source of an order's fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from entrix.auction.platform import AuctionResult, Status


class OrderResult(BaseModel):
    """The platform's result for one order."""

    model_config = ConfigDict(frozen=True)

    order_key: str = Field(min_length=1)
    version: str = Field(min_length=1)
    status: Status
    power: int = Field(ge=0)


class ResultsBatch(BaseModel):
    """One Distributed Map item: a batch of results, the key of its results object and the run."""

    model_config = ConfigDict(frozen=True)

    run_id: str = Field(min_length=1)
    results_key: str = Field(pattern=r"^results/.+\.jsonl$")
    orders: list[OrderResult] = Field(min_length=1)


def order_result(result: AuctionResult) -> dict[str, Any]:
    """An `OrderResult` as Lambda A writes it: a plain dict (a run may hold 200,000 of them, too
    many to build through the model), checked against the model by the contract's tests."""
    return {
        "order_key": result.order.order_key,
        "version": result.order.version,
        "status": result.status.value,
        "power": result.power,
    }


def batch_item(results_key: str, orders: list[dict[str, Any]]) -> dict[str, Any]:
    """One batch as Lambda A writes it; the state machine adds `run_id`."""
    return {"results_key": results_key, "orders": orders}
