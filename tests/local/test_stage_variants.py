"""The delivery pipeline's Dev and Prod copies of the service stack, run by the local system with
enforcement on: a compact order lifecycle and one results run through each.

The stage templates are the ones `entrix local` synthesizes beside `Entrix.template.json` (the
whole app: `assembly-EntrixDelivery-Dev`, `-Prod`), deployed under their own stack names
(`Dev-Entrix`, `Prod-Entrix`) as CodePipeline deploys them. Prod differs from the service stack by
its WAF (web ACL, association, logging configuration and log group), which has no local effect.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from entrix.local import harness
from entrix.local.synth import ensure_template, project_root
from infra.app import DELIVERY_STACK
from tests.permissions.test_lambda_calls import (
    CANCEL,
    INGEST,
    ORDER_LIST,
    ORDER_STATUS,
    PROCESS,
    RESULTS,
    _handler_module,
    _orders,
    _request,
    _run,
)
from tests.pipeline.conftest import ACCEPT, READY, REJECT, ScriptedRandom
from tests.support.enforced import record_checks
from tests.support.local_system import Running

STAGES = ("Dev", "Prod")


def stage_template(stage: str) -> tuple[Path, str]:
    """The stage's service template and the stack name the pipeline deploys it as."""
    service, _ = ensure_template(project_root())
    assembly = service.parent / f"assembly-{DELIVERY_STACK}-{stage}"
    manifest = json.loads((assembly / "manifest.json").read_text())
    (stack,) = [
        artifact
        for artifact in manifest["artifacts"].values()
        if artifact["type"] == "aws:cloudformation:stack"
    ]
    return assembly / stack["properties"]["templateFile"], stack["properties"]["stackName"]


def _stored(running: Running, bucket: str, prefix: str) -> set[str]:
    """The record ids of the JSON Lines stored under `prefix`."""
    s3 = running.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        json.loads(line)["record_id"]
        for entry in listed
        for line in s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read().splitlines()
    }


def _wait_for(notifications: list[tuple[str, str]], text: str) -> None:
    """Until the console tap has shown a notification containing `text`; a guard against a
    lost message, not a speed check."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(text in shown for _, shown in notifications):
            return
        time.sleep(0.1)
    raise AssertionError(f"no notification with {text!r}: {notifications}")


@pytest.mark.parametrize("stage", STAGES)
def test_the_stage_runs_the_order_lifecycle_with_every_call_decided_and_allowed(
    stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    template, stack_name = stage_template(stage)
    template_json: dict[str, Any] = json.loads(template.read_text())
    has_waf = any(r["Type"].startswith("AWS::WAFv2::") for r in template_json["Resources"].values())
    assert has_waf == (stage == "Prod")
    notifications: list[tuple[str, str]] = []

    with (
        record_checks() as checks,
        harness.in_process(
            template,
            stack_name=stack_name,
            show_notification=lambda topic, text: notifications.append((topic, text)),
        ) as system,
    ):
        table = harness.orders_table(system)
        assert table.startswith(f"{stack_name}-"), table
        token = harness.sign_token(system, "desk-stage")
        running = Running(system=system, token=token, table=table)

        created = running.post(_orders("st-1", "st-2", "st-3"))
        read = _request(running, "GET", "/st-1", token)
        listed = _request(running, "GET", "?limit=10", token)
        cancelled = _request(running, "DELETE", "/st-3", token)
        results = _handler_module(running, RESULTS)
        monkeypatch.setattr(results, "random_source", ScriptedRandom([READY, ACCEPT, REJECT]))
        run = f"{stage.lower()}-accept-and-reject"
        output = _run(running, run)
        statuses = {
            record_id: _request(running, "GET", f"/{record_id}", token)[1]["result_status"]
            for record_id in ("st-1", "st-2", "st-3")
        }
        _wait_for(notifications, f"1 of 2 orders were rejected in auction run {run}")
        buckets = running.client("s3").list_buckets()["Buckets"]
        (bucket,) = [b["Name"] for b in buckets if b["Name"].startswith("order-results-")]
        stored = {
            prefix: _stored(running, bucket, prefix) for prefix in ("results/", "rejections/")
        }
        simulator_requests = system.enforcer.simulator.requests if system.enforcer else 0

    assert created[0] == 201 and created[1]["created"] == ["st-1", "st-2", "st-3"], created
    assert read[0] == 200 and read[1]["result_status"] == "pending", read
    assert listed[0] == 200, listed
    assert {o["record_id"] for o in listed[1]["orders"]} == {"st-1", "st-2", "st-3"}
    assert cancelled[0] == 204, cancelled
    assert output["accepted"] == output["rejected"] == 1, output
    assert output["failed"] == output["skipped"] == 0, output
    assert statuses["st-3"] == "cancelled"
    assert sorted(statuses.values()) == ["accepted", "cancelled", "rejected"], statuses
    assert stored == {
        "results/": {r for r, s in statuses.items() if s == "accepted"},
        "rejections/": {r for r, s in statuses.items() if s == "rejected"},
    }

    assert checks.refused == [], checks.refused
    assert simulator_requests > 0
    assert {INGEST, ORDER_STATUS, ORDER_LIST, CANCEL, RESULTS, PROCESS} <= checks.handlers(system)
