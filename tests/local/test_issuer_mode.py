"""The local system in jwks mode: its authorizer verifies the local identity provider's tokens.

The template is the project's, synthesized with `entrix:jwt_key_source=jwks` as
ENTRIX_LOCAL_CONTEXT gives it to `entrix local`; the system runs in this process (so a test can
rotate the provider's key), `entrix token` in its own, as a user runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from entrix import settings
from entrix.issuer_keys import UNKNOWN_KID_REFRESH_SECONDS
from entrix.local import harness
from entrix.local.runtime import LocalSystem
from entrix.local.synth import LOCAL_CONTEXT_VARIABLE, ensure_template, project_root
from entrix.token_command import AUTHORIZER_HANDLER

pytestmark = pytest.mark.e2e

JWKS_CONTEXT = {
    "entrix:jwt_key_source": "jwks",
    "entrix:jwt_jwks_url": "https://idp.entrix.example/.well-known/jwks.json",
}


@pytest.fixture(scope="module")
def system() -> Iterator[LocalSystem]:
    template, _ = ensure_template(project_root(), JWKS_CONTEXT)
    with harness.in_process(template) as running:
        yield running


@pytest.fixture(scope="module")
def authorizer_environment(system: LocalSystem) -> dict[str, str]:
    name = harness.function_with_handler(system, AUTHORIZER_HANDLER)
    return harness.deployment_of(system).functions[name].environment


def entrix_token(system: LocalSystem, *args: str) -> str:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "entrix.cli",
            "token",
            "--aws-port",
            str(system.options.aws_port),
            *args,
        ],
        cwd=project_root(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def status_of(system: LocalSystem, token: str) -> int:
    request = urllib.request.Request(
        f"{system.api_url}/orders", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code


def claims(environment: dict[str, str], **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": environment[settings.JWT_ISSUER.name],
        "aud": environment[settings.JWT_AUDIENCE.name],
        "sub": "desk-a",
        "iat": now,
        "exp": now + 600,
        "jti": f"jti-{time.monotonic_ns()}",
        **overrides,
    }


def test_the_authorizer_is_pointed_at_the_local_provider(
    system: LocalSystem, authorizer_environment: dict[str, str]
) -> None:
    assert system.identity_provider is not None
    assert authorizer_environment[settings.JWT_KEY_SOURCE.name] == "jwks"
    assert authorizer_environment[settings.JWT_JWKS_URL.name] == system.identity_provider.jwks_url
    assert authorizer_environment[settings.JWT_JWKS_ALLOW_LOOPBACK_HTTP.name] == "true"
    assert settings.JWT_SECRET_ARN.name not in authorizer_environment


def test_a_token_of_entrix_token_is_accepted(system: LocalSystem) -> None:
    token = entrix_token(system)
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert status_of(system, token) == 200


@pytest.mark.parametrize(
    "change",
    [
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000},
        {"exp": int(time.time()) + 13 * 3600},  # over the 12 h maximum lifetime
        {"iss": "https://other-issuer.example"},
        {"aud": "another-service"},
    ],
    ids=["expired", "over-max-lifetime", "wrong-iss", "wrong-aud"],
)
def test_tokens_the_rules_refuse_are_401(
    system: LocalSystem, authorizer_environment: dict[str, str], change: dict[str, Any]
) -> None:
    assert system.identity_provider is not None
    key = system.identity_provider.current
    token = jwt.encode(
        claims(authorizer_environment, **change), key.private_key, "ES256", {"kid": key.kid}
    )
    assert status_of(system, token) == 401


def test_an_hs256_token_is_401(system: LocalSystem, authorizer_environment: dict[str, str]) -> None:
    assert system.identity_provider is not None
    token = jwt.encode(
        claims(authorizer_environment),
        "a-shared-secret-of-at-least-32-bytes!",
        "HS256",
        {"kid": system.identity_provider.current.kid},
    )
    assert status_of(system, token) == 401


@pytest.mark.parametrize("kid", ["provider's", "unknown"])
def test_a_token_of_another_key_pair_is_401(
    system: LocalSystem, authorizer_environment: dict[str, str], kid: str
) -> None:
    assert system.identity_provider is not None
    other = ec.generate_private_key(ec.SECP256R1())
    named = system.identity_provider.current.kid if kid == "provider's" else "not-a-kid"
    token = jwt.encode(claims(authorizer_environment), other, "ES256", {"kid": named})
    assert status_of(system, token) == 401


def test_a_rotated_key_is_picked_up_by_its_first_token(system: LocalSystem) -> None:
    assert system.identity_provider is not None
    assert status_of(system, entrix_token(system)) == 200  # the warm authorizer holds the set
    # A forged kid above may have just spent the authorizer's refresh for unknown kids.
    time.sleep(UNKNOWN_KID_REFRESH_SECONDS)
    fetches = system.identity_provider.fetches
    new_key = system.rotate_issuer_key()

    token = entrix_token(system)

    assert jwt.get_unverified_header(token)["kid"] == new_key.kid
    assert status_of(system, token) == 200
    assert system.identity_provider.fetches == fetches + 1


def test_entrix_local_runs_jwks_mode_from_entrix_local_context(
    system: LocalSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a user runs it: `ENTRIX_LOCAL_CONTEXT=... entrix local`, then `entrix token`."""
    monkeypatch.setenv(LOCAL_CONTEXT_VARIABLE, json.dumps(JWKS_CONTEXT))
    with harness.in_subprocess(schedule_seconds=0) as process:
        assert "identity provider" in process.output
        token = process.token()
        assert jwt.get_unverified_header(token)["alg"] == "ES256"
        request = urllib.request.Request(
            f"{process.api_url}/orders", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert reply.status == 200
