"""Dev and Prod in one account and region, as the default configuration deploys them.

CloudFormation refuses a second resource with a physical name already taken in the account (or,
for buckets, anywhere), and an account-wide singleton owned by two stacks is overwritten by
whichever deploys last and removed with the first one deleted. These tests synthesize the
pipeline's stages with cdk.json's settings and compare what each stack would create there.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.cx_api import CloudAssembly

from entrix.local.template import PseudoParameters, Resolver, Template

ACCOUNT = "111111111111"
# Properties that give a resource its physical name (unique per account and region, or globally
# for buckets), by resource type; `Name` is the naming property of many types.
NAME_PROPERTIES = (
    "BucketName",
    "TableName",
    "TopicName",
    "QueueName",
    "FunctionName",
    "LayerName",
    "RoleName",
    "ManagedPolicyName",
    "LogGroupName",
    "StateMachineName",
    "AlarmName",
    "DashboardName",
    "AliasName",
    "Name",
)
# Names unique only within another resource, whose own name is checked: a function's alias.
SCOPED_NAMES = frozenset({("AWS::Lambda::Alias", "Name")})
# Resource types of which an account holds one per region: a second owner overwrites the first.
ACCOUNT_SINGLETONS = frozenset(
    {
        "AWS::ApiGateway::Account",
        "AWS::IAM::AccountPasswordPolicy",
        "AWS::Logs::AccountPolicy",
        "AWS::GuardDuty::Detector",
        "AWS::SecurityHub::Hub",
        "AWS::Config::ConfigurationRecorder",
        "AWS::Config::DeliveryChannel",
        "AWS::Macie::Session",
        "AWS::Detective::Graph",
    }
)
# Stacks the pipeline deploys into the stages' account and region (the pipeline's own stack is
# alone in its account and is not part of a stage).
STAGE_STACK_PREFIXES = ("Dev-", "Prod-", "AccountSettings-")


@pytest.fixture(scope="module")
def stage_templates(nag_assembly: Path) -> dict[str, dict[str, Any]]:
    """Every stack a pipeline stage deploys, by stack name, with cdk.json's settings."""
    stacks = CloudAssembly(str(nag_assembly)).stacks_recursively
    found = {
        stack.stack_name: json.loads(Path(stack.template_full_path).read_text())
        for stack in stacks
        if stack.stack_name.startswith(STAGE_STACK_PREFIXES)
    }
    assert {"Dev-Entrix", "Prod-Entrix"} <= set(found), sorted(found)
    environments = {(s.environment.account, s.environment.region) for s in stacks}
    assert len({region for _, region in environments}) == 1, "the default stages share a region"
    return found


class _StackResolver(Resolver):
    """Resolves names as CloudFormation would in one account: pseudo parameters are the same for
    every stack but its name; a Ref to, or an attribute of, another resource (a generated name
    or ARN) is particular to this stack."""

    def __init__(self, stack_name: str, template: dict[str, Any]) -> None:
        pseudo = PseudoParameters(account_id=ACCOUNT, stack_name=stack_name)
        super().__init__(Template.from_dict(template), pseudo)
        self.stack_name = stack_name
        for logical_id, resource in template["Resources"].items():
            ref = f"<{stack_name}/{logical_id}>"
            if resource["Type"] == "AWS::Lambda::Alias":
                # An alias's Ref is its ARN, which CDK splits for the qualified function name.
                ref = f"arn:aws:lambda:{pseudo.region}:{ACCOUNT}:function:{ref}:alias"
            self.set_ref(logical_id, ref)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return f"<{self.stack_name}/{logical_id}.{attribute}>"


def _resolver(stack_name: str, template: dict[str, Any]) -> Resolver:
    return _StackResolver(stack_name, template)


def _physical_names(stack_name: str, template: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(resource type, name, where) for every explicitly named resource of the stack."""
    resolver = _resolver(stack_name, template)
    for logical_id, resource in template["Resources"].items():
        for prop in NAME_PROPERTIES:
            value = resource.get("Properties", {}).get(prop)
            if value is None or (resource["Type"], prop) in SCOPED_NAMES:
                continue
            name = resolver.resolve(value)
            yield resource["Type"], str(name), f"{stack_name}/{logical_id}"


def test_no_physical_name_is_claimed_twice(stage_templates: dict[str, dict[str, Any]]) -> None:
    owners: dict[tuple[str, str], list[str]] = defaultdict(list)
    for stack_name, template in stage_templates.items():
        for resource_type, name, where in _physical_names(stack_name, template):
            owners[(resource_type, name)].append(where)
    assert len(owners) >= 5, "expected the stages to name several resources"
    collisions = {key: where for key, where in owners.items() if len(where) > 1}
    assert collisions == {}


def test_the_results_buckets_of_dev_and_prod_have_names_of_their_own(
    stage_templates: dict[str, dict[str, Any]],
) -> None:
    buckets = [
        name
        for stack_name in ("Dev-Entrix", "Prod-Entrix")
        for resource_type, name, _ in _physical_names(stack_name, stage_templates[stack_name])
        if resource_type == "AWS::S3::Bucket"
    ]
    assert buckets == [
        f"order-results-dev-entrix-{ACCOUNT}-eu-west-1",
        f"order-results-prod-entrix-{ACCOUNT}-eu-west-1",
    ]
    assert all(len(name) <= 63 for name in buckets)


def test_each_account_wide_singleton_has_one_owner(
    stage_templates: dict[str, dict[str, Any]],
) -> None:
    owners: dict[str, list[str]] = defaultdict(list)
    for stack_name, template in stage_templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] in ACCOUNT_SINGLETONS:
                owners[resource["Type"]].append(f"{stack_name}/{logical_id}")
    # API Gateway's logging role is needed (the stages log access) and owned once.
    assert owners == {"AWS::ApiGateway::Account": [owners["AWS::ApiGateway::Account"][0]]}
    assert owners["AWS::ApiGateway::Account"][0].startswith("AccountSettings-")


def _metric_identities(stack_name: str, template: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(metric identity, alarm) for each metric every alarm of the stack watches."""
    resolver = _resolver(stack_name, template)
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resolver.resolve(resource["Properties"])
        metrics = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        if "MetricName" in props:
            metrics.append(props)
        for metric in metrics:
            dimensions = sorted((d["Name"], str(d["Value"])) for d in metric.get("Dimensions", []))
            identity = json.dumps([metric["Namespace"], metric["MetricName"], dimensions])
            yield identity, f"{stack_name}/{logical_id}"


def test_no_alarm_of_one_stage_watches_a_metric_of_the_other(
    stage_templates: dict[str, dict[str, Any]],
) -> None:
    watched: dict[str, set[str]] = defaultdict(set)
    for stack_name in ("Dev-Entrix", "Prod-Entrix"):
        for identity, alarm in _metric_identities(stack_name, stage_templates[stack_name]):
            watched[identity].add(alarm.split("/")[0])
    assert len(watched) >= 10
    shared = {identity: stacks for identity, stacks in watched.items() if len(stacks) > 1}
    assert shared == {}
