"""Threads whose AWS calls go one at a time, in an order a test (or Hypothesis) chooses.

Register `before_call` and `after_call` on every boto3 client the threads use (botocore's
`before-call` and `after-call` events); each thread is known by its name, and the threads a
named thread's pool starts (`<name>_<n>`, entrix.auction.processing) by that name too.
"""

from __future__ import annotations

import threading
from typing import Any


class Turns:
    """Lets each thread's AWS calls go one at a time, in the order of `schedule` (thread names).

    A turn whose thread has finished, or a schedule run out, lets any waiting call go.
    """

    def __init__(self, schedule: list[str]) -> None:
        self._schedule = list(schedule)
        self._condition = threading.Condition()
        self._busy = False
        self._finished: set[str] = set()

    def before_call(self, **_: Any) -> None:
        name = thread_owner()
        with self._condition:
            while self._busy or not self._my_turn(name):
                if not self._condition.wait(timeout=10):
                    raise AssertionError(f"{name} waited too long for its turn")
            if self._schedule:
                self._schedule.pop(0)
            self._busy = True

    def after_call(self, **_: Any) -> None:
        with self._condition:
            self._busy = False
            self._condition.notify_all()

    def finished(self, name: str) -> None:
        with self._condition:
            self._finished.add(name)
            self._condition.notify_all()

    def _my_turn(self, name: str) -> bool:
        return not self._schedule or self._schedule[0] in (name, *self._finished)


def thread_owner() -> str:
    """The name of the test's thread whose work this thread does (itself, or its pool's)."""
    return threading.current_thread().name.partition("_")[0]
