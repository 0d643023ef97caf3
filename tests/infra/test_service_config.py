"""Service settings from CDK context, and what each setting changes in the synthesized stack."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from entrix import settings
from infra.app import CDK_JSON, cdk_json_context
from infra.config import CONTEXT_PREFIX, ServiceConfig
from infra.stacks.service import ServiceStack

# As `cdk synth -c key=value` passes them: every value a string.
CLI_CONTEXT = {
    "entrix:jwt_issuer": "https://auth.example.com",
    "entrix:jwt_audience": "entrix-api",
    "entrix:waf_enabled": "true",
    "entrix:retain_data": "false",
    "entrix:api_rate_limit": "10.5",
    "entrix:api_burst_limit": "20",
    "entrix:log_retention_days": "7",
    "entrix:authorizer_cache_ttl_seconds": "60",
    "entrix:region": "eu-central-1",
    "entrix:oldest_pending_alarm_minutes": "30",
    "entrix:no_successful_run_alarm_minutes": "120",
}


@pytest.fixture(scope="module")
def configured() -> dict[str, Any]:
    app = App(context={**cdk_json_context(), **CLI_CONTEXT, "aws:cdk:bundling-stacks": []})
    stack = ServiceStack(app, "Configured", config=ServiceConfig.from_context(app.node))
    return Template.from_stack(stack).to_json()


def of_type(template: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == type_]


def test_cli_strings_become_typed_settings() -> None:
    app = App(context=CLI_CONTEXT)
    config = ServiceConfig.from_context(app.node)
    assert config.waf_enabled is True
    assert config.retain_data is False
    assert config.api_rate_limit == 10.5
    assert config.api_burst_limit == 20
    assert config.jwt_issuer == "https://auth.example.com"
    assert config.account is None
    assert config.region == "eu-central-1"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("entrix:jwt_issuer", ""),
        ("entrix:jwt_audience", " "),
        ("entrix:max_token_lifetime_seconds", "0"),
    ],
)
def test_tokens_must_name_an_issuer_and_audience_and_live_a_bounded_time(
    key: str, value: str
) -> None:
    with pytest.raises(ValueError, match=key.removeprefix(CONTEXT_PREFIX)):
        ServiceConfig.from_context(App(context={key: value}).node)


def test_cdk_json_sets_exactly_the_defaults() -> None:
    """cdk.json documents the settings; it must not silently differ from the code's defaults."""
    context = json.loads(CDK_JSON.read_text())["context"]
    defaults = ServiceConfig()
    for field in dataclasses.fields(ServiceConfig):
        key = CONTEXT_PREFIX + field.name
        if key in context:
            assert context[key] == getattr(defaults, field.name), key


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("entrix:waf_enabled", "yes", "true or false"),
        ("entrix:log_retention_days", "10", "log_retention_days"),
        ("entrix:authorizer_cache_ttl_seconds", "7200", "0..3600"),
        ("entrix:client_rate_limit", "0", "client_rate_limit: must be at least 1"),
        ("entrix:client_rate_window_seconds", "0", "client_rate_window_seconds"),
        ("entrix:client_daily_order_quota", "0", "client_daily_order_quota"),
        # The usage table takes up to three writes per request the stage lets through.
        ("entrix:table_max_write_request_units", "299", "3 x api_burst_limit"),
        ("entrix:table_max_read_request_units", "0", "table_max_read_request_units"),
        ("entrix:cost_alarm_dollars_per_hour", "0", "cost_alarm_dollars_per_hour"),
        # The orders-not-moving alarms fire before the trading team's expiry alert (22 h), and
        # CloudWatch evaluates at most a day of 5-minute periods.
        ("entrix:oldest_pending_alarm_minutes", "10", "oldest_pending_alarm_minutes"),
        ("entrix:oldest_pending_alarm_minutes", "1320", "less than 1320"),
        ("entrix:no_successful_run_alarm_minutes", "62", "multiple of 5"),
        ("entrix:no_successful_run_alarm_minutes", "10", "within 15..1440"),
        ("entrix:no_successful_run_alarm_minutes", "1445", "within 15..1440"),
        ("entrix:client_limits", "[]", "client_limits: must be a JSON object"),
        ("entrix:client_limits", '{"desk-a": {"rate": 5}}', "rate_limit and/or daily_orders"),
        ("entrix:client_limits", '{"desk-a": {"rate_limit": 0}}', "at least 1"),
    ],
)
def test_invalid_settings_are_refused(key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceConfig.from_context(App(context={key: value}).node)


def test_a_misspelt_setting_is_refused_not_ignored() -> None:
    with pytest.raises(ValueError, match=r"entrix:waf_enable\b"):
        ServiceConfig.from_context(App(context={"entrix:waf_enable": "true"}).node)


def test_issuer_and_audience_reach_the_authorizer(configured: dict[str, Any]) -> None:
    (authorizer,) = [
        f["Properties"]
        for f in of_type(configured, "AWS::Lambda::Function")
        if f["Properties"]["Handler"] == "entrix.handlers.authorizer.handler"
    ]
    variables = authorizer["Environment"]["Variables"]
    assert variables[settings.JWT_ISSUER.name] == "https://auth.example.com"
    assert variables[settings.JWT_AUDIENCE.name] == "entrix-api"


def test_throttling_cache_ttl_and_retention_follow_the_settings(
    configured: dict[str, Any],
) -> None:
    (stage,) = of_type(configured, "AWS::ApiGateway::Stage")
    (settings,) = stage["Properties"]["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == 10.5
    assert settings["ThrottlingBurstLimit"] == 20
    (authorizer,) = of_type(configured, "AWS::ApiGateway::Authorizer")
    assert authorizer["Properties"]["AuthorizerResultTtlInSeconds"] == 60
    retentions = {
        g["Properties"]["RetentionInDays"] for g in of_type(configured, "AWS::Logs::LogGroup")
    }
    assert retentions == {7}


def test_throwaway_stacks_delete_their_data(configured: dict[str, Any]) -> None:
    tables = of_type(configured, "AWS::DynamoDB::Table")
    secrets = of_type(configured, "AWS::SecretsManager::Secret")
    assert len(tables) == 2  # the orders and the client usage tables
    assert len(secrets) == 2  # the signing key and the deny list
    assert {secret["DeletionPolicy"] for secret in secrets} == {"Delete"}
    for table in tables:
        assert table["DeletionPolicy"] == "Delete"
        assert table["Properties"].get("DeletionProtectionEnabled") in (False, None)


def test_waf_setting_puts_a_web_acl_on_the_api_stage(configured: dict[str, Any]) -> None:
    (acl,) = of_type(configured, "AWS::WAFv2::WebACL")
    assert acl["Properties"]["Scope"] == "REGIONAL"
    (association,) = of_type(configured, "AWS::WAFv2::WebACLAssociation")
    stage_id = next(
        k for k, r in configured["Resources"].items() if r["Type"] == "AWS::ApiGateway::Stage"
    )
    assert stage_id in json.dumps(association["Properties"]["ResourceArn"])


def test_client_limits_come_as_a_json_object_from_cdk_json_or_as_text() -> None:
    overrides = {"desk-a": {"rate_limit": 500}, "desk-b": {"daily_orders": 10}}
    for raw in (overrides, json.dumps(overrides)):
        config = ServiceConfig.from_context(App(context={"entrix:client_limits": raw}).node)
        assert json.loads(config.client_limits) == overrides


def test_the_orders_not_moving_alarms_follow_their_settings(configured: dict[str, Any]) -> None:
    alarms = {
        name: alarm["Properties"]
        for name in ("OldestPendingOrder", "NoSuccessfulRun")
        for logical_id, alarm in configured["Resources"].items()
        if logical_id.startswith(f"Observability{name}") and alarm["Type"].endswith("Alarm")
    }
    assert alarms["OldestPendingOrder"]["Threshold"] == 30 * 60
    no_success = alarms["NoSuccessfulRun"]
    periods = {
        query["MetricStat"]["Period"] for query in no_success["Metrics"] if "MetricStat" in query
    }
    assert periods == {300}
    assert 300 * no_success["EvaluationPeriods"] == 120 * 60
    assert no_success["DatapointsToAlarm"] == no_success["EvaluationPeriods"] == 24
