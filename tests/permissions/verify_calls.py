"""The AWS calls `entrix verify` really makes, observed against the local system in this process.

Each mode runs as the pipeline runs it, from the stack's outputs (`target_of_stack`: the
stack's outputs, the authorizer's settings and, in `full` mode, the signing key) through every
check of the mode, with boto3 pointed at the local endpoint (AWS_ENDPOINT_URL). The thread is
marked `entrix-verify` for `entrix.local.call_log`, which notes every call before it is sent,
so a call the endpoint cannot serve is observed all the same.

The local system has no CloudFormation stack, no alarm actions and no TestState: the stack is
created in the endpoint with the outputs the template declares (the local resources' names),
the template's alarms are put there (`deploy_alarms`), and the two operations moto does not
serve are answered before they are sent, as AWS answers them when they work: the probe alarm's
"Successfully executed action" history item, and TestState's SUCCEEDED. What they prove in
AWS (the alarm's publish, the machine role's publish) is the permission model's kinds 3 and 2.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import warnings
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse, HTTPHeaders

from entrix.local import call_log, harness
from entrix.local.call_log import Call
from entrix.local.iam.calls import Local, verify_call_requests
from entrix.local.iam.evaluate import Request
from entrix.local.iam.model import Role, StackModel
from entrix.local.runtime import LocalSystem
from entrix.token_command import AUTHORIZER_HANDLER
from entrix.verify_command import MODES, OPS_TOPIC_OUTPUT, run_checks, target_of_stack
from infra.constructs.verification_probe import PROBE_ALARM
from infra.stacks.delivery import VERIFY_MODES
from tests.support.alarm_actions import deploy_alarms

VERIFIER = "entrix-verify"
_OK = AWSResponse("http://entrix-local", 200, HTTPHeaders(), None)


@dataclasses.dataclass(frozen=True)
class Observed:
    """What one mode of `entrix verify` called, and each check's outcome (None: passed)."""

    mode: str
    calls: tuple[Call, ...]
    outcomes: dict[str, str | None]
    # The local system's names back to the template's logical ids (its alarms included).
    local: Local | None = None


def _outputs(system: LocalSystem) -> dict[str, str]:
    """The stack outputs `entrix verify` reads, with the local resources' names."""
    deployment = harness.deployment_of(system)
    (machine,) = deployment.state_machines.values()

    def topic(part: str) -> str:
        (arn,) = [arn for arn in deployment.topics if part in arn]
        return arn

    return {
        "ApiUrl": f"{system.api_url}/orders",
        "AuthorizerFunctionName": harness.function_with_handler(system, AUTHORIZER_HANDLER),
        "ResultsStateMachineArn": machine,
        "AlertTopicArn": topic("AlertTopic"),
        "ProbeAlarmName": f"{system.stack_name}-{PROBE_ALARM}",
        f"{OPS_TOPIC_OUTPUT}0A1B2C3D": topic("OpsTopic"),
    }


def _create_stack(system: LocalSystem, outputs: dict[str, str]) -> None:
    """A CloudFormation stack in the endpoint that holds nothing but the outputs."""
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    with warnings.catch_warnings():
        # moto creates no resource for the handle, and says so; the stack holds its outputs.
        warnings.simplefilter("ignore", UserWarning)
        system.endpoint.client("cloudformation").create_stack(
            StackName=system.stack_name, TemplateBody=json.dumps(template)
        )


