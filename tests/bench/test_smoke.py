"""`make bench` cannot break unnoticed: every one of its workloads runs once, at its smallest, as
`python -m bench --smoke` (bench/smoke.py). No figure is checked, only that each part ran.

About a minute: the service stack synthesized with its assets bundled (when the sources changed
since the last smoke), two `entrix local` processes, a few in-process systems.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE_LIMIT_SECONDS = 600  # a hang, not a measure: the smoke takes about a minute


@pytest.mark.slow
def test_every_bench_workload_runs_once() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SMOKE_LIMIT_SECONDS,
        check=False,
    )

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-20_000:]
    assert "smoke: every part of the bench ran once" in completed.stdout
