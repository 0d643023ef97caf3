"""The optional Slack forwarder (entrix.handlers.slack): SNS alert in, webhook POST out.

The webhook is faked here (urlopen replaced, time not passing); tests/local/test_slack_webhook.py
posts to a real HTTP stand-in that answers 429 with Retry-After, with time passing for real.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from email.message import Message
from types import ModuleType
from typing import Any
from urllib.error import HTTPError, URLError

import boto3
import pytest
from moto import mock_aws

from entrix import settings
from entrix.auction.digest import rejection_digest
from entrix.auction.outcomes import REJECTED_EXAMPLES

WEBHOOK = "https://hooks.slack.example/services/T000/B000/XXXX"
HOSTILE_ID = "<!channel> please log in again: <https://evil.example/login|entrix portal>"


def sns_event(*messages: str) -> dict[str, Any]:
    return {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": m}} for m in messages]}


class Reply:
    def __enter__(self) -> Reply:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self) -> bytes:
        return b"ok"


def http_error(code: int, retry_after: str | None = None) -> HTTPError:
    headers = Message()
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return HTTPError(WEBHOOK, code, "refused", headers, io.BytesIO(b"rate_limited"))


class Webhook:
    """Answers each post with the next of `replies` (an exception to raise, or None: 200)."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.replies: list[Exception | None] = []

    def urlopen(self, request: Any, timeout: float) -> Reply:
        assert 0 < timeout <= 5.0
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else None
        if reply is not None:
            raise reply
        return Reply()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.data) for request in self.requests]


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, Webhook, Any]]:
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="eu-west-1")
        arn = secrets.create_secret(Name="slack-webhook", SecretString=WEBHOOK + "\n")["ARN"]
        monkeypatch.setenv(settings.SLACK_WEBHOOK_SECRET_ARN.name, arn)
        import entrix.handlers.slack as module

        module.secret_cache.cache_clear()  # the URL is read on first use: from this test's moto
        webhook = Webhook()
        monkeypatch.setattr(module, "urlopen", webhook.urlopen)
        yield module, webhook, (secrets, arn)
        module.secret_cache.cache_clear()


class Clock:
    """A Lambda context and a sleep sharing one made-up clock."""

    def __init__(self, remaining_seconds: float) -> None:
        self.remaining = remaining_seconds
        self.slept: list[float] = []

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining * 1000)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.remaining -= seconds


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_each_alert_is_posted_with_its_fields_as_fields(slack: Any) -> None:
    module, webhook, _ = slack
    rejection = json.dumps({"text": "Order a was rejected.", "record_id": "a", "run": "run-1"})

    module.handler(sns_event(rejection, "plain"), None)

    assert [request.full_url for request in webhook.requests] == [WEBHOOK, WEBHOOK]
    assert all(request.get_method() == "POST" for request in webhook.requests)
    assert webhook.requests[0].headers["Content-type"] == "application/json"
    first, second = webhook.bodies()
    assert first["text"] == "Order a was rejected.\nrecord_id: a\nrun: run-1"
    assert first["unfurl_links"] is False and first["unfurl_media"] is False
    headline, fields = first["blocks"]
    assert headline["text"] == {"type": "mrkdwn", "text": "Order a was rejected.", "verbatim": True}
    assert fields["fields"] == [
        {"type": "mrkdwn", "text": "*record_id*\na", "verbatim": True},
        {"type": "mrkdwn", "text": "*run*\nrun-1", "verbatim": True},
    ]
    assert second["text"] == "plain"
    assert second["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "plain", "verbatim": True}}
    ]


