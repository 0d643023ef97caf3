"""The `entrix verify` steps' roles, decided as AWS would against the stages' own resources:
each reaches its own stage's stack and no other; Prod's can start, publish and write nothing
(only set the probe alarm off) and cannot read the signing key, both as the pipeline's CodeBuild
role (Prod in the pipeline's account, cdk.json's default) and as the EntrixVerify role of a Prod
account of its own, which only Prod's VerifyDeploy project role may assume.

The resources carry the tag CloudFormation puts on each resource it creates
(`aws:cloudformation:stack-name`), which the role's conditions name.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from aws_cdk.cx_api import CloudAssembly

from entrix.local.iam.evaluate import Request, decide
from entrix.local.iam.model import ACCOUNT, StackModel
from infra.app import build_app
from infra.config import DELIVERY_PREFIX, STAGES_CONTEXT_KEY
from infra.stacks.delivery import verify_project_role_name, verify_role_name
from tests.infra.conftest import NO_BUNDLING
from tests.permissions.conftest import count
from tests.permissions.edges import TEMPLATE_KINDS, denied, derive, uncovered

STACK_TAG = "aws:cloudformation:stack-name"
PIPELINE_ACCOUNT = "111111111111"
STAGE_ACCOUNTS = {"Dev": "222222222222", "Prod": "333333333333"}


@pytest.fixture(scope="module")
def accounts_of_their_own(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StackModel]:
    """The pipeline, Dev and Prod each in an account of its own: the delivery stack and each
    stage's VerifierStack and service stack."""
    context = {
        **NO_BUNDLING,
        DELIVERY_PREFIX + "connection_arn": (
            f"arn:aws:codeconnections:eu-west-1:{PIPELINE_ACCOUNT}:connection/0a1b2c3d"
        ),
        DELIVERY_PREFIX + "account": PIPELINE_ACCOUNT,
        STAGES_CONTEXT_KEY: {stage: {"account": a} for stage, a in STAGE_ACCOUNTS.items()},
    }
    outdir = tmp_path_factory.mktemp("accounts-of-their-own")
    build_app(context, str(outdir), nag=False).synth()
    return {
        stack.stack_name: StackModel(
            stack.stack_name,
            json.loads(Path(stack.template_full_path).read_text()),
            stack.environment.region,
        )
        for stack in CloudAssembly(str(outdir)).stacks_recursively
    }


def _verify_policies(delivery: StackModel, stage: str) -> list[dict]:
    (project,) = [
        p
        for p in delivery.of_type("AWS::CodeBuild::Project")
        if f"verify --stack {stage}-Entrix " in json.dumps(p.properties)
    ]
    role = delivery.props(project.logical_id)["ServiceRole"]
    return list(delivery.role(role).policies)


def _requests(
    principal: str, policies: list[dict], target: StackModel, account: str = ACCOUNT
) -> dict[str, Request]:
    """What each check calls, on the resources of `target` (in `account`), as `principal` with
    its identity `policies`."""
    tagged = {f"aws:ResourceTag/{STACK_TAG}": target.name}

    def _one_arn(model: StackModel, resource_type: str, contains: str) -> str:
        (found,) = [r for r in model.of_type(resource_type) if contains in r.logical_id]
        return model.arn(found.logical_id).replace(ACCOUNT, account)

    machine = _one_arn(target, "AWS::StepFunctions::StateMachine", "StateMachine")
    calls = {
        "DescribeAlarms a service alarm": (
            "cloudwatch:DescribeAlarms",
            _one_arn(target, "AWS::CloudWatch::Alarm", "ScheduleDeadLetters"),
            {},
        ),
        "SetAlarmState the probe": (
            "cloudwatch:SetAlarmState",
            _one_arn(target, "AWS::CloudWatch::Alarm", "VerificationProbe"),
            {},
        ),
        "SetAlarmState a service alarm": (
            "cloudwatch:SetAlarmState",
            _one_arn(target, "AWS::CloudWatch::Alarm", "ScheduleDeadLetters"),
            {},
        ),
        "GetSecretValue the signing key": (
            "secretsmanager:GetSecretValue",
            _one_arn(target, "AWS::SecretsManager::Secret", "JwtSigningKey"),
            tagged,
        ),
        "GetTopicAttributes the operations topic": (
            "sns:GetTopicAttributes",
            _one_arn(target, "AWS::SNS::Topic", "OpsTopic"),
            {},
        ),
        "DescribeStateMachine": ("states:DescribeStateMachine", machine, tagged),
        "StartExecution": ("states:StartExecution", machine, tagged),
        "Publish to the alert topic": (
            "sns:Publish",
            _one_arn(target, "AWS::SNS::Topic", "AlertTopic"),
            {},
        ),
        "PutItem an order": (
            "dynamodb:PutItem",
            _one_arn(target, "AWS::DynamoDB::Table", "IntakeOrders"),
            {},
        ),
    }
    return {
        name: Request(
            principal=principal,
            action=action,
            resource=resource,
            account=account,
            context=context,
            identity_policies=policies,
        )
        for name, (action, resource, context) in calls.items()
    }


