"""`entrix token` against an authorizer in jwks mode: it signs only as the local identity
provider, whose JWKS URL is on the loopback interface where the function allows that."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from entrix import settings
from entrix.local.identity_provider import ISSUER_SECRET_NAME, SigningKey
from entrix.token_command import TokenCommandError, sign_for_function

LOOPBACK_JWKS = "http://127.0.0.1:8123/.well-known/jwks.json"


class FakeClients:
    """The Lambda and Secrets Manager calls `sign_for_function` makes, from memory."""

    def __init__(self, variables: dict[str, str], key: SigningKey) -> None:
        self.variables = variables
        self.key = key

    def __call__(self, service: str, region: str | None) -> Any:
        return self

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        return {"Environment": {"Variables": self.variables}}

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        assert SecretId == ISSUER_SECRET_NAME
        return {"SecretString": self.key.secret_string()}


def jwks_function(url: str, allow_loopback: str) -> dict[str, str]:
    return {
        settings.JWT_KEY_SOURCE.name: "jwks",
        settings.JWT_JWKS_URL.name: url,
        settings.JWT_JWKS_ALLOW_LOOPBACK_HTTP.name: allow_loopback,
    }


def test_signs_as_the_local_identity_provider() -> None:
    key = SigningKey()
    token = sign_for_function(
        FakeClients(jwks_function(LOOPBACK_JWKS, "true"), key), None, "auth", "desk-a", 600
    )
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT", "kid": key.kid}
    claims = jwt.decode(
        token,
        key.private_key.public_key(),
        ["ES256"],
        audience=settings.JWT_AUDIENCE.text(),
        issuer=settings.JWT_ISSUER.text(),
    )
    assert claims["sub"] == "desk-a"


@pytest.mark.parametrize(
    ("url", "allow_loopback"),
    [
        ("https://idp.entrix.example/.well-known/jwks.json", "false"),
        ("https://idp.entrix.example/.well-known/jwks.json", "true"),
        (LOOPBACK_JWKS, "false"),
        ("http://idp.entrix.example/.well-known/jwks.json", "true"),
    ],
)
def test_refuses_to_sign_for_a_real_identity_provider(url: str, allow_loopback: str) -> None:
    with pytest.raises(TokenCommandError, match="get a token from it"):
        sign_for_function(
            FakeClients(jwks_function(url, allow_loopback), SigningKey()),
            None,
            "auth",
            "desk-a",
            600,
        )
