"""Step Functions state machines: the template's definition, substituted and with waits capped."""

from __future__ import annotations

import json
from typing import Any

from entrix.local.deploy import asl
from entrix.local.deploy.deployment import DeploymentError
from entrix.local.deploy.registry import DeployContext, creates
from entrix.local.template import Resource


@creates("AWS::StepFunctions::StateMachine")
def create_state_machine(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    name = deployer.name(resource, p.get("StateMachineName"), 80)
    if "DefinitionString" in p:
        definition = json.loads(p["DefinitionString"])
    elif "Definition" in p:
        definition = p["Definition"]
    else:
        raise DeploymentError("a state machine needs DefinitionString or Definition")
    definition = asl.substitute(definition, p.get("DefinitionSubstitutions") or {})
    if deployer.max_wait_seconds is not None:
        definition = asl.cap_wait_seconds(definition, deployer.max_wait_seconds)
    arn = deployer.clients("stepfunctions").create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn=p["RoleArn"],
        type=p.get("StateMachineType", "STANDARD"),
    )["stateMachineArn"]
    deployer.deployment.state_machines[resource.logical_id] = arn
    deployer.provide(resource, arn, Arn=arn, Name=name)
