"""The delivery stack: what the pipeline does, where it deploys, and that it passes the guardrails.

Two builds of the whole app: the session's `nag_assembly` (cdk.json as shipped, synthesized with
cdk-nag; test_guardrails checks its report for open findings) and this module's variant with the
connection ARN in context, Prod approval switched off, and the pipeline, Dev and Prod in accounts
of their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.cx_api import CloudAssembly, SynthesisMessageLevel
from ruamel.yaml import YAML

from entrix.local.iam.model import StackModel
from infra.app import DELIVERY_STACK, build_app
from infra.config import DELIVERY_PREFIX, STAGES_CONTEXT_KEY
from infra.nag import CONTROL_TOWER_PLUGIN
from infra.stacks.delivery import BUILD_COMMANDS, BUILD_RUNTIMES, INSTALL_COMMANDS, VERIFY_MODES
from tests.infra.conftest import NO_BUNDLING
from tests.permissions.verify_calls import observed_requests, verify_actions, verify_role

ROOT = Path(__file__).resolve().parents[2]
CDK_CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]
CONNECTION_ARN = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0a1b2c3d"
EXECUTION_FAILED = "codepipeline-pipeline-pipeline-execution-failed"
APPROVAL_NEEDED = "codepipeline-pipeline-manual-approval-needed"
PROD_REGION = "eu-central-1"


class Built:
    """One synthesized app: every template by stack name (stages included), and environments."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        stacks = CloudAssembly(str(outdir)).stacks_recursively
        self.paths = {s.stack_name: Path(s.template_full_path) for s in stacks}
        self.environments = {s.stack_name: s.environment for s in stacks}
        self.templates = {name: json.loads(path.read_text()) for name, path in self.paths.items()}
        self.template = self.templates[DELIVERY_STACK]
        delivery = CloudAssembly(str(outdir)).get_stack_by_name(DELIVERY_STACK)
        self.warnings = [
            str(m.entry.data) for m in delivery.messages if m.level == SynthesisMessageLevel.WARNING
        ]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.template["Resources"].items() if r["Type"] == kind}

    def one(self, kind: str) -> tuple[str, dict[str, Any]]:
        (item,) = self.resources(kind).items()
        return item

    def stages(self) -> list[dict[str, Any]]:
        stages: list[dict[str, Any]] = self.one("AWS::CodePipeline::Pipeline")[1]["Properties"][
            "Stages"
        ]
        return stages

    def stage(self, name: str) -> dict[str, Any]:
        return next(s for s in self.stages() if s["Name"] == name)


