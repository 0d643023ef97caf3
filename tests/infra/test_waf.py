"""The WAF switch: Prod's API stage sits behind a web ACL (rate limit first, then AWS managed
rules) that logs without the JWT; Dev and the local/default stack have none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.cx_api import CloudAssembly

from infra.config import ServiceConfig
from infra.constructs.waf import LOG_GROUP_PREFIX, MANAGED_RULE_GROUPS

WAF_TYPES = {
    "AWS::WAFv2::WebACL",
    "AWS::WAFv2::WebACLAssociation",
    "AWS::WAFv2::LoggingConfiguration",
}


@pytest.fixture(scope="module")
def template_paths(nag_assembly: Path) -> dict[str, Path]:
    """Template file of every stack (by stack name) in the session's nag-checked assembly."""
    return {
        s.stack_name: Path(s.template_full_path)
        for s in CloudAssembly(str(nag_assembly)).stacks_recursively
    }


@pytest.fixture(scope="module")
def prod(template_paths: dict[str, Path]) -> dict[str, Any]:
    resources: dict[str, Any] = json.loads(template_paths["Prod-Entrix"].read_text())["Resources"]
    return resources


def _one(resources: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    (item,) = ((k, r) for k, r in resources.items() if r["Type"] == kind)
    return item


@pytest.mark.parametrize("stack", ["Dev-Entrix", "Entrix"])
def test_dev_and_the_default_stack_have_no_waf(template_paths: dict[str, Path], stack: str) -> None:
    resources = json.loads(template_paths[stack].read_text())["Resources"]
    assert not {r["Type"] for r in resources.values()} & WAF_TYPES


def test_prod_rate_limits_each_client_ip_before_the_managed_rules(prod: dict[str, Any]) -> None:
    _, acl = _one(prod, "AWS::WAFv2::WebACL")
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL"
    assert props["DefaultAction"] == {"Allow": {}}
    rules = sorted(props["Rules"], key=lambda r: r["Priority"])
    rate = rules[0]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP",
        "EvaluationWindowSec": 300,
        "Limit": ServiceConfig().waf_rate_limit,
    }
    managed = [r["Statement"]["ManagedRuleGroupStatement"] for r in rules[1:]]
    assert [(g["VendorName"], g["Name"]) for g in managed] == [
        ("AWS", name) for name, _ in MANAGED_RULE_GROUPS
    ]
    assert all(r["OverrideAction"] == {"None": {}} for r in rules[1:])
    # A 1,000-order POST is over the common rule set's 8 KB body limit: that rule only counts.
    assert managed[0]["RuleActionOverrides"] == [
        {"ActionToUse": {"Count": {}}, "Name": "SizeRestrictions_BODY"}
    ]


def test_prod_web_acl_guards_the_api_stage(prod: dict[str, Any]) -> None:
    acl_id, _ = _one(prod, "AWS::WAFv2::WebACL")
    api_id, _ = _one(prod, "AWS::ApiGateway::RestApi")
    stage_id, _ = _one(prod, "AWS::ApiGateway::Stage")
    _, association = _one(prod, "AWS::WAFv2::WebACLAssociation")
    arn = json.dumps(association["Properties"]["ResourceArn"])
    assert f'{{"Ref": "{api_id}"}}' in arn and f'{{"Ref": "{stage_id}"}}' in arn
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}


def test_prod_waf_logs_to_a_retained_group_without_the_token(prod: dict[str, Any]) -> None:
    log_id, log_group = _one(
        {k: r for k, r in prod.items() if "aws-waf-logs" in json.dumps(r)}, "AWS::Logs::LogGroup"
    )
    name = log_group["Properties"]["LogGroupName"]
    assert name.startswith(LOG_GROUP_PREFIX)  # WAF delivers to no other log group
    assert log_group["Properties"]["RetentionInDays"]
    _, logging = _one(prod, "AWS::WAFv2::LoggingConfiguration")
    (destination,) = logging["Properties"]["LogDestinationConfigs"]
    parts = destination["Fn::Join"][1]
    assert parts[-1].endswith(f":log-group:{name}")  # the bare ARN, not GetAtt's "...:*"
    assert logging["Properties"]["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}}]
    assert log_id in logging["DependsOn"]
