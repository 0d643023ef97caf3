"""The check that no test leaves a handler running past its timeout (tests/conftest.py).

The local Lambda runtime abandons a handler at its timeout but cannot kill its thread: its Python
code runs on until it returns or makes an AWS call. One still running after its test could act in
the next test, so the test that left it fails, once: the threads reported are forgotten.
"""

import sys
import threading
import time

import pytest

# How long a test's teardown waits, in all, for the handlers it left past their timeout to end.
GRACE_SECONDS = 60.0


def running() -> set[threading.Thread]:
    """The abandoned handlers' threads still running (none if no handler ever ran)."""
    runner = sys.modules.get("entrix.local.lambda_runner")
    return set() if runner is None else set(runner.abandoned_handlers())


def fail_if_left(before: set[threading.Thread], grace: float = GRACE_SECONDS) -> None:
    """Fail if a handler abandoned since `before` is still running after `grace` seconds."""
    deadline = time.monotonic() + grace
    for thread in running() - before:
        thread.join(max(0.0, deadline - time.monotonic()))
    if left := sorted(running() - before, key=lambda thread: thread.name):
        sys.modules["entrix.local.lambda_runner"].forget_abandoned(left)
        names = [thread.name for thread in left]
        pytest.fail(f"handlers abandoned at their timeout still run after the test: {names}")
