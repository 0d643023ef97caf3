"""Rewrites of a state machine's Amazon States Language definition before it is created locally."""

from __future__ import annotations

import json
from typing import Any


def substitute(definition: dict[str, Any], substitutions: dict[str, Any]) -> dict[str, Any]:
    """The definition with each `${key}` of `DefinitionSubstitutions` replaced by its value."""
    for key, value in substitutions.items():
        definition = json.loads(json.dumps(definition).replace("${" + key + "}", str(value)))
    return definition


def cap_wait_seconds(definition: dict[str, Any], max_seconds: int) -> dict[str, Any]:
    """The definition with every Wait state's fixed `Seconds` lowered to at most `max_seconds`.

    Only the local copy changes; the deployed definition keeps its waits.
    """

    def visit(states: dict[str, Any]) -> None:
        for state in states.values():
            if state.get("Type") == "Wait" and isinstance(state.get("Seconds"), int | float):
                state["Seconds"] = min(state["Seconds"], max_seconds)
            for nested in ("Iterator", "ItemProcessor"):
                if nested in state:
                    visit(state[nested].get("States", {}))
            for branch in state.get("Branches", []):
                visit(branch.get("States", {}))

    visit(definition.get("States", {}))
    return definition
