"""What a local system's enforcement decided: each call a function made, and its refusal if any.

A scenario's outcomes alone could let a refusal pass (a handler that logs a failed publish and
goes on); the record shows that enforcement saw the calls and what it answered each, and that
no call a function made went past it undecided.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from entrix.local import call_log
from entrix.local.call_log import Call
from entrix.local.iam.enforcement import Enforcer, Refusal
from entrix.local.runtime import LocalSystem


@dataclass
class Checks:
    decided: list[tuple[Call, Refusal | None]] = field(default_factory=list)
    made: list[Call] = field(default_factory=list)  # every call of a function (call_log)

    @property
    def refused(self) -> list[tuple[Call, Refusal]]:
        return [(call, refusal) for call, refusal in self.decided if refusal is not None]

    def handlers(self, system: LocalSystem) -> set[str]:
        """The handlers of the functions whose calls were decided."""
        assert system.deployment is not None
        functions = system.deployment.functions
        return {functions[call.function].handler for call, _ in self.decided}

    def assert_every_call_decided(self) -> None:
        """Each call the functions made was decided by the enforcer as often as it was made:
        the same `Call` objects, the same count. A call that went past enforcement fails here.
        (The enforcer also decides calls no function made: a deploy's check of an event invoke
        config's destination.)"""
        made = Counter(map(id, self.made))
        decided = Counter(id(call) for call, _ in self.decided)
        wrong = [
            (call, decided[id(call)]) for call in self.made if made[id(call)] != decided[id(call)]
        ]
        assert not wrong, f"calls made but decided another number of times: {wrong}"


@contextlib.contextmanager
def record_checks() -> Iterator[Checks]:
    """Every call a function makes inside the block, and every decision of the enforcer on one.

    Open it before the local system (`with record_checks() as checks, harness.in_process(...)`):
    so it sees the deploy's own invocations too, and closes only once the system stopped and
    every invocation has ended, which makes `assert_every_call_decided` exact. On a clean exit it
    asserts that (enforcement must be on).
    """
    check = Enforcer.check

    def recorded(enforcer: Enforcer, call: Call) -> Refusal | None:
        refusal = check(enforcer, call)
        checks.decided.append((call, refusal))
        return refusal

    with call_log.recording() as made:
        checks = Checks(made=made)
        Enforcer.check = recorded  # type: ignore[method-assign]
        try:
            yield checks
        finally:
            Enforcer.check = check  # type: ignore[method-assign]
    checks.assert_every_call_decided()
