"""A run's rejection digest (entrix.auction.digest): one message for all of a run's rejections."""

from __future__ import annotations

from entrix.auction.digest import DIGEST_EXAMPLES, rejection_digest
from entrix.auction.outcomes import EXAMPLES_PER_BATCH, REJECTED_EXAMPLES

PREFIX = "rejections/date=2026-12-06/run=run-7/"


def _example(n: int) -> dict[str, object]:
    return {"record_id": f"r{n}", "owner": f"desk-{n % 2}", "power": n}


def _batch(rejected: int, first: int) -> dict[str, object]:
    examples = [_example(first + i) for i in range(min(rejected, EXAMPLES_PER_BATCH))]
    return {
        "accepted": 1,
        "rejected": rejected,
        "skipped": 0,
        "failed": 0,
        REJECTED_EXAMPLES: examples,
    }


def test_a_run_without_rejections_has_no_digest() -> None:
    batches = [{"accepted": 2, "rejected": 0, REJECTED_EXAMPLES: []}, {"failed": 3}]

    assert rejection_digest("run-7", 5, batches, "bucket", PREFIX) is None
    assert rejection_digest("run-7", 0, [], "bucket", PREFIX) is None


def test_the_digest_counts_the_runs_rejections_and_points_at_the_full_list() -> None:
    digest = rejection_digest("run-7", 100000, [_batch(2, 0), _batch(1, 10)], "results-b", PREFIX)

    assert digest == {
        "text": "3 of 100000 orders were rejected in auction run run-7; the full list: "
        "s3://results-b/rejections/date=2026-12-06/run=run-7/",
        "status": "rejection_digest",
        "run": "run-7",
        "rejected": 3,
        "orders": 100000,
        "examples": [_example(0), _example(1), _example(10)],
        "rejections": "s3://results-b/rejections/date=2026-12-06/run=run-7/",
    }


def test_examples_are_the_first_five_over_many_batches_in_batch_order() -> None:
    batches = [_batch(EXAMPLES_PER_BATCH + 4, 100 * n) for n in range(400)]

    digest = rejection_digest("run-7", 4000, batches, "b", PREFIX)

    assert digest is not None
    assert digest["rejected"] == 400 * (EXAMPLES_PER_BATCH + 4)
    assert DIGEST_EXAMPLES == 5
    assert [e["record_id"] for e in digest["examples"]] == ["r0", "r1", "r2", "r100", "r101"]


def test_batches_without_examples_give_fewer_examples_not_an_error() -> None:
    # A batch the state machine counted as failed names none; nor did Lambda B before it could.
    batches = [
        {"rejected": 4},
        {"failed": 2},
        {"rejected": 1, REJECTED_EXAMPLES: None},
        {"rejected": 1, REJECTED_EXAMPLES: [_example(9)]},
    ]

    digest = rejection_digest("run-7", 9, batches, "b", PREFIX)

    assert digest is not None
    assert digest["rejected"] == 6
    assert digest["examples"] == [_example(9)]


def test_an_example_keeps_only_its_three_fields() -> None:
    batch = {"rejected": 1, REJECTED_EXAMPLES: [{**_example(1), "parameter_1": "secret-ish"}]}

    digest = rejection_digest("run-7", 1, [batch], "b", PREFIX)

    assert digest is not None and digest["examples"] == [_example(1)]
