"""The app's templates as permission models, and the count of edges each test checked.

The templates are the infra tests' synthesis of the whole app (tests/infra/conftest.py), plus
the service stack synthesized with every subscriber set (cdk.json's context, a Slack webhook
secret, email addresses and a client's HTTPS rejection subscription), which adds the Slack
forwarder's, the email and the client's subscriptions.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from aws_cdk import App
from aws_cdk.cx_api import CloudAssembly

from entrix.local.iam.model import StackModel
from infra.app import CDK_JSON
from infra.config import ServiceConfig
from infra.stacks.service import ServiceStack
from tests.infra.conftest import nag_assembly

__all__ = ["nag_assembly"]

SLACK_WEBHOOK_SECRET_ARN = (
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:entrix/slack-webhook-AbCdEf"
)
SUBSCRIBERS_STACK = "EntrixWithSubscribers"

# Edges (and requests) checked per kind in this session, for the summary at the end.
CHECKED: Counter[str] = Counter()
REQUESTS: Counter[str] = Counter()


def count(kind: str, edges: int, requests: int) -> None:
    CHECKED[kind] += edges
    REQUESTS[kind] += requests


@pytest.fixture(scope="session")
def subscribers_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("cdk.out-subscribers")
    context = json.loads(CDK_JSON.read_text())["context"]
    context |= {
        "aws:cdk:bundling-stacks": [],
        "entrix:slack_webhook_secret_arn": SLACK_WEBHOOK_SECRET_ARN,
        "entrix:alert_email_addresses": ["trading@example.com"],
        "entrix:ops_email_addresses": ["oncall@example.com"],
        # An HTTPS endpoint needs no grant; a client's SQS queue is granted by the queue's own
        # policy in the client's account, which no template of this app holds (the model would
        # refuse it for want of that policy).
        "entrix:client_rejection_subscriptions": {
            "desk-b": "https://orders.desk-b.example/entrix/rejections",
        },
    }
    app = App(context=context, outdir=str(outdir))
    ServiceStack(app, SUBSCRIBERS_STACK, config=ServiceConfig.from_context(app.node))
    app.synth()
    return outdir / f"{SUBSCRIBERS_STACK}.template.json"


@pytest.fixture(scope="session")
def app_models(nag_assembly: Path, subscribers_template: Path) -> list[StackModel]:
    """Every stack of the app (the stages' copies of the service stack included)."""
    paths = [*sorted(nag_assembly.rglob("*.template.json")), subscribers_template]
    return [StackModel.load(path) for path in paths]


@pytest.fixture(scope="session")
def models(nag_assembly: Path) -> dict[str, StackModel]:
    """The delivery stack and the stages' service stacks, each under its deployed name (what
    CloudFormation prefixes its generated names with)."""
    return {
        stack.stack_name: StackModel(
            stack.stack_name,
            json.loads(Path(stack.template_full_path).read_text()),
            stack.environment.region,
        )
        for stack in CloudAssembly(str(nag_assembly)).stacks_recursively
        if stack.stack_name in {"EntrixDelivery", "Dev-Entrix", "Prod-Entrix"}
    }


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not CHECKED:
        return
    terminalreporter.section("permission model: edges checked")
    for kind in sorted(CHECKED):
        terminalreporter.write_line(f"{kind}: {CHECKED[kind]} edges ({REQUESTS[kind]} requests)")
