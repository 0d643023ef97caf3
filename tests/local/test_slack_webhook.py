"""The Slack forwarder against a local stand-in for the webhook: a real HTTP server on 127.0.0.1
that answers 429 with Retry-After before it accepts, with time passing for real.

The last test deploys the forwarder: the service synthesized with a webhook secret (the
subscribers variant) in the local system, enforcement on, invoked directly and through its
topic subscription, with and without its role's `secretsmanager:GetSecretValue`.

Nothing here asserts how long anything took: only which posts arrived, how many, and that none
came earlier than the Retry-After before it allowed (with a little slack for clock reads).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from entrix import settings
from entrix.local import harness, lambda_runner
from entrix.local.deploy import DeploymentError
from entrix.local.synth import STACK_NAME, ensure_template, project_root
from tests.local.test_enforcement import without_action
from tests.support.enforced import record_checks
from tests.unit.test_auction_slack import HOSTILE_ID, sns_event

CLOCK_SLACK_SECONDS = 0.05


@dataclass
class StandIn:
    """Answers the first `refusals` posts with 429 and `Retry-After: retry_after`, then 200."""

    refusals: int = 0
    retry_after: int = 1
    posts: list[tuple[float, bytes]] = field(default_factory=list)
    url: str = ""

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        if len(self.posts) <= self.refusals:
            return 429, {"Retry-After": str(self.retry_after)}, b"rate_limited"
        return 200, {}, b"ok"


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    state = StandIn()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                state.posts.append((time.monotonic(), body))
                status, headers, reply = state.answer()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/local"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def forwarder(stand_in: StandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="eu-west-1")
        arn = secrets.create_secret(Name="slack-webhook", SecretString=stand_in.url)["ARN"]
        monkeypatch.setenv(settings.SLACK_WEBHOOK_SECRET_ARN.name, arn)
        monkeypatch.setenv(settings.SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP.name, "true")
        import entrix.handlers.slack as module

        module.secret_cache.cache_clear()
        yield module
        module.secret_cache.cache_clear()


class Invocation:
    """A Lambda context whose remaining time runs out `seconds` from now, on the real clock."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def assert_retry_after_respected(stand_in: StandIn) -> None:
    times = [at for at, _ in stand_in.posts]
    for earlier, later in itertools.pairwise(times):
        assert later - earlier >= stand_in.retry_after - CLOCK_SLACK_SECONDS, times


def test_429s_are_waited_out_and_the_message_is_delivered_once(
    forwarder: ModuleType, stand_in: StandIn
) -> None:
    stand_in.refusals = 3
    alert = {"text": f"Order {HOSTILE_ID} was rejected.", "record_id": HOSTILE_ID}

    forwarder.handler(sns_event(json.dumps(alert)), Invocation(seconds=60))

    assert len(stand_in.posts) == 4  # three 429s, then the one accepted
    assert len({body for _, body in stand_in.posts}) == 1  # the same message each time
    assert_retry_after_respected(stand_in)
    posted = stand_in.posts[-1][1].decode()
    assert "<!channel>" not in posted and "<https://" not in posted
    assert "&lt;!channel&gt;" in json.loads(posted)["blocks"][1]["fields"][0]["text"]


def test_a_webhook_still_refusing_when_time_runs_out_raises_for_lambdas_retry(
    forwarder: ModuleType, stand_in: StandIn
) -> None:
    stand_in.refusals = 1000

    with pytest.raises(forwarder.WebhookError, match="429"):
        forwarder.handler(sns_event("never delivered"), Invocation(seconds=3.5))

    # 3.5 s with a second kept back: posts at about 0 s and 1 s, then the next wait no longer fits
    assert 1 <= len(stand_in.posts) <= forwarder.MAX_ATTEMPTS
    assert_retry_after_respected(stand_in)


