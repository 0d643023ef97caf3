"""Builds the CDK app: every stack, with the cdk-nag AwsSolutions checks as a validation plugin.

`app.py` synthesizes it; tests build it with their own context and output folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import DeliveryConfig, ServiceConfig, stage_config
from infra.stacks.delivery import DeliveryStack
from infra.stacks.service import ServiceStack

SERVICE_STACK = "Entrix"
DELIVERY_STACK = "EntrixDelivery"


def build_app(
    context: Mapping[str, Any] | None = None, outdir: str | None = None, *, nag: bool = True
) -> App:
    """The app with its stacks; `nag=False` skips the AwsSolutions checks (template tests)."""
    app = App(context=dict(context or {}), outdir=outdir or os.environ.get("CDK_OUTDIR", "cdk.out"))
    ServiceStack(app, SERVICE_STACK, config=ServiceConfig.from_context(app.node))
    DeliveryStack(
        app,
        DELIVERY_STACK,
        config=DeliveryConfig.from_context(app.node),
        dev=stage_config(app.node, "Dev"),
        prod=stage_config(app.node, "Prod"),
    )
    if nag:
        Validations.of(app).add_plugins(
            AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True)
        )
    return app