def test_client_text_reaches_slack_inert(slack: Any) -> None:
    module, webhook, _ = slack
    alert = {
        "text": f"Order {HOSTILE_ID} of client-1 was rejected.",
        "record_id": HOSTILE_ID,
        "owner": "client-1",
        "status": "rejected",
        "<@U123>": "a & b",
    }

    module.handler(sns_event(json.dumps(alert), HOSTILE_ID), None)

    for body in webhook.bodies():
        posted = list(strings(body))
        assert not any("<!channel>" in text for text in posted)
        # no Slack control sequence at all: no mention, no <url|label> link
        assert not any("<" in text or ">" in text for text in posted), posted
        assert not any("<https://" in text or "|entrix portal>" in text for text in posted)
    body = webhook.bodies()[0]
    escaped = (
        "&lt;!channel&gt; please log in again: &lt;https://evil.example/login|entrix portal&gt;"
    )
    assert {"type": "mrkdwn", "text": f"*record_id*\n{escaped}", "verbatim": True} in (
        body["blocks"][1]["fields"]
    )
    assert {"type": "mrkdwn", "text": "*&lt;@U123&gt;*\na &amp; b", "verbatim": True} in (
        body["blocks"][1]["fields"]
    )
    assert webhook.bodies()[1]["text"] == escaped


def _digest(record_id: str = "r-1") -> dict[str, Any]:
    """A run's digest as the run summary writes it (entrix.auction.digest)."""
    batches = [
        {
            "rejected": 6,
            REJECTED_EXAMPLES: [
                {"record_id": record_id, "owner": "desk-a", "power": -12},
                {"record_id": "r-2", "owner": "desk-b", "power": 7},
            ],
        }
    ]
    digest = rejection_digest("run-9", 100000, batches, "results", "rejections/run=run-9/")
    assert digest is not None
    return digest


def test_a_digest_is_posted_with_each_example_as_a_field(slack: Any) -> None:
    module, webhook, _ = slack

    module.handler(sns_event(json.dumps(_digest())), None)

    (body,) = webhook.bodies()
    headline, fields = body["blocks"]
    assert headline["text"]["text"] == (
        "6 of 100000 orders were rejected in auction run run-9; "
        "the full list: s3://results/rejections/run=run-9/"
    )
    assert [field["text"] for field in fields["fields"]] == [
        "*status*\nrejection_digest",
        "*run*\nrun-9",
        "*rejected*\n6",
        "*orders*\n100000",
        "*examples 1*\nrecord_id: r-1, owner: desk-a, power: -12",
        "*examples 2*\nrecord_id: r-2, owner: desk-b, power: 7",
        "*rejections*\ns3://results/rejections/run=run-9/",
    ]
    assert all(field["verbatim"] is True for field in fields["fields"])
    assert "examples 2: record_id: r-2, owner: desk-b, power: 7" in body["text"]


def test_client_text_in_a_digests_examples_reaches_slack_inert(slack: Any) -> None:
    module, webhook, _ = slack

    module.handler(sns_event(json.dumps(_digest(HOSTILE_ID))), None)

    (body,) = webhook.bodies()
    posted = list(strings(body))
    assert not any("<" in text or ">" in text for text in posted), posted
    escaped = (
        "&lt;!channel&gt; please log in again: &lt;https://evil.example/login|entrix portal&gt;"
    )
    assert {
        "type": "mrkdwn",
        "text": f"*examples 1*\nrecord_id: {escaped}, owner: desk-a, power: -12",
        "verbatim": True,
    } in body["blocks"][1]["fields"]


def test_long_and_many_fields_fit_block_kit(slack: Any) -> None:
    module = slack[0]
    alert = {"text": "<" * 5000, **{f"field{n}": "&" * 3000 for n in range(12)}}
    body = module.slack_message(json.dumps(alert))
    headline, *sections = body["blocks"]
    assert len(headline["text"]["text"]) <= module.MAX_TEXT_CHARS
    assert headline["text"]["text"].startswith("&lt;&lt;") and headline["text"]["text"][-1] == "…"
    assert [len(section["fields"]) for section in sections] == [10, 2]
    for section in sections:
        for field in section["fields"]:
            assert len(field["text"]) <= module.MAX_FIELD_CHARS
            assert field["text"].endswith("&amp;…")  # cut between entities, never inside one


