"""Threads whose AWS calls go one at a time, in an order a test (or Hypothesis) chooses.

`register` every boto3 client the threads use: `before_call` on botocore's `before-call` event,
`after_call` on both ends of a call (`after-call`, and `after-call-error`, which botocore emits
instead when a call raises: otherwise that call would hold the turn for good). Each thread is
known by its name, and the threads a named thread's pool starts (`<name>_<n>`,
entrix.auction.processing) by that name too. `abandon` when the test's example ends, however it
ends: a thread still running would make its calls into the next example's moto (moto's state is
the process's), as a run of the same name.
"""

from __future__ import annotations

import threading
from typing import Any

# A deadlock's detector, not a timing: under load (2 shared cores) 10 s went by once in about
# 700 examples with no call ending.
WAIT_SECONDS = 60


class Turns:
    """Lets each thread's AWS calls go one at a time, in the order of `schedule` (thread names).

    A turn whose thread has finished, or a schedule run out, lets any waiting call go; once
    abandoned, no call goes.
    """

    def __init__(self, schedule: list[str]) -> None:
        self._schedule = list(schedule)
        self._condition = threading.Condition()
        self._busy = False
        self._finished: set[str] = set()
        self._abandoned = False
        self._holder = ""  # whose call is going, for a wait's failure

    def register(self, client: Any) -> None:
        """Make every call of `client` take its turn."""
        client.meta.events.register("before-call", self.before_call)
        client.meta.events.register("after-call", self.after_call)
        client.meta.events.register("after-call-error", self.after_call)

    def before_call(self, **_: Any) -> None:
        name = thread_owner()
        with self._condition:
            while not self._abandoned and (self._busy or not self._my_turn(name)):
                if not self._condition.wait(timeout=WAIT_SECONDS):
                    raise AssertionError(
                        f"{name} waited too long for its turn: next turn "
                        f"{self._schedule[:1]}, call of {self._holder or 'nobody'} going "
                        f"({self._busy}), finished {sorted(self._finished)}"
                    )
            if self._abandoned:
                raise AssertionError(f"{name} made a call after its example ended")
            if self._schedule:
                self._schedule.pop(0)
            self._busy, self._holder = True, threading.current_thread().name

    def after_call(self, **_: Any) -> None:
        with self._condition:
            self._busy = False
            self._condition.notify_all()

    def finished(self, name: str) -> None:
        with self._condition:
            self._finished.add(name)
            self._condition.notify_all()

    def abandon(self) -> None:
        """The example is over: every call waiting or still to come raises instead of going."""
        with self._condition:
            self._abandoned = True
            self._condition.notify_all()

    def _my_turn(self, name: str) -> bool:
        return not self._schedule or self._schedule[0] in (name, *self._finished)


def thread_owner() -> str:
    """The name of the test's thread whose work this thread does (itself, or its pool's)."""
    return threading.current_thread().name.partition("_")[0]
