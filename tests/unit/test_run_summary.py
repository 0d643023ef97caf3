"""The run summary step (entrix.handlers.run_summary): a run's totals from its batches' counts."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from entrix import settings
from entrix.auction.outcomes import REJECTED_EXAMPLES
from entrix.handlers.run_summary import handler

ZERO = {"accepted": 0, "rejected": 0, "failed": 0, "skipped": 0}
BUCKET = "order-results-entrix-123456789012-eu-west-1"


@pytest.fixture(autouse=True)
def _bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.RESULTS_BUCKET_NAME.name, BUCKET)


def test_batch_counts_are_added_up() -> None:
    event = {
        "orders": 9,
        "batches": [
            {"accepted": 2, "rejected": 1, "skipped": 0, "failed": 0},
            {"accepted": 1, "rejected": 2, "skipped": 1, "failed": 0},
            {"accepted": 0, "rejected": 0, "skipped": 0, "failed": 2},
        ],
    }

    summary = handler(event, None)
    summary.pop("digest")

    assert summary == {
        "orders": 9,
        "accepted": 3,
        "rejected": 3,
        "failed": 2,
        "skipped": 1,
        "batches": 3,
    }


def test_a_run_with_rejections_returns_its_digest_with_the_batches_examples() -> None:
    prefix = "rejections/date=2026-12-06/run=run-3/"
    example = {"record_id": "r1", "owner": "desk-a", "power": -12}
    event = {
        "orders": 4,
        "run": "run-3",
        "rejections_prefix": prefix,
        "batches": [
            {"accepted": 2, "rejected": 1, "skipped": 0, "failed": 0, REJECTED_EXAMPLES: [example]},
            {"accepted": 0, "rejected": 1, "skipped": 0, "failed": 0},
        ],
    }

    summary = handler(event, None)

    assert summary["rejected"] == 2
    assert summary["digest"] == {
        "text": f"2 of 4 orders were rejected in auction run run-3; the full list: "
        f"s3://{BUCKET}/{prefix}",
        "status": "rejection_digest",
        "run": "run-3",
        "rejected": 2,
        "orders": 4,
        "examples": [example],
        "rejections": f"s3://{BUCKET}/{prefix}",
    }


def test_a_run_without_rejections_has_no_digest() -> None:
    event = {
        "orders": 2,
        "run": "run-4",
        "rejections_prefix": "rejections/x/",
        "batches": [{"accepted": 2, "rejected": 0, REJECTED_EXAMPLES: []}],
    }

    assert "digest" not in handler(event, None)


def test_a_failed_batch_counted_by_the_state_machine_is_added_like_the_others() -> None:
    # The state machine's catch reports a crashed batch as only its failed count.
    event = {"orders": 5, "batches": [{"accepted": 3, "rejected": 0}, {"failed": 2}]}

    assert handler(event, None) == {"orders": 5, **ZERO, "accepted": 3, "failed": 2, "batches": 2}


@pytest.mark.parametrize("batches", [[], None])
def test_no_batches_add_up_to_zero(batches: list[dict[str, int]] | None) -> None:
    assert handler({"orders": 0, "batches": batches}, None) == {"orders": 0, **ZERO, "batches": 0}


def test_a_missing_order_count_is_zero() -> None:
    assert handler({"batches": [{"accepted": 1}]}, None)["orders"] == 0


def test_counts_given_as_numbers_of_any_json_kind_become_integers() -> None:
    summary = handler({"orders": 2.0, "batches": [{"accepted": 1.0, "rejected": 1}]}, None)
    assert summary.pop("digest")["rejected"] == 1

    assert summary == {"orders": 2, **ZERO, "accepted": 1, "rejected": 1, "batches": 1}
    assert all(type(value) is int for value in summary.values())


def test_other_fields_of_a_batch_are_ignored() -> None:
    event = {"orders": 1, "batches": [{"accepted": 1, "error": {"Error": "x", "Cause": "y"}}]}

    assert handler(event, None) == {"orders": 1, **ZERO, "accepted": 1, "batches": 1}


def test_it_imports_only_the_standard_library() -> None:
    """Importing it loads its own package and the standard library, nothing else."""
    code = (
        "import sys, entrix.handlers.run_summary; "
        "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()

    assert "entrix" in loaded
    assert set(loaded) - {"entrix", "__main__"} <= set(sys.stdlib_module_names)


def test_the_run_logs_its_totals_in_one_line_with_its_id(caplog: pytest.LogCaptureFixture) -> None:
    event = {"orders": 3, "batches": [{"accepted": 2, "failed": 1}], "run": "run-7"}
    with caplog.at_level(logging.INFO, logger="entrix"):
        handler(event, None)
    (line,) = caplog.records
    assert line.getMessage() == "run summary"
    expected = {"orders": 3, "accepted": 2, "rejected": 0, "skipped": 0, "failed": 1}
    logged = {name: getattr(line, name, None) for name in (*expected, "batches")}
    assert logged == {**expected, "batches": 1}
    assert getattr(line, "correlation_id", None) == "run-7"
