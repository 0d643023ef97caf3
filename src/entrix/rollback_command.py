"""`entrix rollback --stack NAME`: undo the stack's last update for its functions, in seconds
and without the pipeline.

Each function's callers invoke its `live` alias, which a CodeDeploy deployment group moves to a
new version (infra/constructs/gradual_deploy.py). The command anchors on the stack's last
update: it refuses a stack whose last update was rolled back already (or is in a state it cannot
handle), since undoing deployments then would take the functions one release further back. For
each alias it either stops the group's running deployment with rollback (CodeDeploy shifts the
traffic back itself; the stack update then fails and CloudFormation rolls the whole stack back),
or, when none runs, points the alias at the version it was on before the group's last
successful deployment (CodeDeploy records both versions in the deployment's AppSpec), but only
if that deployment was made by the stack's last update and the alias is still on its versions.
An alias already back, or not deployed by the last update, is left as it is, so the command is
safe to run again; an alias on a version that deployment did not name is left alone and
reported, as is one whose calls failed (the others are still rolled back). When it moved or
stopped the authorizer's alias it flushes the API stage's authorizer cache, which would serve
the bad version's decisions for up to its TTL. It updates aliases and stops deployments only;
a stop also makes CloudFormation roll back the stack update in progress (docs/delivery.md,
"Rolling back").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from entrix.command_errors import describe
from entrix.revoke_command import flush_stack_authorizer_cache

# How a rollback alarm's description starts: CodeDeploy watches these alarms during a deployment,
# and they notify no one (an error outside a deployment is the operations alarms' to report).
ROLLBACK_ALARM_PREFIX = "Rolls back a deployment: "
# Deployments CodeDeploy may still shift traffic in (a Lambda deployment never "Baking"s, but a
# stop is right for any deployment not finished).
ACTIVE_STATUSES = ("Created", "Queued", "InProgress", "Baking", "Ready")
# Stack states whose last update the command can undo: finished, or still shifting traffic (its
# running deployments are stopped). Any other state is refused.
UNDOABLE_STACK_STATUSES = (
    "UPDATE_COMPLETE",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_IN_PROGRESS",
)
# The AWS SDK's errors: reported for the alias whose calls failed, the others still rolled back.
CALL_ERRORS = (ClientError, BotoCoreError)

# service name -> boto3 client (of the stack's region)
Clients = Callable[[str], Any]


class RollbackError(Exception):
    """A problem the user can act on; printed as is."""


@dataclass(frozen=True)
class AliasDeployment:
    """A function's alias and the CodeDeploy deployment group that moves it."""

    alias_arn: str  # arn:aws:lambda:<region>:<account>:function:<name>:<alias>
    application: str
    deployment_group: str
    # API Gateway invokes it as the authorizer and caches its decisions.
    authorizer: bool = False

    @property
    def function_name(self) -> str:
        return self.alias_arn.split(":")[6]

    @property
    def alias_name(self) -> str:
        return self.alias_arn.split(":")[7]


@dataclass(frozen=True)
class Outcome:
    """What the command did for one alias; `ok` False when it had to leave it alone, `changed`
    when it moved the alias or stopped its deployment."""

    alias: AliasDeployment
    text: str
    ok: bool = True
    changed: bool = False


def rollback(args: argparse.Namespace) -> int:
    """Print one line per aliased function of the stack; 1 if any could not be put back."""

    def clients(service: str) -> Any:
        return boto3.client(service, region_name=args.region)  # type: ignore[call-overload]

    try:
        cloudformation = clients("cloudformation")
        stack = last_update(cloudformation, args.stack)
        aliases = aliased_functions(cloudformation, args.stack)
    except (RollbackError, *CALL_ERRORS) as error:
        print(f"entrix rollback: {describe(error)}", file=sys.stderr)
        return 1
    lambda_, codedeploy = clients("lambda"), clients("codedeploy")
    outcomes = []
    for alias in aliases:
        try:
            outcome = roll_back(alias, lambda_, codedeploy, since=stack["LastUpdatedTime"])
        except (RollbackError, *CALL_ERRORS) as error:
            outcome = Outcome(alias, f"{alias.alias_name} not rolled back: {error}", ok=False)
        print(f"{'ok  ' if outcome.ok else 'LEFT'} {alias.function_name}: {outcome.text}")
        outcomes.append(outcome)
    flushed = True
    if any(outcome.changed and outcome.alias.authorizer for outcome in outcomes):
        try:
            stage = flush_stack_authorizer_cache(clients("apigateway"), stack)
            print(f"ok   authorizer cache of {stage} flushed")
        except (LookupError, *CALL_ERRORS) as error:
            print(
                f"LEFT authorizer cache not flushed ({error}): run `aws apigateway "
                "flush-stage-authorizers-cache`, or its cached answers last up to their TTL"
            )
            flushed = False
    return 0 if flushed and all(outcome.ok for outcome in outcomes) else 1