def test_without_the_setting_a_loopback_http_webhook_is_refused(
    forwarder: ModuleType, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(settings.SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP.name)
    with pytest.raises(ValueError, match="https"):
        forwarder.handler(sns_event("x"), Invocation(seconds=60))
    assert stand_in.posts == []


# --- the forwarder deployed: the subscribers template in the local system, enforcement on ---

SLACK_WEBHOOK_SECRET_ARN = (
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:entrix/slack-webhook-AbCdEf"
)
FORWARDER = "entrix.handlers.slack.handler"


def subscribers_template(folder: Path, *, without: str | None = None) -> Path:
    """The service synthesized with a Slack webhook secret (so with the forwarder), its
    forwarder allowed the stand-in's loopback http URL, and its role without the action
    `without` when given."""
    source, _ = ensure_template(
        project_root(), {"entrix:slack_webhook_secret_arn": SLACK_WEBHOOK_SECRET_ARN}
    )
    template = json.loads(source.read_text())
    (forwarder,) = [
        r for r in template["Resources"].values() if r["Properties"].get("Handler") == FORWARDER
    ]
    forwarder["Properties"]["Environment"]["Variables"][
        settings.SLACK_WEBHOOK_ALLOW_LOOPBACK_HTTP.name
    ] = "true"
    if without:
        without_action(template, FORWARDER, without)
    path = folder / f"{STACK_NAME}.template.json"
    path.write_text(json.dumps(template))
    return path


@pytest.mark.parametrize("granted", [True, False], ids=["granted", "grant-removed"])
def test_the_deployed_forwarder_reads_its_secret_only_with_its_grant(
    granted: bool, stand_in: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook secret is read by the forwarder's role under enforcement: without the grant
    the invocation fails with AWS's refusal and nothing reaches Slack. SNS's delivery is made
    late (0.5 s, as on a loaded machine) and still before enforcement stops with the system."""
    put = lambda_runner._deliveries.put

    def late(delivery: Callable[[], Any]) -> None:
        put(lambda: (time.sleep(0.5), delivery()))

    monkeypatch.setattr(lambda_runner._deliveries, "put", late)
    with (
        record_checks() as checks,
        harness.in_process(
            subscribers_template(
                tmp_path, without=None if granted else "secretsmanager:GetSecretValue"
            )
        ) as system,
    ):
        system.endpoint.client("secretsmanager").create_secret(
            Name=SLACK_WEBHOOK_SECRET_ARN.rpartition(":")[2], SecretString=stand_in.url
        )
        forwarder = harness.function_with_handler(system, FORWARDER)
        alert = {"text": "1 of 2 orders were rejected in auction run r-1.", "status": "digest"}
        invocation = system.invoke(forwarder, sns_event(json.dumps(alert)))
        # And as SNS delivers it: the digest published to the topic the forwarder subscribes to.
        sns = system.endpoint.client("sns")
        (topic,) = [
            subscription["TopicArn"]
            for subscription in sns.list_subscriptions()["Subscriptions"]
            if subscription["Protocol"] == "lambda" and forwarder in subscription["Endpoint"]
        ]
        sns.publish(
            TopicArn=topic,
            Message=json.dumps(alert),
            MessageAttributes={"status": {"DataType": "String", "StringValue": alert["status"]}},
        )

    reads = [
        (call, refusal)
        for call, refusal in checks.decided
        if call.function == forwarder and call.operation == "GetSecretValue"
    ]
    assert reads, checks.decided
    if granted:
        assert not invocation.errored, invocation.payload
        assert checks.refused == []
        assert len(reads) == 1  # the second invocation reads the secret from its cache
        assert len(stand_in.posts) == 2, stand_in.posts
        assert all("1 of 2 orders were rejected" in body.decode() for _, body in stand_in.posts)
    else:
        assert invocation.errored
        # Secrets Manager's model has no AccessDeniedException shape: boto3 raises ClientError.
        error = invocation.json()
        assert error["errorType"] == "ClientError", error
        assert "(AccessDeniedException) when calling the GetSecretValue" in error["errorMessage"]
        assert (
            f"perform: secretsmanager:GetSecretValue on resource: {SLACK_WEBHOOK_SECRET_ARN}"
            in (error["errorMessage"])
        )
        codes = [refusal and refusal.code for _, refusal in reads]
        assert codes == ["AccessDeniedException"] * 2, codes
        assert stand_in.posts == []


@pytest.mark.parametrize("granted", [True, False], ids=["granted", "grant-removed"])
def test_the_forwarders_failure_destination_deploys_only_if_its_role_may_send_to_it(
    granted: bool, tmp_path: Path
) -> None:
    """As AWS's PutFunctionEventInvokeConfig, the local deploy refuses an on-failure queue the
    forwarder's role may not send to; with the grant, the config is stored on the `live` alias
    the template qualifies it with, not on the unqualified function."""
    template = subscribers_template(tmp_path, without=None if granted else "sqs:SendMessage")
    if not granted:
        with pytest.raises(DeploymentError) as refused, harness.in_process(template):
            pass
        assert re.search(
            r"InvalidParameterValueException: The function's execution role does not have "
            r"permissions to call SendMessage on arn:aws:sqs:eu-west-1:123456789012:"
            r"Entrix-ResultsPipelineSlackDeadLetters\w+$",
            str(refused.value),
        ), refused.value
        return
    with harness.in_process(template) as system:
        forwarder = harness.function_with_handler(system, FORWARDER)
        lambda_ = system.endpoint.client("lambda")
        config = lambda_.get_function_event_invoke_config(FunctionName=f"{forwarder}:live")
        with pytest.raises(lambda_.exceptions.ResourceNotFoundException):
            lambda_.get_function_event_invoke_config(FunctionName=forwarder)
    assert config["MaximumRetryAttempts"] == 2
    assert ":sqs:" in config["DestinationConfig"]["OnFailure"]["Destination"]