def test_the_webhook_url_is_read_once_and_cached(slack: Any) -> None:
    module, webhook, (secrets, arn) = slack
    module.handler(sns_event("one"), None)
    secrets.update_secret(SecretId=arn, SecretString="https://elsewhere.example/hook")
    module.handler(sns_event("two"), None)
    assert {request.full_url for request in webhook.requests} == {WEBHOOK}


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://hooks.slack.example/services/T000",
        "http://127.0.0.1:8080/hook",
        "http://[::1]:8080/hook",
        "https:///no-host",
    ],
)
def test_a_webhook_that_is_not_https_is_refused(slack: Any, url: str) -> None:
    module, webhook, (secrets, arn) = slack
    secrets.update_secret(SecretId=arn, SecretString=url)
    module.secret_cache.cache_clear()
    with pytest.raises(ValueError, match="https"):
        module.handler(sns_event("x"), None)
    assert webhook.requests == []


def test_loopback_http_is_allowed_only_where_the_setting_says_so(
    slack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, webhook, (secrets, arn) = slack
    secrets.update_secret(SecretId=arn, SecretString="http://127.0.0.1:8080/hook")
    module.secret_cache.cache_clear()
    monkeypatch.setenv(settings.SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP.name, "false")
    with pytest.raises(ValueError, match="https"):
        module.handler(sns_event("x"), None)
    monkeypatch.setenv(settings.SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP.name, "true")
    module.handler(sns_event("x"), None)
    assert [request.full_url for request in webhook.requests] == ["http://127.0.0.1:8080/hook"]
    # even then, http:// elsewhere than the loopback interface is refused
    for url in ("http://hooks.slack.example/x", "http://127.0.0.1.evil.example/x"):
        with pytest.raises(ValueError, match="https"):
            module.check_webhook_url(url)


def test_429_is_waited_out_as_retry_after_asks(slack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    module, webhook, _ = slack
    clock = Clock(remaining_seconds=60)
    monkeypatch.setattr(module.time, "sleep", clock.sleep)
    webhook.replies = [http_error(429, "2"), http_error(429, "1"), http_error(503)]

    module.handler(sns_event("hello"), clock)

    assert len(webhook.requests) == 4
    assert clock.slept == [2.0, 1.0, module.ERROR_PAUSE_SECONDS]
    assert len({request.data for request in webhook.requests}) == 1


def test_a_wait_longer_than_the_invocation_has_left_raises_at_once(
    slack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, webhook, _ = slack
    clock = Clock(remaining_seconds=10)
    monkeypatch.setattr(module.time, "sleep", clock.sleep)
    webhook.replies = [http_error(429, "1"), http_error(429, "30")]

    with pytest.raises(module.WebhookError, match="429"):
        module.handler(sns_event("hello"), clock)

    assert len(webhook.requests) == 2
    assert clock.slept == [1.0]


def test_retries_are_bounded(slack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    module, webhook, _ = slack
    clock = Clock(remaining_seconds=600)
    monkeypatch.setattr(module.time, "sleep", clock.sleep)
    webhook.replies = [http_error(429)] * 3 + [URLError("refused")] * 10

    with pytest.raises(module.WebhookError, match="after 6 posts"):
        module.handler(sns_event("hello"), clock)

    assert len(webhook.requests) == module.MAX_ATTEMPTS
    assert clock.slept == [1.0] * (module.MAX_ATTEMPTS - 1)  # Retry-After absent: 1 s


@pytest.mark.parametrize("code", [400, 403, 404, 410])
def test_a_refusal_is_not_retried_in_the_invocation(
    slack: Any, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    module, webhook, _ = slack
    clock = Clock(remaining_seconds=60)
    monkeypatch.setattr(module.time, "sleep", clock.sleep)
    webhook.replies = [http_error(code)]

    with pytest.raises(module.WebhookError, match=str(code)):
        module.handler(sns_event("hello"), clock)

    assert len(webhook.requests) == 1 and clock.slept == []


def test_no_post_starts_without_time_left(slack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    module, webhook, _ = slack
    with pytest.raises(module.WebhookError, match="no time left"):
        module.handler(sns_event("hello"), Clock(remaining_seconds=0.5))
    assert webhook.requests == []
