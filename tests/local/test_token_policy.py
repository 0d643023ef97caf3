"""The token policy against `entrix local`, as a client and an operator meet it: bounded
lifetimes, a named issuer and audience, and revocation that reaches tokens API Gateway had
already allowed."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import jwt
import pytest

from entrix import settings
from entrix.token_command import AUTHORIZER_HANDLER
from tests.support.local_process import LocalProcess, running_local

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local():
    with running_local(schedule_seconds=3600) as system:
        yield system


def status_of(local: LocalProcess, token: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{local.port}/orders?limit=1")
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def token_of(local: LocalProcess, *options: str) -> str:
    result = local.cli("token", *options)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def authorizer_variables(local: LocalProcess) -> dict[str, str]:
    lambda_client = local.client("lambda")
    (function,) = [
        f for f in lambda_client.list_functions()["Functions"] if f["Handler"] == AUTHORIZER_HANDLER
    ]
    return dict(function["Environment"]["Variables"])


def signed_with_the_real_key(local: LocalProcess, claims: dict[str, Any]) -> str:
    """A token signed with the local system's current key: only its claims can be refused."""
    secret_arn = authorizer_variables(local)[settings.JWT_SECRET_ARN.name]
    current = local.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    return jwt.encode(
        claims, current["SecretString"], algorithm="HS256", headers={"kid": current["VersionId"]}
    )


def valid_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": settings.JWT_ISSUER.text(),
        "aud": settings.JWT_AUDIENCE.text(),
        "sub": "desk-policy",
        "iat": now,
        "exp": now + 600,
        "jti": f"hand-made-{now}-{len(changes)}",
        **changes,
    }
    return {name: value for name, value in claims.items() if value is not None}


def test_a_hand_made_token_with_every_claim_is_accepted(local: LocalProcess) -> None:
    """The control case: the refusals below are for the one claim each changes."""
    assert status_of(local, signed_with_the_real_key(local, valid_claims())) == 200


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": None},
        {"aud": None},
        {"iat": None},
        {"jti": None},
        {"iss": "https://someone-else.example"},
        {"aud": "another-service"},
        {"exp": int(time.time()) + 10 * 365 * 86400},
    ],
    ids=["no-iss", "no-aud", "no-iat", "no-jti", "other-iss", "other-aud", "ten-years"],
)
def test_a_token_the_policy_refuses_is_a_401(local: LocalProcess, changes: dict) -> None:
    assert status_of(local, signed_with_the_real_key(local, valid_claims(**changes))) == 401


def test_entrix_token_keeps_within_the_maximum_lifetime(local: LocalProcess) -> None:
    maximum = settings.MAX_TOKEN_LIFETIME_SECONDS.text()
    over = local.cli("token", "--expires-in", str(int(maximum) + 1))

    assert over.returncode == 1
    assert "maximum lifetime" in over.stderr
    assert status_of(local, token_of(local, "--expires-in", maximum)) == 200
    assert status_of(local, token_of(local, "--audience", "another-service")) == 401


def test_revocation_reaches_tokens_api_gateway_had_already_allowed(local: LocalProcess) -> None:
    leaked = token_of(local, "--subject", "desk-leak")
    sibling = token_of(local, "--subject", "desk-leak")
    compromised = token_of(local, "--subject", "desk-compromised")
    for token in (leaked, sibling, compromised):
        assert status_of(local, token) == 200  # now in the gateway's authorizer cache

    # The leaked token keeps being used while the revocations run: a flush before every warm
    # authorizer has read the new list would let one of these requests cache a fresh Allow.
    stop = threading.Event()

    def keep_using() -> None:
        while not stop.is_set():
            status_of(local, leaked)
            status_of(local, compromised)
            time.sleep(0.2)

    user = threading.Thread(target=keep_using, daemon=True)
    user.start()
    try:
        by_token = local.cli("revoke", "--token", leaked)
        by_subject = local.cli("revoke", "--subject", "desk-compromised")
    finally:
        stop.set()
        user.join(timeout=120)

    assert by_token.returncode == 0, by_token.stderr
    assert by_subject.returncode == 0, by_subject.stderr
    report = json.loads(by_subject.stdout)
    assert report["deny_list_entries"] == 2
    assert report["authorizer_caches_flushed"]
    # The command returns once the revocation holds: no waiting here.
    assert status_of(local, leaked) == 401
    assert status_of(local, compromised) == 401
    assert status_of(local, sibling) == 200  # one token revoked, not its subject
    time.sleep(1.1)  # iat has whole seconds: a new token must be issued after the revocation
    assert status_of(local, token_of(local, "--subject", "desk-compromised")) == 200


def test_revoke_needs_to_know_what(local: LocalProcess) -> None:
    result = local.cli("revoke")

    assert result.returncode == 2
    assert "one of the arguments --token --jti --subject is required" in result.stderr