READS = {
    "DescribeAlarms a service alarm",
    "SetAlarmState the probe",
    "GetTopicAttributes the operations topic",
    "DescribeStateMachine",
}
# Dev's alone: the key signs a token for any trader's subject.
FULL = READS | {"GetSecretValue the signing key", "StartExecution"}


def _allowed(requests: dict[str, Request]) -> set[str]:
    decisions = dict(zip(requests, decide(list(requests.values())), strict=True))
    count("verify roles", len(requests), len(requests))
    errors = {name: d.errors for name, d in decisions.items() if d.errors}
    assert not errors, errors
    return {name for name, d in decisions.items() if d.allowed}


@pytest.mark.parametrize(
    ("verifier", "target", "allowed"),
    [
        ("Prod", "Prod-Entrix", READS),
        ("Dev", "Dev-Entrix", FULL),
        ("Dev", "Prod-Entrix", set()),
        ("Prod", "Dev-Entrix", set()),
    ],
)
def test_a_verify_role_reaches_its_own_stage_and_changes_nothing_there_but_the_probe(
    models: dict[str, StackModel], verifier: str, target: str, allowed: set[str]
) -> None:
    role_name = verify_project_role_name("EntrixDelivery", verifier)
    principal = f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    policies = _verify_policies(models["EntrixDelivery"], verifier)

    assert _allowed(_requests(principal, policies, models[target])) == allowed


@pytest.mark.parametrize(("stage", "allowed"), [("Prod", READS), ("Dev", FULL)])
def test_a_stage_in_an_account_of_its_own_is_verified_with_the_same_reach(
    accounts_of_their_own: dict[str, StackModel], stage: str, allowed: set[str]
) -> None:
    """The EntrixVerify role there: Prod's reads no secret either."""
    verifier = accounts_of_their_own[f"{stage}-EntrixVerifier"]
    (role,) = verifier.of_type("AWS::IAM::Role")
    account = STAGE_ACCOUNTS[stage]
    principal = f"arn:aws:iam::{account}:role/{verify_role_name(f'{stage}-Entrix')}"
    policies = list(verifier.role(verifier.arn(role.logical_id)).policies)
    target = accounts_of_their_own[f"{stage}-Entrix"]

    assert _allowed(_requests(principal, policies, target, account)) == allowed


@pytest.mark.parametrize("stage", ["Dev", "Prod"])
def test_only_the_stages_verify_project_role_may_assume_its_verify_role(
    accounts_of_their_own: dict[str, StackModel], stage: str
) -> None:
    """Every role of the delivery stack (Synth and self-mutation run the repository's and
    third parties' code), each with an identity policy that lets it assume any role, so that
    the verify role's trust policy alone decides; and the right name in another account."""
    delivery = accounts_of_their_own["EntrixDelivery"]
    verifier = accounts_of_their_own[f"{stage}-EntrixVerifier"]
    (role,) = verifier.of_type("AWS::IAM::Role")
    trust = verifier.role(verifier.arn(role.logical_id)).trust_policy
    account = STAGE_ACCOUNTS[stage]
    anything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
    }
    names = [str(delivery.ref(r.logical_id)) for r in delivery.of_type("AWS::IAM::Role")]
    own = verify_project_role_name("EntrixDelivery", stage)
    assert own in names and len(names) > 5
    principals = [f"arn:aws:iam::{PIPELINE_ACCOUNT}:role/{name}" for name in names]
    principals.append(f"arn:aws:iam::444444444444:role/{own}")
    requests = {
        principal: Request(
            principal=principal,
            action="sts:AssumeRole",
            resource=f"arn:aws:iam::{account}:role/{verify_role_name(f'{stage}-Entrix')}",
            account=account,
            # AWS sets it to the caller's role ARN on every request; the simulator needs it told.
            context={"aws:PrincipalArn": principal},
            identity_policies=[anything],
            resource_policy=trust,
        )
        for principal in principals
    }

    assert _allowed(requests) == {f"arn:aws:iam::{PIPELINE_ACCOUNT}:role/{own}"}