@pytest.fixture(scope="module")
def shipped(nag_assembly: Path) -> Built:
    """The app as `make synth` builds it from cdk.json, synthesized with the AwsSolutions checks."""
    return Built(nag_assembly)


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Connection ARN in context, Prod approval off, the pipeline and each stage in an account of
    its own, Prod in another region."""
    context = {
        **NO_BUNDLING,
        DELIVERY_PREFIX + "connection_arn": CONNECTION_ARN,
        DELIVERY_PREFIX + "account": "111111111111",
        # As `cdk synth -c entrix:delivery:prod_approval=false` passes it: a string.
        DELIVERY_PREFIX + "prod_approval": "false",
        STAGES_CONTEXT_KEY: {
            "Dev": {"account": "222222222222"},
            "Prod": {"account": "333333333333", "region": PROD_REGION},
        },
    }
    outdir = tmp_path_factory.mktemp("variant")
    # With cdk-nag: synth raises on an open finding (a configured account or a second region
    # changes how the pipeline's findings are spelled, and adds a replication bucket).
    build_app(context, str(outdir), nag=True).synth()
    return Built(outdir)


def _actions(stage: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from sorted(stage["Actions"], key=lambda a: a["RunOrder"])


# --- guardrails --------------------------------------------------------------------------------


def test_each_acknowledgement_names_one_finding_and_a_reason(shipped: Built) -> None:
    acknowledged = [
        rule
        for resource in shipped.template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert acknowledged, "the pipeline's IAM wildcards must be acknowledged, not absent"
    for rule in acknowledged:
        # cdk-nag also writes the Control Tower acknowledgements (infra.nag.acknowledge_control).
        assert rule["id"].startswith(("AwsSolutions-", f"{CONTROL_TOWER_PLUGIN}::"))
        if rule["id"].startswith("AwsSolutions-IAM5"):
            assert "[" in rule["id"], f"{rule['id']} acknowledges every IAM5 finding at once"
        assert len(rule["reason"]) >= 80, f"{rule['id']}: reason too thin: {rule['reason']!r}"


def test_every_log_group_has_a_retention_and_builds_log_there(shipped: Built) -> None:
    groups = shipped.resources("AWS::Logs::LogGroup")
    assert groups
    assert all(g["Properties"].get("RetentionInDays") for g in groups.values())
    for project in shipped.resources("AWS::CodeBuild::Project").values():
        logs = project["Properties"]["LogsConfig"]["CloudWatchLogs"]
        assert logs["Status"] == "ENABLED"
        assert logs["GroupName"]["Ref"] in groups


def test_artifacts_and_builds_are_encrypted_with_rotated_customer_keys(shipped: Built) -> None:
    keys = shipped.resources("AWS::KMS::Key")
    assert keys and all(k["Properties"]["EnableKeyRotation"] for k in keys.values())
    _, bucket = shipped.one("AWS::S3::Bucket")
    (encryption,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    sse = encryption["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "aws:kms"
    assert sse["KMSMasterKeyID"]["Fn::GetAtt"][0] in keys
    for project in shipped.resources("AWS::CodeBuild::Project").values():
        assert project["Properties"]["EncryptionKey"]["Fn::GetAtt"][0] in keys


def test_the_shipped_template_holds_no_connection_arn(shipped: Built) -> None:
    """The connection ARN is account-specific: it stays in SSM, out of git and the template."""
    text = json.dumps(shipped.template)
    assert ":codestar-connections:" not in text  # an ARN; the IAM action has no leading colon
    assert ":codeconnections:" not in text


# --- the pipeline ------------------------------------------------------------------------------


def test_pipeline_is_v2_self_mutating_and_has_a_region(shipped: Built) -> None:
    _, pipeline = shipped.one("AWS::CodePipeline::Pipeline")
    assert pipeline["Properties"]["PipelineType"] == "V2"
    assert [s["Name"] for s in shipped.stages()] == [
        "Source",
        "Build",
        "UpdatePipeline",
        "AccountSettings",
        "Assets",
        "Dev",
        "Prod",
    ]
    (mutate,) = shipped.stage("UpdatePipeline")["Actions"]
    assert mutate["Name"] == "SelfMutate"
    cli = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    project = shipped.template["Resources"][mutate["Configuration"]["ProjectName"]["Ref"]]
    spec = json.loads(project["Properties"]["Source"]["BuildSpec"])
    assert spec["phases"]["install"]["commands"] == [f"npm install -g aws-cdk@{cli}"]
    assert shipped.environments[DELIVERY_STACK].region == CDK_CONTEXT[DELIVERY_PREFIX + "region"]


def test_source_is_the_github_connection_on_main_resolved_from_ssm(shipped: Built) -> None:
    (source,) = shipped.stage("Source")["Actions"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    config = source["Configuration"]
    assert config["FullRepositoryId"] == CDK_CONTEXT[DELIVERY_PREFIX + "repository"]
    assert config["BranchName"] == "main"
    assert config["DetectChanges"] is True  # every push to main starts the pipeline
    parameter = shipped.template["Parameters"][config["ConnectionArn"]["Ref"]]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert parameter["Default"] == "/entrix/delivery/github-connection-arn"


def test_connection_arn_from_context_is_used_as_is(variant: Built) -> None:
    (source,) = variant.stage("Source")["Actions"]
    assert source["Configuration"]["ConnectionArn"] == CONNECTION_ARN


def test_synth_step_installs_from_the_lock_runs_the_tests_then_synthesizes(
    shipped: Built,
) -> None:
    (build,) = shipped.stage("Build")["Actions"]
    project_id = build["Configuration"]["ProjectName"]["Ref"]
    project = shipped.template["Resources"][project_id]["Properties"]
    spec = json.loads(project["Source"]["BuildSpec"])
    assert spec["phases"]["install"]["runtime-versions"] == {"python": "3.11", "nodejs": "24"}
    assert spec["phases"]["install"]["commands"] == ["make install"]
    assert spec["phases"]["build"]["commands"] == ["make test", "make synth"]
    assert spec["artifacts"]["base-directory"] == "cdk.out"
    assert "/root/.cache/uv/**/*" in spec["cache"]["paths"]
    assert project["Cache"] == {"Type": "LOCAL", "Modes": ["LOCAL_CUSTOM_CACHE"]}
    assert project["Environment"]["Image"] == "aws/codebuild/standard:7.0"
    # Assets bundle locally, so no project needs Docker (privileged mode).
    for other in shipped.resources("AWS::CodeBuild::Project").values():
        assert not other["Properties"]["Environment"].get("PrivilegedMode", False)


def test_codebuild_runs_the_makefile_with_the_toolchain_ci_uses() -> None:
    makefile = (ROOT / "Makefile").read_text().splitlines()
    targets = {line.split(":", 1)[0] for line in makefile if ":" in line}
    for command in (*INSTALL_COMMANDS, *BUILD_COMMANDS):
        make, target = command.split()
        assert make == "make" and target in targets
    workflow = YAML(typ="safe").load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    (job,) = workflow["jobs"].values()
    setup = {s["uses"].split("@")[0]: s.get("with", {}) for s in job["steps"] if "uses" in s}
    # The workflow lists 3.13 too (unit tests on Lambda's runtime); the last listed is the default.
    assert {
        "python": setup["actions/setup-python"]["python-version"].split()[-1],
        "nodejs": (ROOT / setup["actions/setup-node"]["node-version-file"])
        .read_text()
        .split(".")[0],
    } == BUILD_RUNTIMES


def test_dev_deploys_on_every_push_and_prod_waits_for_approval(shipped: Built) -> None:
    dev = [a["ActionTypeId"]["Category"] for a in _actions(shipped.stage("Dev"))]
    assert "Approval" not in dev and "Deploy" in dev
    prod = list(_actions(shipped.stage("Prod")))
    assert prod[0]["ActionTypeId"]["Category"] == "Approval"
    deploys = [a for a in prod if a["ActionTypeId"]["Category"] == "Deploy"]
    assert deploys and all(a["RunOrder"] > prod[0]["RunOrder"] for a in deploys)
    stack_names = {a["Configuration"]["StackName"] for a in deploys}
    assert stack_names == {"Prod-Entrix"}


def _verify_project(built: Built, stage: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The VerifyDeploy action of a stage and its CodeBuild project."""
    (verify,) = [a for a in built.stage(stage)["Actions"] if a["Name"] == "VerifyDeploy"]
    return verify, built.template["Resources"][verify["Configuration"]["ProjectName"]["Ref"]]


