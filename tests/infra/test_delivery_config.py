"""Delivery settings from CDK context: the pipeline's knobs and each stage's service settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from infra.config import DeliveryConfig, ServiceConfig, stage_config

CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"


def _node(context: dict[str, Any]) -> Any:
    return App(context=context).node


def test_defaults_need_no_context() -> None:
    config = DeliveryConfig.from_context(_node({}))
    assert config.branch == "main"
    assert config.region == "eu-west-1"
    assert config.prod_approval is True
    assert config.connection_arn is None
    assert config.connection_arn_parameter.startswith("/")


def test_cdk_json_names_the_repository_and_keeps_the_defaults() -> None:
    context = json.loads(CDK_JSON.read_text())["context"]
    config = DeliveryConfig.from_context(_node(context))
    assert config.repository == context["entrix:delivery:repository"]
    assert config.prod_approval is True


def test_command_line_strings_are_typed() -> None:
    config = DeliveryConfig.from_context(
        _node(
            {
                "entrix:delivery:prod_approval": "false",
                "entrix:delivery:repository": "someone/fork",
                "entrix:delivery:account": "123456789012",
            }
        )
    )
    assert config.prod_approval is False
    assert config.repository == "someone/fork"
    assert config.account == "123456789012"


@pytest.mark.parametrize("repository", ["", "no-owner", "a/b/c", "/name", "owner/"])
def test_a_repository_must_be_owner_slash_name(repository: str) -> None:
    with pytest.raises(ValueError, match="owner/name"):
        DeliveryConfig(repository=repository)


def test_a_boolean_switch_refuses_anything_but_true_or_false() -> None:
    with pytest.raises(ValueError, match="entrix:delivery:prod_approval"):
        DeliveryConfig.from_context(_node({"entrix:delivery:prod_approval": "maybe"}))


def test_waf_is_on_for_prod_and_off_for_dev_by_default() -> None:
    node = _node({"entrix:waf_enabled": True})  # the local/default stack's switch
    assert stage_config(node, "Dev").waf_enabled is False
    assert stage_config(node, "Prod").waf_enabled is True


def test_stage_overrides_win_and_shared_settings_carry_over() -> None:
    node = _node(
        {
            "entrix:log_retention_days": 7,
            "entrix:stages": {
                "Dev": {"account": "222222222222", "retain_data": "false"},
                "Prod": {"account": "333333333333", "waf_enabled": False, "waf_rate_limit": 300},
            },
        }
    )
    dev, prod = stage_config(node, "Dev"), stage_config(node, "Prod")
    assert (dev.account, dev.retain_data, dev.log_retention_days) == ("222222222222", False, 7)
    assert (prod.account, prod.waf_enabled, prod.waf_rate_limit) == ("333333333333", False, 300)
    assert prod.retain_data is ServiceConfig().retain_data


def test_an_unknown_stage_setting_is_refused() -> None:
    with pytest.raises(ValueError, match=r"entrix:stages\.Prod\.waf"):
        stage_config(_node({"entrix:stages": {"Prod": {"waf": True}}}), "Prod")


def test_stage_settings_are_validated_like_the_service_settings() -> None:
    with pytest.raises(ValueError, match="waf_rate_limit"):
        stage_config(_node({"entrix:stages": {"Prod": {"waf_rate_limit": 5}}}), "Prod")


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"entrix:delivery:prod_aproval": False}, "entrix:delivery:prod_aproval"),
        ({"entrix:stages": {"Production": {"waf_enabled": True}}}, "entrix:stages.Production"),
    ],
)
def test_a_misspelt_delivery_key_or_stage_is_refused(context: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        DeliveryConfig.from_context(_node(context))
