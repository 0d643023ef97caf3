"""Kind 12 checks something: Secrets Manager may invoke the signing key's rotation function only
through its Permission (for this account), and the function may rotate the key only with its
role's four grants."""

from __future__ import annotations

import copy
import json
from typing import Any

from entrix.local.iam.model import StackModel
from tests.permissions.edges import TEMPLATE_KINDS, denied, derive

KIND = TEMPLATE_KINDS[10]


def _service_model(app_models: list[StackModel]) -> StackModel:
    return next(m for m in app_models if m.of_type("AWS::SecretsManager::RotationSchedule"))


def _changed(model: StackModel, change: Any) -> StackModel:
    body = copy.deepcopy(model.body)
    change(body["Resources"])
    return StackModel(model.name, body, model.region)


def test_the_rotation_edges_are_found_and_allowed(app_models: list[StackModel]) -> None:
    model = _service_model(app_models)
    invoke, calls = derive(KIND, model, [model])
    assert "JwtSigningKey" in invoke.name and " -> " in invoke.name
    assert [r.action for r in calls.requests] == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ]
    assert not denied([invoke, calls])


def test_without_its_permission_secrets_manager_cannot_invoke_the_function(
    app_models: list[StackModel],
) -> None:
    def drop_permission(resources: dict[str, Any]) -> None:
        for logical_id in [
            k
            for k, r in resources.items()
            if r["Type"] == "AWS::Lambda::Permission"
            and r["Properties"]["Principal"] == "secretsmanager.amazonaws.com"
        ]:
            del resources[logical_id]
        for resource in resources.values():
            if resource["Type"] == "AWS::SecretsManager::RotationSchedule":
                resource.pop("DependsOn", None)

    model = _changed(_service_model(app_models), drop_permission)
    invoke, _ = derive(KIND, model, [model])
    (refusal,) = denied([invoke])
    assert "lambda:InvokeFunction" in refusal


def test_another_accounts_secrets_manager_is_refused(app_models: list[StackModel]) -> None:
    def other_account(resources: dict[str, Any]) -> None:
        for resource in resources.values():
            if resource["Type"] == "AWS::Lambda::Permission" and (
                resource["Properties"]["Principal"] == "secretsmanager.amazonaws.com"
            ):
                resource["Properties"]["SourceAccount"] = "210987654321"

    model = _changed(_service_model(app_models), other_account)
    invoke, _ = derive(KIND, model, [model])
    assert denied([invoke])


def test_without_its_grants_the_function_cannot_rotate_the_key(
    app_models: list[StackModel],
) -> None:
    def drop_grants(resources: dict[str, Any]) -> None:
        for resource in resources.values():
            if resource["Type"] == "AWS::IAM::Policy":
                document = resource["Properties"]["PolicyDocument"]
                document["Statement"] = [
                    s
                    for s in document["Statement"]
                    if "secretsmanager:PutSecretValue" not in json.dumps(s["Action"])
                ]

    model = _changed(_service_model(app_models), drop_grants)
    _, calls = derive(KIND, model, [model])
    assert len(denied([calls])) == 4
