"""The AWS SDK ships with the functions: every function whose code imports boto3 or botocore
runs the versions pinned in uv.lock, which are the versions this test suite ran, and never
the Lambda runtime's (which AWS updates on its own schedule, without a deploy)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from infra.bundling import ModuleBundler, locked_closure
from infra.constructs.lambda_code import SDK_LAYER_ID, SDK_PACKAGES


def sdk_layers(template: dict[str, Any]) -> list[str]:
    return [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::LayerVersion" and logical_id.startswith(SDK_LAYER_ID)
    ]


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Our Python functions by logical id (the custom resources' handlers are CDK's own)."""
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"].get("Handler", "").startswith("entrix.handlers.")
    }


def test_the_shipped_sdk_is_the_one_these_tests_ran() -> None:
    """The layer is built from uv.lock's wheels (tests/infra/test_bundling.py), which is also
    what this environment installed."""
    shipped = {wheel.name: wheel.version for wheel in locked_closure(sorted(SDK_PACKAGES))}
    for package in SDK_PACKAGES:
        assert shipped[package] == version(package), package


def test_every_function_importing_the_sdk_has_the_one_sdk_layer_and_no_other_does(
    service_json: dict[str, Any],
) -> None:
    (layer,) = sdk_layers(service_json)
    assert "boto3" in service_json["Resources"][layer]["Properties"]["Description"]
    importing, with_layer = set(), set()
    for logical_id, props in functions(service_json).items():
        module = props["Handler"].rpartition(".")[0]
        if ModuleBundler([module]).third_party_imports() & SDK_PACKAGES:
            importing.add(logical_id)
        if {"Ref": layer} in props.get("Layers", []):
            with_layer.add(logical_id)
    assert importing, "no function imports the SDK: the scan found nothing"
    assert with_layer == importing
