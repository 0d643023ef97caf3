"""`entrix:client_rejection_subscriptions`: each client's endpoint is subscribed to the alert topic
with a filter policy that lets through its own rejections only (issue 18)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App

from entrix.aws.alerts import PEOPLE_FILTER_POLICY
from infra.config import ServiceConfig
from tests.infra.test_results_pipeline import _synth

QUEUE = "arn:aws:sqs:eu-west-1:210987654321:desk-a-rejections"
HTTPS = "https://orders.desk-b.example/entrix/rejections"
SETTING = "entrix:client_rejection_subscriptions"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    context = {SETTING: {"desk-a": QUEUE, "desk-b": HTTPS}}
    return _synth(tmp_path_factory.mktemp("cdk.out-clients"), context)


def _subscriptions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["Endpoint"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SNS::Subscription" and "FilterPolicy" in r["Properties"]
    }


def _alert_topic(template: dict[str, Any]) -> str:
    (topic,) = [
        name
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::SNS::Topic" and "AlertTopic" in name
    ]
    return topic


def test_each_client_is_subscribed_with_its_own_rejections_filter(
    template: dict[str, Any],
) -> None:
    subscriptions = _subscriptions(template)
    assert set(subscriptions) == {QUEUE, HTTPS}
    for owner, endpoint, protocol in (("desk-a", QUEUE, "sqs"), ("desk-b", HTTPS, "https")):
        subscription = subscriptions[endpoint]
        assert subscription["Protocol"] == protocol
        assert subscription["FilterPolicy"] == {"owner": [owner], "status": ["rejected"]}
        assert subscription.get("FilterPolicyScope", "MessageAttributes") == "MessageAttributes"
        assert subscription["RawMessageDelivery"] is True
        assert subscription["TopicArn"] == {"Ref": _alert_topic(template)}


def test_by_default_no_client_is_subscribed(tmp_path_factory: pytest.TempPathFactory) -> None:
    assert _subscriptions(_synth(tmp_path_factory.mktemp("cdk.out-none"))) == {}


def test_the_setting_is_read_from_the_command_line_as_json() -> None:
    text = json.dumps({"desk-b": HTTPS, "desk-a": QUEUE})
    config = ServiceConfig.from_context(App(context={SETTING: text}).node)
    assert config.client_rejection_subscriptions == (("desk-a", QUEUE), ("desk-b", HTTPS))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"desk-a": "http://orders.example/plain"}, "neither an SQS queue ARN"),
        ({"desk-a": "arn:aws:sns:eu-west-1:210987654321:topic"}, "neither an SQS queue ARN"),
        ({"": QUEUE}, "owner must not be empty"),
        (["desk-a", QUEUE], "JSON object of strings"),
        ("desk-a=" + QUEUE, "JSON object of strings"),
    ],
)
def test_a_bad_subscription_is_refused(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceConfig.from_context(App(context={SETTING: value}).node)


def test_a_misspelt_key_is_refused() -> None:
    with pytest.raises(ValueError, match=r"entrix:client_rejection_subscription\b"):
        ServiceConfig.from_context(
            App(context={"entrix:client_rejection_subscription": {"desk-a": QUEUE}}).node
        )


def test_people_read_the_digest_by_email_not_every_rejection(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """An e-mail address gets what Slack gets: a run's digest, failed batches, runs never ready,
    never the 50,000 per-order rejections of a large run."""
    context = {"entrix:alert_email_addresses": ["trading@example.com"]}
    template = _synth(tmp_path_factory.mktemp("cdk.out-email"), context)
    (email,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SNS::Subscription" and r["Properties"]["Protocol"] == "email"
    ]
    assert email["Endpoint"] == "trading@example.com"
    assert email["FilterPolicy"] == PEOPLE_FILTER_POLICY
    assert email.get("FilterPolicyScope", "MessageAttributes") == "MessageAttributes"