def _role_statements(built: Built, project: dict[str, Any]) -> list[dict[str, Any]]:
    role = project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in built.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _granted(statements: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each action the statements allow, with the statements that allow it."""
    granted: dict[str, list[dict[str, Any]]] = {}
    for statement in statements:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            granted.setdefault(action, []).append(statement)
    return granted


@pytest.fixture(scope="module")
def observed(shipped: Built) -> dict[str, set[str]]:
    """The actions `entrix verify` calls in each mode, observed against the local system
    (tests/permissions/verify_calls.py): what its role must grant, no more, no less."""

    def model(name: str) -> StackModel:
        return StackModel(name, shipped.templates[name], shipped.environments[name].region)

    delivery = model(DELIVERY_STACK)
    return {
        mode: {
            request.action
            for request in observed_requests(
                stage, verify_role(delivery, stage), model(f"{stage}-Entrix"), delivery
            )
        }
        for stage, mode in VERIFY_MODES.items()
    }


@pytest.mark.parametrize(("stage", "mode"), [("Dev", "full"), ("Prod", "quiet")])
def test_entrix_verify_runs_after_the_smoke_test_in_its_stages_mode_installed_from_the_lock(
    shipped: Built, stage: str, mode: str
) -> None:
    smoke, verify = list(_actions(shipped.stage(stage)))[-2:]
    assert verify["Name"] == "VerifyDeploy" and verify["RunOrder"] > smoke["RunOrder"]
    _, project = _verify_project(shipped, stage)
    spec = json.loads(project["Properties"]["Source"]["BuildSpec"])
    assert spec["phases"]["build"]["commands"] == [
        f".venv/bin/entrix verify --stack {stage}-Entrix --region eu-west-1 --mode {mode}"
    ]
    install = spec["phases"]["install"]["commands"]
    assert install[0] == "make .tools/bin/uv"  # the uv version the Makefile pins
    assert "uv sync --frozen --no-default-groups" in install[1]
    assert not any("pip install" in command for command in install)
    assert project["Properties"]["TimeoutInMinutes"] == 30


@pytest.mark.parametrize("stage", ["Dev", "Prod"])
def test_the_verify_role_reaches_only_its_own_stages_stack(
    shipped: Built, observed: dict[str, set[str]], stage: str
) -> None:
    _, project = _verify_project(shipped, stage)
    granted = _granted(_role_statements(shipped, project))
    own = f"{stage}-Entrix"
    other = "Prod-Entrix" if stage == "Dev" else "Dev-Entrix"
    for action in observed["full"]:
        for statement in granted.get(action, []):
            text = json.dumps(statement)
            assert other not in text, (action, statement)
            # Each grant names this stack, in the resource or in a condition on its tag; only
            # TestState (no resource-level permissions) and executions of the state machine,
            # read-only, are on "*".
            assert own in text or action in {"states:TestState", "states:DescribeExecution"}, (
                action,
                statement,
            )
    if stage == "Dev":
        (secret,) = granted["secretsmanager:GetSecretValue"]
        assert secret["Condition"] == {
            "StringEquals": {"aws:ResourceTag/aws:cloudformation:stack-name": own}
        }
    (set_state,) = granted["cloudwatch:SetAlarmState"]
    assert json.dumps(set_state["Resource"]).endswith(f':alarm:{own}-VerificationProbe"]]}}')


def test_each_verify_role_holds_just_the_permissions_its_mode_uses(
    shipped: Built, observed: dict[str, set[str]]
) -> None:
    """Each VerifyDeploy role's actions (CodeBuild's own grants on the project's logs, reports,
    artifacts and key apart) are exactly those its mode was seen calling: none unused, none
    missing. Prod's quiet mode starts, publishes, writes and reads no secret."""
    delivery = StackModel(
        DELIVERY_STACK, shipped.template, shipped.environments[DELIVERY_STACK].region
    )
    for stage, mode in VERIFY_MODES.items():
        assert verify_actions(delivery, verify_role(delivery, stage)) == observed[mode], stage
    assert observed["full"] > observed["quiet"]
    _, dev = _verify_project(shipped, "Dev")
    _, prod = _verify_project(shipped, "Prod")
    prod_granted = set(_granted(_role_statements(shipped, prod)))
    assert not prod_granted & (observed["full"] - observed["quiet"])
    assert not {
        a
        for a in prod_granted
        if a.startswith(("sns:Publish", "dynamodb:", "states:St", "secretsmanager:"))
    }
    (pass_role,) = _granted(_role_statements(shipped, dev))["iam:PassRole"]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "states.amazonaws.com"}
    }


