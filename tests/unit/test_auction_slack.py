"""The optional Slack forwarder (entrix.handlers.slack): SNS alert in, webhook POST out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from entrix import settings

WEBHOOK = "https://hooks.slack.example/services/T000/B000/XXXX"


def sns_event(*messages: str) -> dict[str, Any]:
    return {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": m}} for m in messages]}


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, list[Any], Any]]:
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="eu-west-1")
        arn = secrets.create_secret(Name="slack-webhook", SecretString=WEBHOOK + "\n")["ARN"]
        monkeypatch.setenv(settings.SLACK_WEBHOOK_SECRET_ARN.name, arn)
        import entrix.handlers.slack as module

        module.secret_cache.cache_clear()  # the URL is read on first use: from this test's moto
        posted: list[Any] = []

        class Reply:
            def __enter__(self) -> Reply:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def read(self) -> bytes:
                return b"ok"

        def fake_urlopen(request: Any, timeout: float) -> Reply:
            posted.append(request)
            return Reply()

        monkeypatch.setattr(module, "urlopen", fake_urlopen)
        yield module, posted, (secrets, arn)
        module.secret_cache.cache_clear()


def test_each_alert_is_posted_as_a_slack_message(slack: Any) -> None:
    module, posted, _ = slack
    rejection = json.dumps({"text": "Order a was rejected.", "record_id": "a", "run": "run-1"})

    module.handler(sns_event(rejection, "plain"), None)

    assert [request.full_url for request in posted] == [WEBHOOK, WEBHOOK]
    assert all(request.get_method() == "POST" for request in posted)
    assert posted[0].headers["Content-type"] == "application/json"
    bodies = [json.loads(request.data) for request in posted]
    assert bodies == [
        {"text": "Order a was rejected.\nrecord_id: a\nrun: run-1"},
        {"text": "plain"},
    ]


def test_the_webhook_url_is_read_once_and_cached(slack: Any) -> None:
    module, posted, (secrets, arn) = slack
    module.handler(sns_event("one"), None)
    secrets.update_secret(SecretId=arn, SecretString="https://elsewhere.example/hook")
    module.handler(sns_event("two"), None)
    assert {request.full_url for request in posted} == {WEBHOOK}


def test_a_non_https_webhook_is_refused(slack: Any) -> None:
    module, posted, (secrets, arn) = slack
    secrets.update_secret(SecretId=arn, SecretString="file:///etc/passwd")
    module.secret_cache.cache_clear()
    with pytest.raises(ValueError, match="https"):
        module.handler(sns_event("x"), None)
    assert posted == []
