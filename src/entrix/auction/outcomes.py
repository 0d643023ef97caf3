"""What a batch came to: the counts Lambda B answers, which the run summary adds up.

One contract between three readers (Lambda B, the run-summary function and `entrix pipeline
run`), so it lives here alone and imports nothing beyond the standard library: the run-summary
function stays small at a cold start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# accepted: stored in S3; rejected: alerted; skipped: another run has it or already recorded it;
# failed: released for the next run (a store, the topic or the table was unavailable).
OUTCOMES = ("accepted", "rejected", "skipped", "failed")
# A batch's reply also names its first rejected orders, `{"record_id", "owner", "power"}` each,
# under this key, at most this many: the run's rejection digest quotes the first few of them.
REJECTED_EXAMPLES = "rejected_examples"
EXAMPLES_PER_BATCH = 3


def no_outcomes() -> dict[str, int]:
    """Every outcome at 0: a reply or summary always names all four."""
    return dict.fromkeys(OUTCOMES, 0)


def add_up(batches: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The run's totals from its batches' counts (a count a batch lacks is 0)."""
    totals = no_outcomes()
    for batch in batches:
        for outcome in OUTCOMES:
            totals[outcome] += int(batch.get(outcome, 0))
    return totals
