"""What a local system's enforcement decided: each call a function made, and its refusal if any.

A scenario's outcomes alone could let a refusal pass (a handler that logs a failed publish and
goes on); the record shows that enforcement saw the calls and what it answered each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from entrix.local.call_log import Call
from entrix.local.iam.enforcement import Refusal
from entrix.local.runtime import LocalSystem


@dataclass
class Checks:
    decided: list[tuple[Call, Refusal | None]] = field(default_factory=list)

    @property
    def refused(self) -> list[tuple[Call, Refusal]]:
        return [(call, refusal) for call, refusal in self.decided if refusal is not None]

    def handlers(self, system: LocalSystem) -> set[str]:
        """The handlers of the functions whose calls were decided."""
        assert system.deployment is not None
        functions = system.deployment.functions
        return {functions[call.function].handler for call, _ in self.decided}


def record_checks(patch: pytest.MonkeyPatch, system: LocalSystem) -> Checks:
    """Record every decision of the system's enforcer from now on (it must be on)."""
    enforcer = system.enforcer
    assert enforcer is not None, "enforcement is off"
    checks = Checks()
    check = enforcer.check

    def recorded(call: Call) -> Refusal | None:
        refusal = check(call)
        checks.decided.append((call, refusal))
        return refusal

    patch.setattr(enforcer, "check", recorded)
    return checks
