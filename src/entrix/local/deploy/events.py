"""EventBridge rules: recorded in the endpoint for inspection; the local scheduler fires them.

moto does not run schedules, so each rule with a ScheduleExpression becomes a `Schedule` in the
deployment, naming the state machines it starts.
"""

from __future__ import annotations

import json
from typing import Any

from entrix.local.deploy.deployment import Schedule
from entrix.local.deploy.registry import DeployContext, creates
from entrix.local.template import Resource


@creates("AWS::Events::Rule")
def create_rule(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    name = deployer.name(resource, p.get("Name"))
    arguments: dict[str, Any] = {"Name": name, "State": p.get("State", "ENABLED")}
    for key in ("ScheduleExpression", "Description"):
        if key in p:
            arguments[key] = p[key]
    if "EventPattern" in p:
        arguments["EventPattern"] = json.dumps(p["EventPattern"])
    events = deployer.clients("events")
    arn = events.put_rule(**arguments)["RuleArn"]
    targets = p.get("Targets", [])
    if targets:
        events.put_targets(
            Rule=name,
            Targets=[
                {k: v for k, v in t.items() if k in ("Id", "Arn", "RoleArn", "Input")}
                for t in targets
            ],
        )
    if "ScheduleExpression" in p:
        machines = [t for t in targets if ":states:" in t["Arn"]]
        deployer.deployment.schedules.append(
            Schedule(
                logical_id=resource.logical_id,
                rule_arn=arn,
                expression=p["ScheduleExpression"],
                state_machine_arns=tuple(t["Arn"] for t in machines),
                inputs=tuple(t.get("Input") for t in machines),
                enabled=arguments["State"] == "ENABLED",
            )
        )
    deployer.provide(resource, name, Arn=arn)
