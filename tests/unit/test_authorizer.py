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
import jwt
import pytest
from moto import mock_aws

from entrix import settings
from entrix.aws import secrets
from entrix.aws.secrets import CURRENT, PREVIOUS, SecretVersion
from entrix.handlers import authorizer
from entrix.revocations import DenyList, DenyListError
from entrix.tokens import issue_token

KEY = "s3cr3t-" * 10  # 70 bytes: long enough for HS512 too
NEW_KEY = "n3w-k3y-" * 10
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/POST/orders"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:entrix-jwt-AbCdEf"
DENY_LIST_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:entrix-deny-GhIjKl"
KID = "version-1"
ISSUER = settings.JWT_ISSUER.text()
AUDIENCE = settings.JWT_AUDIENCE.text()


@pytest.fixture(autouse=True)
def cold_start() -> Iterator[None]:
    """Each test's authorizer makes its caches on first use, from that test's setup."""
    authorizer.reset()
    yield
    authorizer.reset()


class SecretStore:
    """Secrets by id and staging label, served from memory; records each fetch."""

    def __init__(self) -> None:
        self.versions: dict[str, dict[str, SecretVersion]] = {
            SECRET_ARN: {CURRENT: SecretVersion(KID, KEY, 0.0)},
            DENY_LIST_ARN: {CURRENT: SecretVersion("deny-1", DenyList().text(), 0.0)},
        }
        self.fetched: list[tuple[str, str]] = []

    def fetch(self, secret_id: str, stage: str) -> SecretVersion | None:
        self.fetched.append((secret_id, stage))
        return self.versions[secret_id].get(stage)

    def rotate(self, kid: str, key: str) -> None:
        stages = self.versions[SECRET_ARN]
        stages[PREVIOUS] = stages[CURRENT]
        stages[CURRENT] = SecretVersion(kid, key, 0.0)

    def deny(self, deny_list: DenyList) -> None:
        self.versions[DENY_LIST_ARN][CURRENT] = SecretVersion("deny-2", deny_list.text(), 0.0)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> SecretStore:
    """The signing key and the deny list served from memory instead of AWS."""
    served = SecretStore()
    monkeypatch.setenv("JWT_SECRET_ARN", SECRET_ARN)
    monkeypatch.setenv("JWT_REVOCATIONS_SECRET_ARN", DENY_LIST_ARN)
    for name in ("JWT_ISSUER", "JWT_AUDIENCE", "MAX_TOKEN_LIFETIME_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(secrets, "fetch_secret_version", served.fetch)
    return served


def token(subject: str = "trader-7", expires_in: int = 300, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "kid": KID,
        "subject": subject,
        "expires_in": expires_in,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        **overrides,
    }
    return issue_token(arguments.pop("key", KEY), **arguments)


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


def test_valid_token_gets_a_stage_wide_allow_policy(store: SecretStore) -> None:
    now = int(time.time())
    signed = token(now=now)
    jti = jwt.decode(signed, options={"verify_signature": False})["jti"]

    reply = authorizer.handler(event(bearer(signed)), None)

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
        "context": {"sub": "trader-7", "exp": now + 300, "jti": jti},
    }
    # A cold request with a current token reads the current key and the deny list, nothing more.
    assert store.fetched == [(SECRET_ARN, CURRENT), (DENY_LIST_ARN, CURRENT)]


def test_lowercase_header_name_is_accepted(store: SecretStore) -> None:
    reply = authorizer.handler(event({"authorization": f"bearer {token()}"}), None)

    assert reply["principalId"] == "trader-7"


def test_a_token_of_the_previous_key_is_accepted_and_one_of_a_retired_key_refused(
    store: SecretStore,
) -> None:
    old = token(subject="old-key")
    store.rotate("version-2", NEW_KEY)
    new = token(subject="new-key", kid="version-2", key=NEW_KEY)

    assert authorizer.handler(event(bearer(old)), None)["principalId"] == "old-key"
    assert authorizer.handler(event(bearer(new)), None)["principalId"] == "new-key"

    store.rotate("version-3", "th1rd-k3y-" * 8)  # version-1 leaves AWSPREVIOUS: retired
    authorizer.reset()
    assert_unauthorized(event(bearer(old)))
    assert authorizer.handler(event(bearer(new)), None)["principalId"] == "new-key"


def test_a_warm_authorizer_learns_a_new_current_key_from_the_first_token_naming_it(
    store: SecretStore,
) -> None:
    authorizer.handler(event(bearer(token())), None)  # warm, with version-1 cached
    store.rotate("version-2", NEW_KEY)
    store.fetched.clear()

    new = token(kid="version-2", key=NEW_KEY)
    assert authorizer.handler(event(bearer(new)), None)["principalId"] == "trader-7"
    # The cached current and previous did not match: both were read again, once.
    assert (SECRET_ARN, CURRENT) in store.fetched
    store.fetched.clear()
    authorizer.handler(event(bearer(new)), None)
    assert store.fetched == []


def test_forged_kids_force_at_most_one_refresh_per_interval(store: SecretStore) -> None:
    authorizer.handler(event(bearer(token())), None)
    store.fetched.clear()

    for attempt in range(20):
        assert_unauthorized(event(bearer(token(kid=f"forged-{attempt}"))))

    key_reads = [fetch for fetch in store.fetched if fetch[0] == SECRET_ARN]
    assert len(key_reads) <= 3  # one forced refresh: current, then previous (absent)


