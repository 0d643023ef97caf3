"""What a local deployment produced, and the error that stops one.

Kept apart from the `Deployer` so each service's creators can use these without importing it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from entrix.local.lambda_runner import FunctionSpec
from entrix.local.streams import StreamMapping


class DeploymentError(Exception):
    """The template cannot be deployed locally; the message names the resource."""


@dataclass(frozen=True)
class Schedule:
    """An EventBridge rule with a ScheduleExpression and the state machines it starts."""

    logical_id: str
    rule_arn: str
    expression: str
    state_machine_arns: tuple[str, ...]
    inputs: tuple[str | None, ...]
    enabled: bool


@dataclass
class Deployment:
    """What was created: physical names by logical id, and the parts the runtime drives itself."""

    stack_name: str
    region: str
    account_id: str
    names: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str | None] = field(default_factory=dict)  # table name -> TTL attribute
    topics: list[str] = field(default_factory=list)  # topic ARNs
    functions: dict[str, FunctionSpec] = field(default_factory=dict)  # by function name
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    schedules: list[Schedule] = field(default_factory=list)
    stream_mappings: list[StreamMapping] = field(default_factory=list)
    # REST API resources, resolved: logical id -> (type, properties), plus their assigned ids.
    api: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    api_ids: dict[str, str] = field(default_factory=dict)
    ignored: list[tuple[str, str]] = field(default_factory=list)

    def names_of(self, resource_type: str) -> list[str]:
        return [self.names[i] for i, t in self.types.items() if t == resource_type]

    def table_named_by(self, variable: str) -> str | None:
        """The table the functions' environment variable `variable` names (the service's
        ORDERS_TABLE_NAME, say), or None when no function sets it."""
        named = {spec.environment.get(variable) for spec in self.functions.values()}
        found = sorted(name for name in named if name in self.tables)
        if len(found) > 1:
            raise DeploymentError(f"{variable} names more than one table: {found}")
        return found[0] if found else None


def physical_name(stack_name: str, logical_id: str, max_length: int = 64) -> str:
    """`<stack>-<LogicalId>`, shortened with a hash suffix when longer than the service allows."""
    name = f"{stack_name}-{logical_id}"
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: max_length - 9]}-{digest}"
