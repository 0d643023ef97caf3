"""CodeDeploy as `entrix rollback` reads it, through botocore's Stubber: moto has no
StopDeployment, no deployment group's lastSuccessfulDeployment and no Lambda AppSpec revisions.
The shapes are the AWS API's (botocore validates each stubbed response)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import boto3
from botocore.stub import Stubber

from entrix.rollback_command import ACTIVE_STATUSES


def appspec(function: str, alias: str, current: str, target: str) -> str:
    """The AppSpec CloudFormation gives CodeDeploy for an update of `function`'s alias."""
    properties = {
        "Name": function,
        "Alias": alias,
        "CurrentVersion": current,
        "TargetVersion": target,
    }
    return json.dumps(
        {
            "version": 0.0,
            "Resources": [{"Alias": {"Type": "AWS::Lambda::Function", "Properties": properties}}],
        }
    )


def stub_codedeploy(
    application: str,
    group: str,
    *,
    running: list[str],
    last_success: str | None = None,
    created: datetime | None = None,
    content: str = "",
) -> tuple[Any, Stubber]:
    """A client answering the command's calls for one deployment group (`add_group`)."""
    client = boto3.client("codedeploy", region_name="eu-west-1")
    stubber = Stubber(client)
    add_group(
        stubber,
        application,
        group,
        running=running,
        last_success=last_success,
        created=created,
        content=content,
    )
    stubber.activate()
    return client, stubber


def add_group(
    stubber: Stubber,
    application: str,
    group: str,
    *,
    running: list[str],
    last_success: str | None = None,
    created: datetime | None = None,
    content: str = "",
) -> None:
    """The answers to the command's calls for one group, in its order: the group's running
    deployments (each then stopped with rollback); if none, the group's last successful
    deployment (made at `created`), and when the command undoes it (`content` given), its
    revision location (GetDeployment: sha256, never the content) and the revision's AppSpec
    `content` (GetApplicationRevision)."""
    names = {"applicationName": application, "deploymentGroupName": group}
    stubber.add_response(
        "list_deployments",
        {"deployments": running},
        {**names, "includeOnlyStatuses": list(ACTIVE_STATUSES)},
    )
    for deployment_id in running:
        stubber.add_response(
            "stop_deployment",
            {"status": "Pending", "statusMessage": "stopping"},
            {"deploymentId": deployment_id, "autoRollbackEnabled": True},
        )
    if running:
        return
    info: dict[str, Any] = {"deploymentGroupName": group}
    if last_success is not None:
        info["lastSuccessfulDeployment"] = {"deploymentId": last_success, "status": "Succeeded"}
        if created is not None:
            info["lastSuccessfulDeployment"]["createTime"] = created
    stubber.add_response("get_deployment_group", {"deploymentGroupInfo": info}, names)
    if last_success is None or not content:
        return
    sha256 = hashlib.sha256(content.encode()).hexdigest()
    stubber.add_response(
        "get_deployment",
        {
            "deploymentInfo": {
                "deploymentId": last_success,
                "revision": {
                    "revisionType": "AppSpecContent",
                    "appSpecContent": {"sha256": sha256},
                },
            }
        },
        {"deploymentId": last_success},
    )
    location = {"revisionType": "AppSpecContent", "appSpecContent": {"sha256": sha256}}
    stubber.add_response(
        "get_application_revision",
        {
            "applicationName": application,
            "revision": {
                "revisionType": "AppSpecContent",
                "appSpecContent": {"content": content, "sha256": sha256},
            },
        },
        {"applicationName": application, "revision": location},
    )