def last_update(cloudformation: Any, stack: str) -> dict[str, Any]:
    """The stack as DescribeStacks gives it, if its last update is one the command can undo."""
    (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    status = description["StackStatus"]
    if status.startswith("UPDATE_ROLLBACK"):
        raise RollbackError(
            f"stack {stack} is {status}: its last update failed and CloudFormation rolls it back "
            "(or did), aliases included; undoing deployments now would take the functions one "
            "release further back"
        )
    if status not in UNDOABLE_STACK_STATUSES or "LastUpdatedTime" not in description:
        raise RollbackError(
            f"stack {stack} is {status}: the command undoes only an update that finished "
            f"or is in progress ({', '.join(UNDOABLE_STACK_STATUSES)})"
        )
    return dict(description)


def aliased_functions(cloudformation: Any, stack: str) -> list[AliasDeployment]:
    """Every alias of the stack that a deployment group moves, from the stack's template (each
    alias's UpdatePolicy names its group; an API Gateway authorizer's URI names its alias) and
    the physical ids of its resources."""
    body = cloudformation.get_template(StackName=stack)["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    physical = dict(_physical_ids(cloudformation, stack))
    resources = template.get("Resources", {})
    authorizers = {
        ref
        for resource in resources.values()
        if resource.get("Type") == "AWS::ApiGateway::Authorizer"
        for ref in _refs(resource.get("Properties", {}).get("AuthorizerUri"))
    }
    found = []
    for logical_id, resource in resources.items():
        update = resource.get("UpdatePolicy", {}).get("CodeDeployLambdaAliasUpdate")
        if resource.get("Type") != "AWS::Lambda::Alias" or update is None:
            continue
        try:
            found.append(
                AliasDeployment(
                    alias_arn=physical[logical_id],
                    application=physical[update["ApplicationName"]["Ref"]],
                    deployment_group=physical[update["DeploymentGroupName"]["Ref"]],
                    authorizer=logical_id in authorizers,
                )
            )
        except (KeyError, TypeError):
            raise RollbackError(
                f"stack {stack}: alias {logical_id} or its deployment group is not deployed"
            ) from None
    if not found:
        raise RollbackError(f"stack {stack} has no alias that CodeDeploy moves")
    return found


def _refs(value: Any) -> Iterator[str]:
    """The logical ids `value` (a template property) names with Ref."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            yield value["Ref"]
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _physical_ids(cloudformation: Any, stack: str) -> Iterator[tuple[str, str]]:
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        for summary in page["StackResourceSummaries"]:
            if "PhysicalResourceId" in summary:
                yield summary["LogicalResourceId"], summary["PhysicalResourceId"]


def roll_back(alias: AliasDeployment, lambda_: Any, codedeploy: Any, *, since: datetime) -> Outcome:
    """Stop the alias's running deployment with rollback, or point the alias back at the version
    before its group's last successful deployment if the stack update that began at `since` made
    that deployment; nothing if the alias is already there."""
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
            changed=True,
        )
    group = codedeploy.get_deployment_group(
        applicationName=alias.application, deploymentGroupName=alias.deployment_group
    )["deploymentGroupInfo"]
    last = group.get("lastSuccessfulDeployment", {})
    deployment_id = last.get("deploymentId")
    current = lambda_.get_alias(FunctionName=alias.function_name, Name=alias.alias_name)
    version = current["FunctionVersion"]
    weights = current.get("RoutingConfig", {}).get("AdditionalVersionWeights") or {}
    # A deployment older than the last update moved the alias a release before: undoing it would
    # go too far back (the last update did not change this function).
    if deployment_id is None or "createTime" not in last or last["createTime"] < since:
        return Outcome(
            alias, f"{alias.alias_name} stays on version {version}: not deployed by the last update"
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
        changed=True,
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
