"""The one timestamp format the service writes: UTC ISO 8601 to the millisecond, ending in `Z`.

Orders carry it as `received_at` (which the pending index sorts on, so every writer must agree)
and results as `result_at`.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_milliseconds(epoch_seconds: float) -> str:
    """`2026-11-25T10:00:00.123Z` for an epoch time in seconds."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
