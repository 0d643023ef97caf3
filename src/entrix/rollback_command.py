"""`entrix rollback --stack NAME`: put every function of a deployed stack back on the version it
ran before the last deployment, in seconds and without the pipeline.

Each function's callers invoke its `live` alias, which a CodeDeploy deployment group moves to a
new version (infra/constructs/gradual_deploy.py). For each alias the command either stops the
group's running deployment with rollback (CodeDeploy shifts the traffic back itself), or, when
none runs, points the alias at the version it was on before the group's last successful
deployment (CodeDeploy records both versions in the deployment's AppSpec). An alias already
there is left as it is, so the command is safe to run again; an alias on a version that
deployment did not name is left alone and reported. It changes aliases only: tables, buckets,
the state machine definition and every other resource stay as the last deployment left them
(docs/delivery.md, "Rolling back").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

# Deployments CodeDeploy may still shift traffic in (a Lambda deployment never "Baking"s, but a
# stop is right for any deployment not finished).
# How a rollback alarm's description starts: CodeDeploy watches these alarms during a deployment,
# and they notify no one (an error outside a deployment is the operations alarms' to report).
ROLLBACK_ALARM_PREFIX = "Rolls back a deployment: "
ACTIVE_STATUSES = ("Created", "Queued", "InProgress", "Baking", "Ready")

# service name -> boto3 client (of the stack's region)
Clients = Callable[[str], Any]


class RollbackError(Exception):
    """A problem the user can act on; printed to stderr as is."""


@dataclass(frozen=True)
class AliasDeployment:
    """A function's alias and the CodeDeploy deployment group that moves it."""

    alias_arn: str  # arn:aws:lambda:<region>:<account>:function:<name>:<alias>
    application: str
    deployment_group: str

    @property
    def function_name(self) -> str:
        return self.alias_arn.split(":")[6]

    @property
    def alias_name(self) -> str:
        return self.alias_arn.split(":")[7]


@dataclass(frozen=True)
class Outcome:
    """What the command did for one alias; `ok` False when it had to leave it alone."""

    alias: AliasDeployment
    text: str
    ok: bool = True


def rollback(args: argparse.Namespace) -> int:
    """Print one line per aliased function of the stack; 1 if any could not be put back."""

    def clients(service: str) -> Any:
        return boto3.client(service, region_name=args.region)  # type: ignore[call-overload]

    try:
        aliases = aliased_functions(clients("cloudformation"), args.stack)
        failed = 0
        for alias in aliases:
            outcome = roll_back(alias, clients("lambda"), clients("codedeploy"))
            print(f"{'ok  ' if outcome.ok else 'LEFT'} {alias.function_name}: {outcome.text}")
            failed += not outcome.ok
    except (RollbackError, ClientError, BotoCoreError) as error:
        print(f"entrix rollback: {error}", file=sys.stderr)
        return 1
    return 1 if failed else 0


