"""The REQUEST authorizer as API Gateway calls it: Allow policies, 401s and its cold start.

The token rules are tested on `verify_token` (test_tokens.py) and replayed against this handler
as known attacks (test_jwt_attacks.py); here, what the handler adds around them.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from entrix.aws import secrets
from entrix.handlers import authorizer
from entrix.tokens import issue_token

KEY = "s3cr3t-" * 10  # 70 bytes: long enough for HS512 too
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/POST/orders"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:entrix-jwt-AbCdEf"


@pytest.fixture(autouse=True)
def cold_start() -> Iterator[None]:
    """Each test's authorizer makes its secret cache on first use, from that test's setup."""
    authorizer.secret_cache.cache_clear()
    yield
    authorizer.secret_cache.cache_clear()


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The signing secret served from memory; yields the ids fetched."""
    fetched: list[str] = []

    def fetch(secret_id: str) -> str:
        fetched.append(secret_id)
        return KEY

    monkeypatch.setenv("JWT_SECRET_ARN", SECRET_ARN)
    monkeypatch.delenv("JWT_ISSUER", raising=False)
    monkeypatch.delenv("JWT_AUDIENCE", raising=False)
    monkeypatch.setattr(secrets, "fetch_secret_string", fetch)  # instead of AWS
    yield fetched


def event(headers: dict[str, Any] | None, method_arn: str = METHOD_ARN) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": method_arn,
        "resource": "/orders",
        "path": "/orders",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} if headers else None,
        "requestContext": {"stage": "prod"},
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(request: dict[str, Any]) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.handler(request, None)


def test_valid_token_gets_a_stage_wide_allow_policy(secret: list[str]) -> None:
    now = int(time.time())
    reply = authorizer.handler(event(bearer(issue_token(KEY, "trader-7", 300, now=now))), None)

    assert reply == {
        "principalId": "trader-7",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/*/*",
                }
            ],
        },
        "context": {"sub": "trader-7", "exp": now + 300},
    }
    assert secret == [SECRET_ARN]


def test_lowercase_header_name_is_accepted(secret: list[str]) -> None:
    token = issue_token(KEY, "trader-7", 300)

    reply = authorizer.handler(event({"authorization": f"bearer {token}"}), None)

    assert reply["principalId"] == "trader-7"


@pytest.mark.parametrize(
    ("method_arn", "resource"),
    [
        (
            "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/GET/orders/abc-1",
            "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/*/*",
        ),
        (
            "arn:aws-cn:execute-api:cn-north-1:123456789012:zz9/dev/DELETE/",
            "arn:aws-cn:execute-api:cn-north-1:123456789012:zz9/dev/*/*",
        ),
    ],
)
def test_policy_resource_covers_the_whole_stage(
    secret: list[str], method_arn: str, resource: str
) -> None:
    reply = authorizer.handler(event(bearer(issue_token(KEY, "s", 300)), method_arn), None)

    assert reply["policyDocument"]["Statement"][0]["Resource"] == resource


@pytest.mark.parametrize("method_arn", ["", "*", "arn:aws:execute-api:eu-west-1:1:api"])
def test_a_malformed_method_arn_is_a_fault_not_an_allow(method_arn: str) -> None:
    with pytest.raises(ValueError):
        authorizer.stage_wide_resource(method_arn)


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
)
def test_missing_or_garbage_credentials_are_unauthorized(
    secret: list[str], headers: dict[str, str] | None
) -> None:
    assert_unauthorized(event(headers))


def test_wrong_scheme_with_a_valid_token_is_unauthorized(secret: list[str]) -> None:
    token = issue_token(KEY, "s", 300)

    assert_unauthorized(event({"Authorization": f"Token {token}"}))
    assert_unauthorized(event({"Authorization": token}))


def test_the_secret_is_fetched_once_while_cached(secret: list[str]) -> None:
    for subject in ("a", "b", "c"):
        authorizer.handler(event(bearer(issue_token(KEY, subject, 300))), None)

    assert secret == [SECRET_ARN]


def test_a_secret_that_cannot_be_read_is_a_fault_not_a_401(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(secret_id: str) -> str:
        raise RuntimeError("AccessDenied")

    monkeypatch.setenv("JWT_SECRET_ARN", SECRET_ARN)
    monkeypatch.setattr(secrets, "fetch_secret_string", broken)

    with pytest.raises(RuntimeError, match="AccessDenied"):
        authorizer.handler(event(bearer(issue_token(KEY, "s", 300))), None)


@mock_aws
def test_secret_read_from_secrets_manager_json_form(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets._client.cache_clear()
    arn = boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
        Name="entrix-jwt", SecretString=json.dumps({"signing_key": KEY})
    )["ARN"]
    monkeypatch.setenv("JWT_SECRET_ARN", arn)
    monkeypatch.delenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", raising=False)

    reply = authorizer.handler(event(bearer(issue_token(KEY, "via-moto", 300))), None)

    assert reply["principalId"] == "via-moto"


def test_importing_the_authorizer_loads_no_boto3() -> None:
    """Checked in a fresh interpreter: boto3 alone would add ~150 ms to every cold start."""
    code = (
        "import sys, entrix.handlers.authorizer\n"
        "heavy = sorted(m for m in ('boto3', 'botocore', 'pydantic', 'aws_lambda_powertools')"
        " if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert result.stdout.strip() == ""


def test_a_refusal_is_logged_with_its_reason_but_never_the_token(
    secret: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    token = issue_token(KEY, "s", 60, now=time.time() - 3600)

    with caplog.at_level(logging.INFO, logger="entrix.handlers.authorizer"):
        assert_unauthorized(event(bearer(token)))

    assert "ExpiredSignatureError" in caplog.text
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text
