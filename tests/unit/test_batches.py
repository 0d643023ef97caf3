"""Splitting a run's results into batches (entrix.auction.batches.batched)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrix.auction.batches import DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BATCH_ORDERS, batched


def result(index: int, padding: int = 0) -> dict[str, Any]:
    return {"record_id": f"r-{index:04d}" + "x" * padding, "status": "accepted", "power": 7}


def json_size(batch: list[dict[str, Any]]) -> int:
    """The batch's size as compact JSON, as the batches object carries it to a child execution."""
    return len(json.dumps(batch, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def counted_size(batch: list[dict[str, Any]]) -> int:
    """The bound batched keeps: each result's JSON plus a separator, plus the brackets."""
    return 2 + sum(len(json.dumps(r, ensure_ascii=False).encode("utf-8")) + 1 for r in batch)


def test_batches_are_bounded_by_order_count() -> None:
    results = [result(index) for index in range(7)]

    batches = list(batched(results, max_orders=3))

    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert [r for batch in batches for r in batch] == results


def test_an_exact_multiple_leaves_no_empty_batch() -> None:
    batches = list(batched([result(index) for index in range(6)], max_orders=3))
    assert [len(batch) for batch in batches] == [3, 3]


def test_no_results_give_no_batches() -> None:
    assert list(batched([])) == []


def test_batches_are_bounded_by_bytes() -> None:
    results = [result(index, padding=100) for index in range(10)]
    max_bytes = counted_size(results[:3])  # room for exactly three

    batches = list(batched(results, max_orders=100, max_bytes=max_bytes))

    assert [len(batch) for batch in batches] == [3, 3, 3, 1]
    assert all(json_size(batch) <= max_bytes for batch in batches)
    assert [r for batch in batches for r in batch] == results


def test_one_byte_less_moves_a_result_to_the_next_batch() -> None:
    results = [result(index, padding=100) for index in range(6)]
    max_bytes = counted_size(results[:3]) - 1

    assert [len(b) for b in batched(results, max_orders=100, max_bytes=max_bytes)] == [2, 2, 2]


def test_bytes_are_counted_in_utf8() -> None:
    results = [{"record_id": "é" * 50} for _ in range(4)]
    max_bytes = counted_size(results[:2])  # "é" is two bytes: a character count would fit four

    batches = list(batched(results, max_orders=100, max_bytes=max_bytes))

    assert [len(batch) for batch in batches] == [2, 2]


def test_a_single_result_over_the_byte_bound_is_refused() -> None:
    results = [result(0), result(1, padding=500)]

    with pytest.raises(ValueError, match="over the 200 byte batch"):
        list(batched(results, max_bytes=200))


def test_a_result_that_just_fits_alone_is_one_batch() -> None:
    big = result(0, padding=300)

    assert list(batched([big], max_bytes=counted_size([big]))) == [[big]]
    with pytest.raises(ValueError):
        list(batched([big], max_bytes=counted_size([big]) - 1))


@pytest.mark.parametrize(("max_orders", "max_bytes"), [(0, 100), (-1, 100), (10, 0), (10, -5)])
def test_bounds_below_one_are_refused(max_orders: int, max_bytes: int) -> None:
    with pytest.raises(ValueError, match="at least one"):
        list(batched([result(0)], max_orders=max_orders, max_bytes=max_bytes))


def test_the_defaults_keep_a_child_execution_under_256_kib() -> None:
    assert DEFAULT_MAX_BATCH_BYTES < 256 * 1024
    results = [result(index, padding=200) for index in range(3 * DEFAULT_MAX_BATCH_ORDERS)]

    batches = list(batched(results))

    assert all(len(batch) <= DEFAULT_MAX_BATCH_ORDERS for batch in batches)
    assert all(json_size(batch) <= DEFAULT_MAX_BATCH_BYTES for batch in batches)


@settings(max_examples=100, deadline=None)
@given(
    paddings=st.lists(st.integers(min_value=0, max_value=120), max_size=40),
    max_orders=st.integers(min_value=1, max_value=8),
    extra_bytes=st.integers(min_value=0, max_value=600),
)
def test_every_result_lands_once_in_order_within_both_bounds(
    paddings: list[int], max_orders: int, extra_bytes: int
) -> None:
    results = [result(index, padding) for index, padding in enumerate(paddings)]
    largest = max((counted_size([r]) for r in results), default=3)
    max_bytes = largest + extra_bytes

    batches = list(batched(iter(results), max_orders=max_orders, max_bytes=max_bytes))

    assert [r for batch in batches for r in batch] == results
    assert all(0 < len(batch) <= max_orders for batch in batches)
    assert all(json_size(batch) <= max_bytes for batch in batches)
    for batch, following in itertools.pairwise(batches):
        full = len(batch) == max_orders or counted_size([*batch, following[0]]) > max_bytes
        assert full, "a batch is closed only when the next result would not fit"