def aliased_functions(cloudformation: Any, stack: str) -> list[AliasDeployment]:
    """Every alias of the stack that a deployment group moves, from the stack's template (each
    alias's UpdatePolicy names its group) and the physical ids of its resources."""
    body = cloudformation.get_template(StackName=stack)["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    physical = dict(_physical_ids(cloudformation, stack))
    found = []
    for logical_id, resource in template.get("Resources", {}).items():
        update = resource.get("UpdatePolicy", {}).get("CodeDeployLambdaAliasUpdate")
        if resource.get("Type") != "AWS::Lambda::Alias" or update is None:
            continue
        try:
            found.append(
                AliasDeployment(
                    alias_arn=physical[logical_id],
                    application=physical[update["ApplicationName"]["Ref"]],
                    deployment_group=physical[update["DeploymentGroupName"]["Ref"]],
                )
            )
        except (KeyError, TypeError):
            raise RollbackError(
                f"stack {stack}: alias {logical_id} or its deployment group is not deployed"
            ) from None
    if not found:
        raise RollbackError(f"stack {stack} has no alias that CodeDeploy moves")
    return found


def _physical_ids(cloudformation: Any, stack: str) -> Iterator[tuple[str, str]]:
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        for summary in page["StackResourceSummaries"]:
            if "PhysicalResourceId" in summary:
                yield summary["LogicalResourceId"], summary["PhysicalResourceId"]


def roll_back(alias: AliasDeployment, lambda_: Any, codedeploy: Any) -> Outcome:
    """Stop the alias's running deployment with rollback, or point the alias back at the version
    before its group's last successful deployment; nothing if it is already there."""
    running = codedeploy.list_deployments(
        applicationName=alias.application,
        deploymentGroupName=alias.deployment_group,
        includeOnlyStatuses=list(ACTIVE_STATUSES),
    )["deployments"]
    if running:
        for deployment_id in running:
            codedeploy.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
        return Outcome(
            alias,
            f"stopped deployment {', '.join(running)} with rollback: CodeDeploy moves "
            f"{alias.alias_name} back to the version it was on",
        )
    group = codedeploy.get_deployment_group(
        applicationName=alias.application, deploymentGroupName=alias.deployment_group
    )["deploymentGroupInfo"]
    deployment_id = group.get("lastSuccessfulDeployment", {}).get("deploymentId")
    current = lambda_.get_alias(FunctionName=alias.function_name, Name=alias.alias_name)
    version = current["FunctionVersion"]
    weights = current.get("RoutingConfig", {}).get("AdditionalVersionWeights") or {}
    if deployment_id is None:
        return Outcome(
            alias, f"{alias.alias_name} stays on version {version}: no deployment to undo"
        )
    before, after = deployment_versions(codedeploy, deployment_id, alias)
    if version == before and not weights:
        return Outcome(
            alias,
            f"{alias.alias_name} already on version {before}, the one before "
            f"deployment {deployment_id}",
        )
    if version not in (before, after):
        return Outcome(
            alias,
            f"{alias.alias_name} is on version {version}, which deployment {deployment_id} "
            f"({before} -> {after}) did not name: left alone",
            ok=False,
        )
    lambda_.update_alias(
        FunctionName=alias.function_name,
        Name=alias.alias_name,
        FunctionVersion=before,
        RoutingConfig={"AdditionalVersionWeights": {}},
    )
    shown = f"{version} (+{', '.join(sorted(weights))})" if weights else version
    return Outcome(
        alias,
        f"{alias.alias_name} {shown} -> {before}, the version before deployment {deployment_id}",
    )


def deployment_versions(
    codedeploy: Any, deployment_id: str, alias: AliasDeployment
) -> tuple[str, str]:
    """(CurrentVersion, TargetVersion) of the alias in the deployment's AppSpec, which
    CloudFormation writes (as JSON) for each alias it has CodeDeploy move."""
    location = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["revision"]
    # GetDeployment gives the AppSpec's sha256 but never its content: GetApplicationRevision does.
    kind = "appSpecContent" if "appSpecContent" in location else "string"
    revision = codedeploy.get_application_revision(
        applicationName=alias.application,
        revision={
            "revisionType": location["revisionType"],
            kind: {"sha256": location.get(kind, {}).get("sha256", "")},
        },
    )["revision"]
    content = revision.get(kind, {}).get("content")
    try:
        appspec = json.loads(content or "")
    except json.JSONDecodeError:
        raise RollbackError(
            f"deployment {deployment_id}: its AppSpec is not JSON (is it CloudFormation's?)"
        ) from None
    for resource in appspec.get("Resources", []):
        for spec in resource.values():
            p = spec.get("Properties", {})
            name = str(p.get("Name", "")).split(":")[-1]
            if name == alias.function_name and p.get("Alias") == alias.alias_name:
                return str(p["CurrentVersion"]), str(p["TargetVersion"])
    raise RollbackError(
        f"deployment {deployment_id} does not name {alias.function_name}:{alias.alias_name}"
    )
