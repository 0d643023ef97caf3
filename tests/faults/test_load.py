"""The load run (bench/load.py) at a small size: concurrent clients lose no acknowledged order."""

from __future__ import annotations

import pytest

from bench import load


@pytest.mark.e2e
def test_every_acknowledged_order_of_a_concurrent_run_is_stored() -> None:
    figures = load.run(orders=600, clients=4, batch_size=20, time_limit_seconds=120)

    assert figures["errors"] == 0, figures["statuses"]
    assert figures["acknowledged"] == 600
    assert figures["found"] == 600
    assert figures["lost"] == 0
    assert figures["requests"] == 30
