"""`entrix token`: finds the authorizer, signs with its secret, prints only the token."""

from __future__ import annotations

import io
import json
import socket
import zipfile
from collections.abc import Iterator
from typing import Any
from urllib.request import Request, urlopen

import boto3
import jwt
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.server import ThreadedMotoServer

from entrix import cli, settings
from entrix.token_command import (
    AUTHORIZER_HANDLER,
    TokenCommandError,
    stack_authorizer_function,
)
from entrix.tokens import TokenRules, verify_token

KEY = "local-signing-key-0123456789abcdef"
NEW_KEY = "rotated-signing-key-0123456789abcdef"
REGION = "eu-west-1"
ISSUER = settings.JWT_ISSUER.text()
AUDIENCE = settings.JWT_AUDIENCE.text()


def verify(
    token: str, *, key: str = KEY, issuer: str = ISSUER, audience: str = AUDIENCE
) -> dict[str, Any]:
    """The claims, verified as the authorizer would with `key` (whatever the kid)."""
    return verify_token(token, lambda kid: key, TokenRules(issuer, audience, 12 * 3600))


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def deploy_authorizer(
    make_client: Any,
    secret_string: str = KEY,
    *,
    name: str = "Entrix-Authorizer",
    handler: str = AUTHORIZER_HANDLER,
    extra_env: dict[str, str] | None = None,
) -> str:
    """Create the secret and a function configured like the authorizer; return its name."""
    secret_arn = make_client("secretsmanager").create_secret(
        Name=f"{name}-jwt", SecretString=secret_string
    )["ARN"]
    role = make_client("iam").create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    make_client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler=handler,
        Code={"ZipFile": lambda_zip()},
        Environment={"Variables": {"JWT_SECRET_ARN": secret_arn, **(extra_env or {})}},
    )
    return name


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["token", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# Local mode, against a real moto server on a free port -----------------------------------


@pytest.fixture(scope="module")
def local_aws() -> Iterator[tuple[int, Any]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]

    def make_client(service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=f"http://127.0.0.1:{port}")

    try:
        yield port, make_client
    finally:
        server.stop()


@pytest.fixture
def clean_local_aws(local_aws: tuple[int, Any]) -> Iterator[tuple[int, Any]]:
    """The shared server, emptied after each test through moto's reset API."""
    yield local_aws
    reset = Request(f"http://127.0.0.1:{local_aws[0]}/moto-api/reset", method="POST")
    urlopen(reset, timeout=10).close()


def test_local_token_is_accepted_by_the_authorizer_rules(
    clean_local_aws: tuple[int, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    port, make_client = clean_local_aws
    # The local system has other functions too: only the authorizer's handler counts.
    deploy_authorizer(make_client, name="Entrix-Ingest", handler="entrix.handlers.ingest.handler")
    deploy_authorizer(make_client)

    code, out, err = run(["--aws-port", str(port), "--subject", "trader-9"], capsys)

    assert (code, err) == (0, "")
    assert out.endswith("\n") and out.count("\n") == 1
    assert verify(out.strip())["sub"] == "trader-9"
    secret = make_client("secretsmanager").list_secrets()["SecretList"]
    current = make_client("secretsmanager").get_secret_value(SecretId="Entrix-Authorizer-jwt")
    assert len(secret) == 2
    assert kid_of(out.strip()) == current["VersionId"]


def test_local_token_carries_the_configured_issuer_audience_and_lifetime(
    clean_local_aws: tuple[int, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    port, make_client = clean_local_aws
    deploy_authorizer(
        make_client,
        json.dumps({"signing_key": KEY}),
        extra_env={"JWT_ISSUER": "entrix", "JWT_AUDIENCE": "entrix-orders"},
    )

    code, out, _ = run(["--aws-port", str(port), "--expires-in", "120"], capsys)

    claims = verify(out.strip(), issuer="entrix", audience="entrix-orders")
    assert code == 0
    assert claims["sub"] == "entrix-cli"
    assert claims["exp"] - claims["iat"] == 120


def test_the_signer_keeps_the_previous_key_until_verifiers_know_the_new_one(
    clean_local_aws: tuple[int, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    port, make_client = clean_local_aws
    deploy_authorizer(make_client)
    secrets = make_client("secretsmanager")
    first = secrets.get_secret_value(SecretId="Entrix-Authorizer-jwt")["VersionId"]
    second = secrets.put_secret_value(SecretId="Entrix-Authorizer-jwt", SecretString=NEW_KEY)

    _, default, _ = run(["--aws-port", str(port)], capsys)
    _, chosen, _ = run(["--aws-port", str(port), "--kid", second["VersionId"]], capsys)
    code, _, err = run(["--aws-port", str(port), "--kid", "no-such-version"], capsys)

    # The new key is minutes old: warm authorizers may not have read it yet.
    assert kid_of(default.strip()) == first
    assert verify(default.strip())["sub"] == "entrix-cli"
    assert kid_of(chosen.strip()) == second["VersionId"]
    assert verify(chosen.strip(), key=NEW_KEY)["sub"] == "entrix-cli"
    assert code == 1
    assert "neither the current" in err


def test_audience_and_lifetime_options(
    clean_local_aws: tuple[int, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    port, make_client = clean_local_aws
    deploy_authorizer(make_client, extra_env={"MAX_TOKEN_LIFETIME_SECONDS": "600"})

    _, other_audience, _ = run(
        ["--aws-port", str(port), "--audience", "billing", "--expires-in", "600"], capsys
    )
    code, out, err = run(["--aws-port", str(port), "--expires-in", "601"], capsys)

    assert verify(other_audience.strip(), audience="billing")["aud"] == "billing"
    assert (code, out) == (1, "")
    assert "over the authorizer's maximum lifetime of 600 s" in err


def test_an_authorizer_verifying_an_identity_providers_tokens_signs_nothing(
    clean_local_aws: tuple[int, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    port, make_client = clean_local_aws
    deploy_authorizer(
        make_client,
        extra_env={
            settings.JWT_KEY_SOURCE.name: "jwks",
            settings.JWT_JWKS_URL.name: "https://idp.example.com/.well-known/jwks.json",
        },
    )

    code, out, err = run(["--aws-port", str(port)], capsys)

    assert (code, out) == (1, "")
    assert "identity provider at https://idp.example.com" in err


def test_local_system_without_an_authorizer_is_a_clear_error(
    clean_local_aws: tuple[int, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    port, _ = clean_local_aws

    code, out, err = run(["--aws-port", str(port)], capsys)

    assert (code, out) == (1, "")
    assert "no authorizer function" in err
    assert "entrix local" in err


def test_local_system_not_running_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    code, out, err = run(["--aws-port", str(closed_port)], capsys)

    assert (code, out) == (1, "")
    assert f"127.0.0.1:{closed_port}" in err
    assert "entrix local" in err


# Stack mode, against moto's CloudFormation ------------------------------------------------


def stack_template(function_name: str) -> str:
    return json.dumps(
        {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {"AuthorizerFunctionName": {"Value": function_name}},
        }
    )


@mock_aws
def test_stack_token_uses_the_deployed_authorizer_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def make_client(service: str) -> Any:
        return boto3.client(service, region_name="us-east-2")

    name = deploy_authorizer(make_client, extra_env={"JWT_ISSUER": "entrix-prod"})
    make_client("cloudformation").create_stack(
        StackName="EntrixProd", TemplateBody=stack_template(name)
    )

    code, out, err = run(
        ["--stack", "EntrixProd", "--region", "us-east-2", "--subject", "ops"], capsys
    )

    assert (code, err) == (0, "")
    assert verify(out.strip(), issuer="entrix-prod")["sub"] == "ops"


@mock_aws
def test_unknown_stack_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["--stack", "NoSuchStack", "--region", REGION], capsys)

    assert (code, out) == (1, "")
    assert "NoSuchStack" in err


def test_stack_without_the_output_is_a_clear_error() -> None:
    client = boto3.client("cloudformation", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "Entrix",
                        "CreationTime": "2026-01-01T00:00:00Z",
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": [{"OutputKey": "ApiUrl", "OutputValue": "https://x"}],
                    }
                ]
            },
            {"StackName": "Entrix"},
        )
        with pytest.raises(TokenCommandError, match="AuthorizerFunctionName"):
            stack_authorizer_function(client, "Entrix")


def test_stack_output_lookup_returns_the_function_name() -> None:
    client = boto3.client("cloudformation", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "Entrix",
                        "CreationTime": "2026-01-01T00:00:00Z",
                        "StackStatus": "UPDATE_COMPLETE",
                        "Outputs": [
                            {"OutputKey": "ApiUrl", "OutputValue": "https://x"},
                            {"OutputKey": "AuthorizerFunctionName", "OutputValue": "Entrix-Auth"},
                        ],
                    }
                ]
            },
            {"StackName": "Entrix"},
        )
        assert stack_authorizer_function(client, "Entrix") == "Entrix-Auth"


@mock_aws
def test_a_function_without_the_secret_variable_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def make_client(service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    name = deploy_authorizer(make_client)
    make_client("lambda").update_function_configuration(
        FunctionName=name, Environment={"Variables": {}}
    )
    make_client("cloudformation").create_stack(
        StackName="Broken", TemplateBody=stack_template(name)
    )

    code, out, err = run(["--stack", "Broken", "--region", REGION], capsys)

    assert (code, out) == (1, "")
    assert "JWT_SECRET_ARN" in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--expires-in", "0"], "--expires-in"),
        (["--expires-in", "-60"], "--expires-in"),
        (["--subject", ""], "--subject"),
        (["--subject", "desk#a"], "--subject"),
        (["--subject", "x" * 129], "--subject"),
    ],
)
def test_bad_arguments_fail_before_any_aws_call(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_aws(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no AWS client should be created")

    monkeypatch.setattr(boto3, "client", no_aws)

    code, out, err = run(argv, capsys)

    assert (code, out) == (1, "")
    assert named in err