class _Unserved:
    """Answers, before they are sent, the two operations the endpoint does not serve."""

    def __init__(self) -> None:
        self.set_at: dict[str, datetime] = {}

    def noted(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        """Keep the call's parameters for `answer` (before-call sees only the wire request)."""
        context["entrix_parameters"] = params
        if model.name == "SetAlarmState" and params.get("StateValue") == "ALARM":
            self.set_at[params["AlarmName"]] = datetime.now(UTC)

    def answer(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        if model.name == "TestState":
            return _OK, {"status": "SUCCEEDED"}
        if model.name == "DescribeAlarmHistory":
            name = context["entrix_parameters"]["AlarmName"]
            items = (
                [
                    {
                        "AlarmName": name,
                        "Timestamp": self.set_at[name],
                        "HistoryItemType": "Action",
                        "HistorySummary": "Successfully executed action (the local probe topic)",
                    }
                ]
                if name in self.set_at
                else []
            )
            return _OK, {"AlarmHistoryItems": items}
        return None


def observe(system: LocalSystem, mode: str) -> Observed:
    """Run every check of `mode` against `system`, as the pipeline runs `entrix verify`."""
    unserved = _Unserved()
    session = boto3.Session()
    for event, handler in (
        ("before-parameter-build.cloudwatch", unserved.noted),
        ("before-call.cloudwatch.DescribeAlarmHistory", unserved.answer),
        ("before-call.sfn.TestState", unserved.answer),
    ):
        session.events.register(event, handler)
    endpoint = {
        "AWS_ENDPOINT_URL": system.endpoint.url,
        "AWS_ACCESS_KEY_ID": "entrix-local",
        "AWS_SECRET_ACCESS_KEY": "entrix-local",
    }
    saved = {key: os.environ.get(key) for key in endpoint}
    os.environ.update(endpoint)
    try:
        with call_log.running(VERIFIER, with_its_role=False), call_log.recording() as calls:
            target = target_of_stack(system.stack_name, system.region, None, mode)
            # The pipeline's patience is for AWS; the local system answers within seconds.
            target = dataclasses.replace(
                target,
                clients=lambda service: session.client(service),
                patience=60,
                poll_seconds=0.2,
            )
            outcomes = dict(run_checks(target, mode))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return Observed(mode, tuple(c for c in calls if c.function == VERIFIER), outcomes)


@functools.cache
def observed_modes() -> dict[str, Observed]:
    """Both modes, each against a local system of its own (full changes what quiet reads);
    observed once per test session."""
    observed = {}
    for mode in MODES:
        with harness.in_process() as system:
            alarms = deploy_alarms(system)
            _create_stack(system, _outputs(system))
            local = Local(StackModel.load(system.template_path), harness.deployment_of(system))
            for name, logical_id in alarms.items():
                local.by_name[("AWS::CloudWatch::Alarm", name)] = logical_id
            observed[mode] = dataclasses.replace(observe(system, mode), local=local)
    return observed


def _delivery_own(delivery: StackModel, resource: str) -> bool:
    """Whether `resource` is the delivery stack's own (its artifacts bucket and key, its build
    log group), or a log or report group CodeBuild names after a project."""
    if ":log-group:/aws/codebuild/" in resource or ":report-group/" in resource:
        return True
    arns = {
        delivery.arn(r.logical_id)
        for r in delivery.template.resources.values()
        if r.type in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup")
    }
    return (
        resource in arns
        or resource.removesuffix("/*") in arns
        or (resource.endswith(":*") and f"{resource.removesuffix(':*')}:*" in arns)
    )


def verify_actions(delivery: StackModel, role: Role) -> set[str]:
    """The actions `role` is granted for `entrix verify`: every action it allows but CodeBuild's
    own grants on the project's logs, reports, artifacts and key (the CodeBuild edges)."""
    actions: set[str] = set()
    for policy in role.policies:
        statements = policy["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            resources = statement.get("Resource", [])
            resources = resources if isinstance(resources, list) else [resources]
            if statement["Effect"] != "Allow" or all(_delivery_own(delivery, r) for r in resources):
                continue
            granted = statement["Action"]
            actions.update(granted if isinstance(granted, list) else [granted])
    return actions


def verify_role(delivery: StackModel, stage: str) -> Role:
    """The role of the stage's VerifyDeploy CodeBuild project (the one running its command)."""
    (project,) = [
        p
        for p in delivery.of_type("AWS::CodeBuild::Project")
        if f"verify --stack {stage}-Entrix " in json.dumps(p.properties)
    ]
    return delivery.role(delivery.props(project.logical_id)["ServiceRole"])


def observed_requests(
    stage: str, role: Role, target: StackModel, owner: StackModel
) -> list[Request]:
    """The requests of `entrix verify`'s observed calls in the stage's mode, by `owner`'s `role`."""
    observed = observed_modes()[VERIFY_MODES[stage]]
    assert observed.local is not None
    return [
        request
        for call in observed.calls
        for requests in verify_call_requests(observed.local, target, owner, role, call)
        for request in requests
    ]