def test_a_revoked_token_is_refused_and_other_tokens_of_its_subject_are_not(
    store: SecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOCATIONS_CACHE_TTL_SECONDS", "0")
    leaked, other = token(), token()
    leaked_claims = jwt.decode(leaked, options={"verify_signature": False})
    assert authorizer.handler(event(bearer(leaked)), None)["principalId"] == "trader-7"

    store.deny(DenyList().with_token(leaked_claims["jti"], leaked_claims["exp"]))

    assert_unauthorized(event(bearer(leaked)))
    assert authorizer.handler(event(bearer(other)), None)["principalId"] == "trader-7"


def test_revoking_a_subject_refuses_its_earlier_tokens_but_not_later_ones(
    store: SecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVOCATIONS_CACHE_TTL_SECONDS", "0")
    now = int(time.time())
    earlier = token(now=now - 10)
    later = token(now=now + 1)
    store.deny(DenyList().with_subject("trader-7", now - 5))

    assert_unauthorized(event(bearer(earlier)))
    assert authorizer.handler(event(bearer(later)), None)["principalId"] == "trader-7"
    assert authorizer.handler(event(bearer(token("desk-b", now=now - 10))), None)


def test_a_warm_authorizer_uses_its_deny_list_until_the_cache_ttl(store: SecretStore) -> None:
    leaked = token()
    claims = jwt.decode(leaked, options={"verify_signature": False})
    authorizer.handler(event(bearer(leaked)), None)

    store.deny(DenyList().with_token(claims["jti"], claims["exp"]))

    # REVOCATIONS_CACHE_TTL_SECONDS (30 s by default) has not passed: this is the delay the
    # runbook states, not a hole.
    assert authorizer.handler(event(bearer(leaked)), None)["principalId"] == "trader-7"


def test_an_invalid_token_costs_no_deny_list_read(store: SecretStore) -> None:
    assert_unauthorized(event(bearer(token(key="wr0ng-k3y-" * 8))))

    assert (DENY_LIST_ARN, CURRENT) not in store.fetched


def test_a_deny_list_that_cannot_be_read_is_a_fault_not_an_allow(
    store: SecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.versions[DENY_LIST_ARN][CURRENT] = SecretVersion("deny-x", "not json", 0.0)

    with pytest.raises(DenyListError):
        authorizer.handler(event(bearer(token())), None)


def test_issuer_audience_and_lifetime_come_from_the_environment(
    store: SecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_ISSUER", "https://idp.desk.example")
    monkeypatch.setenv("JWT_AUDIENCE", "desk-orders")
    monkeypatch.setenv("MAX_TOKEN_LIFETIME_SECONDS", "600")

    assert_unauthorized(event(bearer(token())))  # the default issuer and audience
    right = token(issuer="https://idp.desk.example", audience="desk-orders", expires_in=600)
    assert authorizer.handler(event(bearer(right)), None)["principalId"] == "trader-7"
    authorizer.reset()
    too_long = token(issuer="https://idp.desk.example", audience="desk-orders", expires_in=601)
    assert_unauthorized(event(bearer(too_long)))


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
    store: SecretStore, method_arn: str, resource: str
) -> None:
    reply = authorizer.handler(event(bearer(token()), method_arn), None)

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
    store: SecretStore, headers: dict[str, str] | None
) -> None:
    assert_unauthorized(event(headers))


def test_wrong_scheme_with_a_valid_token_is_unauthorized(store: SecretStore) -> None:
    signed = token()

    assert_unauthorized(event({"Authorization": f"Token {signed}"}))
    assert_unauthorized(event({"Authorization": signed}))


def test_the_secrets_are_fetched_once_while_cached(store: SecretStore) -> None:
    for subject in ("a", "b", "c"):
        authorizer.handler(event(bearer(token(subject))), None)

    assert store.fetched == [(SECRET_ARN, CURRENT), (DENY_LIST_ARN, CURRENT)]


def test_a_secret_that_cannot_be_read_is_a_fault_not_a_401(
    store: SecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(secret_id: str, stage: str) -> SecretVersion:
        raise RuntimeError("AccessDenied")

    monkeypatch.setattr(secrets, "fetch_secret_version", broken)

    with pytest.raises(RuntimeError, match="AccessDenied"):
        authorizer.handler(event(bearer(token())), None)


@mock_aws
def test_secrets_read_from_secrets_manager_json_form(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets._client.cache_clear()
    client = boto3.client("secretsmanager", region_name="eu-west-1")
    created = client.create_secret(Name="entrix-jwt", SecretString=json.dumps({"signing_key": KEY}))
    deny = client.create_secret(Name="entrix-deny", SecretString=DenyList().text())
    monkeypatch.setenv("JWT_SECRET_ARN", created["ARN"])
    monkeypatch.setenv("JWT_REVOCATIONS_SECRET_ARN", deny["ARN"])
    monkeypatch.delenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", raising=False)

    signed = token("via-moto", kid=created["VersionId"])
    reply = authorizer.handler(event(bearer(signed)), None)

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
    store: SecretStore, caplog: pytest.LogCaptureFixture
) -> None:
    expired = token(expires_in=60, now=time.time() - 3600)

    with caplog.at_level(logging.INFO, logger="entrix.handlers.authorizer"):
        assert_unauthorized(event(bearer(expired)))

    assert "ExpiredSignatureError" in caplog.text
    assert expired not in caplog.text
    assert expired.split(".")[2] not in caplog.text
