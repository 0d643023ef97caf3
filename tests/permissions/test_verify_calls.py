"""The calls `entrix verify` really makes (observed against the local system, verify_calls.py)
decided against the delivery template's verify roles: Dev's runs `full`, Prod's `quiet`
(infra.stacks.delivery.VERIFY_MODES). Each role must allow every request of its mode, on its
own stage's resources, and grant no action its mode does not call: the granted and the observed
actions are the same set, compared both ways.
"""

from __future__ import annotations

import copy

import pytest

from entrix.local.iam.evaluate import Request, decide
from entrix.local.iam.model import StackModel
from infra.stacks.delivery import VERIFY_MODES
from tests.permissions.conftest import count
from tests.permissions.verify_calls import (
    observed_modes,
    observed_requests,
    verify_actions,
    verify_role,
)


def refused(requests: list[Request]) -> list[str]:
    return [d.explain() for d in decide(requests) if not d.allowed]


@pytest.mark.parametrize("mode", ["quiet", "full"])
def test_entrix_verify_passes_against_the_local_system(mode: str) -> None:
    """The observation is of a run that did its work: every check passed."""
    observed = observed_modes()[mode]

    assert observed.outcomes == dict.fromkeys(observed.outcomes)
    assert observed.calls


@pytest.mark.parametrize("stage", sorted(VERIFY_MODES))
def test_every_call_entrix_verify_makes_is_allowed_to_its_stages_verify_role(
    models: dict[str, StackModel], stage: str
) -> None:
    role = verify_role(models["EntrixDelivery"], stage)
    requests = observed_requests(stage, role, models[f"{stage}-Entrix"], models["EntrixDelivery"])
    count(f"verify calls ({stage}, {VERIFY_MODES[stage]})", len(requests), len(requests))

    assert not refused(requests), "\n".join(refused(requests))


@pytest.mark.parametrize("stage", sorted(VERIFY_MODES))
def test_the_verify_role_grants_exactly_the_actions_entrix_verify_calls(
    models: dict[str, StackModel], stage: str
) -> None:
    delivery = models["EntrixDelivery"]
    role = verify_role(delivery, stage)
    observed = {
        r.action
        for r in observed_requests(stage, role, models[f"{stage}-Entrix"], models["EntrixDelivery"])
    }

    granted = verify_actions(delivery, role)

    assert granted - observed == set(), "granted, never called"
    assert observed - granted == set(), "called, not granted"


def test_the_verify_role_without_set_alarm_state_fails_by_name(
    models: dict[str, StackModel],
) -> None:
    """Dev's role without cloudwatch:SetAlarmState: the probe alarm's calls are refused, and
    the action is named as called but not granted."""
    delivery = models["EntrixDelivery"]
    role = verify_role(delivery, "Dev")
    body = copy.deepcopy(delivery.body)
    for resource in body["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                if isinstance(actions, list) and "cloudwatch:SetAlarmState" in actions:
                    actions.remove("cloudwatch:SetAlarmState")
                elif actions == "cloudwatch:SetAlarmState":
                    statement["Action"] = []
    mutated = StackModel(delivery.name, body, delivery.region)
    stripped = mutated.role(role.arn)
    assert stripped.policies != role.policies

    refusals = refused(observed_requests("Dev", stripped, models["Dev-Entrix"], mutated))
    assert len(refusals) == 2  # ALARM, then back to OK
    assert all("cloudwatch:SetAlarmState" in refusal for refusal in refusals)
    called = {r.action for r in observed_requests("Dev", stripped, models["Dev-Entrix"], mutated)}
    assert called - verify_actions(mutated, stripped) == {"cloudwatch:SetAlarmState"}