@pytest.mark.parametrize(
    ("stage", "account", "mode"),
    [("Dev", "222222222222", "full"), ("Prod", "333333333333", "quiet")],
)
def test_a_stage_in_another_account_is_verified_as_a_role_of_its_own_there(
    variant: Built, observed: dict[str, set[str]], stage: str, account: str, mode: str
) -> None:
    role_name = f"EntrixVerify-{stage}-Entrix"
    _, project = _verify_project(variant, stage)
    # The command names the role's ARN, partition and all (a Fn::Join in the template).
    spec = json.dumps(project["Properties"]["Source"]["BuildSpec"])
    assert f"--mode {mode} --role-arn arn:" in spec
    assert f":iam::{account}:role/{role_name}" in spec
    # CodeBuild's own role may only assume that role; the checks' permissions are the role's.
    (assume,) = [
        s
        for s in _role_statements(variant, project)
        if "sts:" in json.dumps(s["Action"]) or "VerifyRole" in json.dumps(s)
    ]
    assert assume["Action"] == "sts:AssumeRole"
    assert role_name in json.dumps(assume["Resource"]) and account in json.dumps(assume["Resource"])

    verifier = variant.templates[f"{stage}-EntrixVerifier"]
    assert variant.environments[f"{stage}-EntrixVerifier"].account == account
    ((_, role),) = [
        (k, r) for k, r in verifier["Resources"].items() if r["Type"] == "AWS::IAM::Role"
    ]
    assert role["Properties"]["RoleName"] == role_name
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert "111111111111" in json.dumps(trust["Principal"])  # the pipeline's account only
    # Only this stage's VerifyDeploy project role, by its exact ARN: no other delivery role
    # (Synth and self-mutation run the repository's and third parties' code).
    project_role = f"EntrixDelivery-VerifyDeploy-{stage}"
    assert trust["Condition"] == {
        "ArnEquals": {
            "aws:PrincipalArn": {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, f":iam::111111111111:role/{project_role}"],
                ]
            }
        }
    }
    role_id = project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    assert variant.template["Resources"][role_id]["Properties"]["RoleName"] == project_role
    granted = _granted(
        [
            statement
            for r in verifier["Resources"].values()
            if r["Type"] == "AWS::IAM::Policy"
            for statement in r["Properties"]["PolicyDocument"]["Statement"]
        ]
    )
    # The role there holds nothing but the checks' permissions: exactly what the mode calls.
    assert set(granted) == observed[mode]
    for action, statements in granted.items():
        for statement in statements:
            # Its own stage's stack, in the resource or a condition on its tag; TestState has no
            # resource-level permissions, DescribeExecution reads runs named at run time.
            assert f"{stage}-Entrix" in json.dumps(statement) or action in {
                "states:TestState",
                "states:DescribeExecution",
            }, statement