@pytest.fixture(scope="module")
def pipeline_account_modelled(
    accounts_of_their_own: dict[str, StackModel],
) -> dict[str, StackModel]:
    """The same stacks with the pipeline's account as the model's (every StackModel lives in
    ACCOUNT): the stages' accounts stay other accounts."""
    return {
        name: StackModel(
            model.name,
            json.loads(json.dumps(model.body).replace(PIPELINE_ACCOUNT, ACCOUNT)),
            model.region,
        )
        for name, model in accounts_of_their_own.items()
    }


def test_the_pipeline_reaches_stages_in_accounts_of_their_own(
    pipeline_account_modelled: dict[str, StackModel],
) -> None:
    """Kind 13 on the pipeline, Dev and Prod each in an account of its own: the pipeline role
    assumes each stage's bootstrap deploy role there (which trusts the pipeline's account), the
    deploy roles read the artifacts (the artifacts key grants their accounts), and each
    VerifyDeploy role assumes its stage's EntrixVerify role; every role of every stack is in
    an edge."""
    app = list(pipeline_account_modelled.values())
    delivery = pipeline_account_modelled["EntrixDelivery"]
    edges = derive(TEMPLATE_KINDS[11], delivery, app)
    requests = [r for edge in edges for r in edge.requests]
    count(TEMPLATE_KINDS[11] + " (accounts of their own)", len(edges), len(requests))
    assumed = {r.resource.split(":")[4] for r in requests if r.action == "sts:AssumeRole"}
    assert set(STAGE_ACCOUNTS.values()) <= assumed
    verify_roles = {f"{stage}-Entrix" for stage in STAGE_ACCOUNTS}
    assert {
        r.resource.rsplit("EntrixVerify-", 1)[1] for r in requests if "EntrixVerify-" in r.resource
    } == verify_roles

    assert not denied(edges), "\n".join(denied(edges))
    # The pipeline's and the verifiers' roles (the model places every stack in one account, so
    # it cannot tell which account-settings stack serves which stage's API Gateway).
    pipeline_stacks = [delivery, *(m for m in app if m.name.endswith("-EntrixVerifier"))]
    every_kind = [e for kind in TEMPLATE_KINDS for m in app for e in derive(kind, m, app)]
    missing = uncovered(pipeline_stacks, every_kind)
    assert len(pipeline_stacks) == 3 and not missing, "\n".join(missing)


def test_a_stage_account_the_artifacts_key_does_not_grant_is_refused(
    pipeline_account_modelled: dict[str, StackModel],
) -> None:
    """The artifacts key's policy without Prod's account: Prod's deploy role cannot read the
    artifacts it deploys, and only that is refused."""
    delivery = pipeline_account_modelled["EntrixDelivery"]
    body = copy.deepcopy(delivery.body)
    for resource in body["Resources"].values():
        if resource["Type"] == "AWS::KMS::Key":
            policy = json.dumps(resource["Properties"]["KeyPolicy"])
            prod = STAGE_ACCOUNTS["Prod"]
            resource["Properties"]["KeyPolicy"] = json.loads(policy.replace(prod, "999999999999"))
    mutated = StackModel(delivery.name, body, delivery.region)
    app = [mutated if m is delivery else m for m in pipeline_account_modelled.values()]

    refusals = denied(derive(TEMPLATE_KINDS[11], mutated, app))

    assert refusals
    assert all(f":iam::{STAGE_ACCOUNTS['Prod']}:role/cdk-" in refusal for refusal in refusals)
    assert all("kms:Decrypt" in refusal for refusal in refusals)
