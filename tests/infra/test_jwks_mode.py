"""The stack in jwks mode (`-c entrix:jwt_key_source=jwks -c entrix:jwt_jwks_url=https://...`):
the authorizer verifies the identity provider's tokens, and the stack holds no signing key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from entrix import settings
from infra.app import build_app
from infra.bundling import locked_closure
from infra.config import ServiceConfig
from infra.constructs.lambda_code import SDK_LAYER_ID
from tests.infra.conftest import NO_BUNDLING
from tests.infra.test_intake_template import AUTHORIZER, function, granted

JWKS_URL = "https://idp.entrix.example/.well-known/jwks.json"
JWKS_CONTEXT = {"entrix:jwt_key_source": "jwks", "entrix:jwt_jwks_url": JWKS_URL}


@pytest.fixture(scope="module")
def jwks_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The Entrix stack synthesized in jwks mode, with cdk-nag (synth raises on a finding)."""
    outdir = tmp_path_factory.mktemp("jwks")
    build_app({**NO_BUNDLING, **JWKS_CONTEXT}, str(outdir), nag=True).synth()
    return json.loads((Path(outdir) / "Entrix.template.json").read_text())


def secrets_of(template: dict[str, Any]) -> dict[str, str]:
    """Each secret's logical id by its `entrix:purpose` tag."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::SecretsManager::Secret":
            tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
            found[tags["entrix:purpose"]] = logical_id
    return found


def test_the_stack_holds_no_signing_key(jwks_json: dict[str, Any]) -> None:
    assert set(secrets_of(jwks_json)) == {"jwt-deny-list"}
    assert "JwtSecretArn" not in jwks_json.get("Outputs", {})


def test_the_default_stack_keeps_its_signing_key(service_json: dict[str, Any]) -> None:
    assert set(secrets_of(service_json)) == {"jwt-signing-key", "jwt-deny-list"}
    _, props = function(service_json, AUTHORIZER)
    assert props["Environment"]["Variables"][settings.JWT_KEY_SOURCE.name] == "secret"


def test_the_authorizer_reads_the_issuers_https_jwks(jwks_json: dict[str, Any]) -> None:
    _, props = function(jwks_json, AUTHORIZER)
    variables = props["Environment"]["Variables"]
    assert variables[settings.JWT_KEY_SOURCE.name] == "jwks"
    assert variables[settings.JWT_JWKS_URL.name] == JWKS_URL
    assert variables[settings.JWT_JWKS_ALLOW_LOOPBACK_HTTP.name] == "False"
    assert settings.JWT_SECRET_ARN.name not in variables
    assert settings.SECRET_CACHE_TTL_SECONDS.name not in variables
    assert variables[settings.JWT_REVOCATIONS_SECRET_ARN.name] == {
        "Ref": secrets_of(jwks_json)["jwt-deny-list"]
    }


def test_the_authorizer_may_read_only_the_deny_list(jwks_json: dict[str, Any]) -> None:
    assert granted(jwks_json, AUTHORIZER) == {
        "secretsmanager:GetSecretValue": {"Ref": secrets_of(jwks_json)["jwt-deny-list"]}
    }


def test_the_authorizers_layer_brings_cryptography(
    jwks_json: dict[str, Any], service_json: dict[str, Any]
) -> None:
    def layer(template: dict[str, Any]) -> dict[str, Any]:
        (ref,) = [
            layer["Ref"]
            for layer in function(template, AUTHORIZER)[1]["Layers"]
            # The extension's layer is an ARN; the SDK layer is every SDK user's.
            if isinstance(layer, dict) and not layer["Ref"].startswith(SDK_LAYER_ID)
        ]
        return template["Resources"][ref]

    jwks_layer, default_layer = layer(jwks_json), layer(service_json)
    assert "cryptography" in jwks_layer["Properties"]["Description"]
    assert "cryptography" not in default_layer["Properties"]["Description"]
    # The asset's hash is the bundler's, over its pinned wheels: another layer.
    assert jwks_layer["Properties"]["Content"] != default_layer["Properties"]["Content"]


def test_cryptographys_locked_closure_evaluates_its_markers_for_lambda() -> None:
    """cryptography needs cffi (marker: not PyPy), which needs pycparser (likewise)."""
    names = [wheel.name for wheel in locked_closure(["pyjwt", "cryptography"])]
    assert names == ["cffi", "cryptography", "pycparser", "pyjwt"]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"entrix:jwt_key_source": "jwks"}, "needs jwt_jwks_url"),
        ({**JWKS_CONTEXT, "entrix:jwt_jwks_url": "http://idp.example/jwks"}, "https://"),
        ({**JWKS_CONTEXT, "entrix:jwt_jwks_url": "http://127.0.0.1:8/jwks"}, "https://"),
        ({"entrix:jwt_jwks_url": JWKS_URL}, "only with jwt_key_source jwks"),
        ({"entrix:jwt_key_source": "oidc"}, "jwt_key_source: must be one of secret, jwks"),
    ],
)
def test_key_source_settings_are_checked(context: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceConfig.from_context(App(context=context).node)