def test_a_stage_in_another_account_is_not_verified_when_the_pipelines_account_is_unknown(
    tmp_path: Path,
) -> None:
    context = {
        **NO_BUNDLING,
        DELIVERY_PREFIX + "connection_arn": CONNECTION_ARN,
        STAGES_CONTEXT_KEY: {"Prod": {"account": "333333333333"}},
    }
    build_app(context, str(tmp_path), nag=False).synth()
    built = Built(tmp_path)
    names = [action["Name"] for action in built.stage("Prod")["Actions"]]
    assert "SmokeTest" in names and "VerifyDeploy" not in names
    assert "Prod-EntrixVerifier" not in built.templates
    assert "VerifyDeploy" in [action["Name"] for action in built.stage("Dev")["Actions"]]


@pytest.mark.parametrize("stage", ["Dev", "Prod"])
def test_a_smoke_test_checks_the_deployed_api_refuses_anonymous_orders(
    shipped: Built, stage: str
) -> None:
    actions = [a for a in _actions(shipped.stage(stage)) if a["Name"] != "VerifyDeploy"]
    deploy, smoke = actions[-2], actions[-1]
    assert deploy["ActionTypeId"]["Category"] == "Deploy"
    assert smoke["ActionTypeId"]["Category"] == "Build"
    assert smoke["RunOrder"] > deploy["RunOrder"]
    (variable,) = json.loads(smoke["Configuration"]["EnvironmentVariables"])
    assert variable["name"] == "ORDERS_URL"
    assert variable["value"] == f"#{{{deploy['Namespace']}.ApiUrl}}"  # that stage's output
    project = shipped.template["Resources"][smoke["Configuration"]["ProjectName"]["Ref"]]
    commands = json.loads(project["Properties"]["Source"]["BuildSpec"])["phases"]["build"]
    assert 'test "$code" = 401' in commands["commands"]


def test_prod_in_the_account_of_dev_or_the_pipeline_is_warned_about_at_synth(
    shipped: Built, variant: Built
) -> None:
    # cdk.json names the accounts' keys, unset: every stack in the deploying credentials' account.
    assert CDK_CONTEXT[STAGES_CONTEXT_KEY] == {"Dev": {"account": None}, "Prod": {"account": None}}
    (warning,) = [w for w in shipped.warnings if "Prod deploys into the account of Dev" in w]
    assert "docs/delivery.md" in warning
    assert not [w for w in variant.warnings if "Prod deploys into the account of Dev" in w]


