"""IAM roles: created so functions and state machines have a role moto accepts.

Policies are not enforced by the local endpoint, so only the role itself is created.
"""

from __future__ import annotations

import json
from typing import Any

from entrix.local.deploy.registry import DeployContext, creates
from entrix.local.template import Resource


@creates("AWS::IAM::Role")
def create_role(deployer: DeployContext, resource: Resource, p: dict[str, Any]) -> None:
    name = deployer.name(resource, p.get("RoleName"))
    role = deployer.clients("iam").create_role(
        RoleName=name,
        Path=p.get("Path", "/"),
        AssumeRolePolicyDocument=json.dumps(p.get("AssumeRolePolicyDocument", {})),
    )["Role"]
    deployer.provide(resource, name, Arn=role["Arn"], RoleId=role["RoleId"])
