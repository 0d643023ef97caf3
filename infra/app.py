"""Builds the CDK app: every stack, with the cdk-nag AwsSolutions checks as a validation plugin.

`app.py` synthesizes it; tests build it with their own context and output folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment

from infra.config import DeliveryConfig, ServiceConfig, stage_config
from infra.nag import add_checks, add_control_tower_checks
from infra.stacks.account_settings import AccountSettingsStack
from infra.stacks.delivery import DeliveryStack
from infra.stacks.service import ServiceStack

SERVICE_STACK = "Entrix"
ACCOUNT_SETTINGS_STACK = "EntrixAccountSettings"
DELIVERY_STACK = "EntrixDelivery"
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context: the `entrix:*` settings and CDK's feature flags, which every synth
    (tests included) starts from, so that no test synthesizes a template that would not deploy."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text()).get("context", {})
    return context


def build_app(
    context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
    *,
    nag: bool = True,
    control_tower: bool = False,
) -> App:
    """The app with its stacks; `nag=False` skips the AwsSolutions checks (template tests),
    `control_tower=True` adds the Control Tower proactive controls (the guardrail tests).

    cdk.json's context is the base, so `python app.py` and tests see the same settings as the
    CDK CLI (which still overrides them with its own context and `-c` values); `context` is
    applied on top.
    """
    app = App(
        context={**cdk_json_context(), **(context or {})},
        outdir=outdir or os.environ.get("CDK_OUTDIR", "cdk.out"),
    )
    config = ServiceConfig.from_context(app.node)
    env = Environment(account=config.account, region=config.region)
    account_settings = AccountSettingsStack(app, ACCOUNT_SETTINGS_STACK, env=env)
    service = ServiceStack(app, SERVICE_STACK, config=config, env=env)
    # `cdk deploy Entrix` deploys the account settings first (and leaves them if they are there).
    service.add_stack_dependency(account_settings)
    DeliveryStack(
        app,
        DELIVERY_STACK,
        config=DeliveryConfig.from_context(app.node),
        dev=stage_config(app.node, "Dev"),
        prod=stage_config(app.node, "Prod"),
    )
    if nag:
        add_checks(app)
    if control_tower:
        add_control_tower_checks(app)
    return app