def test_prod_approval_can_be_switched_off(variant: Built) -> None:
    categories = {a["ActionTypeId"]["Category"] for a in variant.stage("Prod")["Actions"]}
    assert "Approval" not in categories and "Deploy" in categories
    (rule,) = variant.resources("AWS::CodeStarNotifications::NotificationRule").values()
    assert rule["Properties"]["EventTypeIds"] == [EXECUTION_FAILED]


def test_stages_deploy_the_service_stack_into_their_own_accounts(variant: Built) -> None:
    for stage, account in (("Dev", "222222222222"), ("Prod", "333333333333")):
        deploys = [a for a in variant.stage(stage)["Actions"] if a["Configuration"].get("RoleArn")]
        assert deploys
        for action in deploys:
            assert account in json.dumps(action["RoleArn"])
    assert variant.environments[DELIVERY_STACK].account == "111111111111"
    assert variant.environments["Prod-Entrix"].account == "333333333333"


def test_each_account_and_region_gets_its_account_settings_once_before_the_services(
    shipped: Built, variant: Built
) -> None:
    # Default: Dev and Prod share the pipeline's account and region, so one settings stage.
    assert [s["Name"] for s in shipped.stages()].count("AccountSettings") == 1
    assert "AccountSettings-Prod" not in [s["Name"] for s in shipped.stages()]
    # Dev and Prod in accounts of their own: one settings stack in each, before its service.
    names = [s["Name"] for s in variant.stages()]
    assert names.index("AccountSettings") < names.index("Dev")
    assert names.index("AccountSettings-Prod") < names.index("Prod")
    assert variant.environments["AccountSettings-EntrixAccountSettings"].account == "222222222222"
    settings = variant.environments["AccountSettings-Prod-EntrixAccountSettings"]
    assert (settings.account, settings.region) == ("333333333333", PROD_REGION)


def test_a_stage_in_another_region_deploys_there_through_a_replication_bucket(
    variant: Built,
) -> None:
    assert variant.environments["Prod-Entrix"].region == PROD_REGION
    deploys = [
        a for a in variant.stage("Prod")["Actions"] if a["ActionTypeId"]["Category"] == "Deploy"
    ]
    assert deploys and all(a["Region"] == PROD_REGION for a in deploys)
    _, pipeline = variant.one("AWS::CodePipeline::Pipeline")
    stores = {s["Region"] for s in pipeline["Properties"]["ArtifactStores"]}
    assert stores == {CDK_CONTEXT[DELIVERY_PREFIX + "region"], PROD_REGION}


# --- failure notification ----------------------------------------------------------------------


def test_a_failed_execution_notifies_the_alerts_topic(shipped: Built) -> None:
    pipeline_id, _ = shipped.one("AWS::CodePipeline::Pipeline")
    topic_id, topic = shipped.one("AWS::SNS::Topic")
    rules = {
        tuple(r["Properties"]["EventTypeIds"]): r["Properties"]
        for r in shipped.resources("AWS::CodeStarNotifications::NotificationRule").values()
    }
    assert set(rules) == {(EXECUTION_FAILED,), (APPROVAL_NEEDED,)}
    for props in rules.values():
        assert pipeline_id in json.dumps(props["Resource"])
        assert props["Targets"] == [{"TargetAddress": {"Ref": topic_id}, "TargetType": "SNS"}]
    assert topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0] in shipped.resources(
        "AWS::KMS::Key"
    )


def test_alerts_topic_is_tls_only_and_open_to_codestar_notifications(shipped: Built) -> None:
    _, policy = shipped.one("AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    assert any(
        s["Effect"] == "Allow"
        and s["Principal"] == {"Service": "codestar-notifications.amazonaws.com"}
        and s["Action"] == "sns:Publish"
        for s in statements
    )
    key_id, _ = next(
        (k, r)
        for k, r in shipped.resources("AWS::KMS::Key").items()
        if "codestar-notifications" in json.dumps(r)
    )
    _, topic = shipped.one("AWS::SNS::Topic")
    assert topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0] == key_id
