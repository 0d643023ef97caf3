"""Known attacks on JWT verifiers, played against the authorizer.

Tokens are forged by hand (json + hmac) where PyJWT would refuse to produce them, so each case
is exactly the bytes an attacker would send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from entrix import settings
from entrix.aws import secrets
from entrix.aws.secrets import SecretVersion
from entrix.handlers import authorizer
from entrix.revocations import DenyList
from entrix.tokens import MAX_TOKEN_LENGTH, TokenError, TokenRules, issue_token, verify_token

KEY = "the-real-signing-key-" * 3
KID = "real-key-version"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:1:secret:jwt"
DENY_LIST_ARN = "arn:aws:secretsmanager:eu-west-1:1:secret:deny"
ISSUER = settings.JWT_ISSUER.text()
AUDIENCE = settings.JWT_AUDIENCE.text()
RULES = TokenRules(ISSUER, AUDIENCE, max_lifetime_seconds=3600)
ATTACKER_KEY = "attacker-controlled-key-" * 3
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:api1/prod/POST/orders"
PUBLIC_KEY_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n"
    "q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n"
    "-----END PUBLIC KEY-----\n"
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    return b64(value if isinstance(value, bytes) else json.dumps(value).encode())


def claims(**extra: Any) -> dict[str, Any]:
    """A complete claim set the authorizer accepts, with `extra` on top."""
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "attacker",
        "iat": now,
        "exp": now + 600,
        "jti": "forged-1",
        **extra,
    }


def issue(subject: str = "trader", **overrides: Any) -> str:
    arguments: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, **overrides}
    return issue_token(KEY, kid=KID, subject=subject, expires_in=600, **arguments)


def forge(header: Any, payload: Any, key: str | bytes | None, digest: Any = hashlib.sha256) -> str:
    """header.payload.signature, HMAC-signed with `key` (no signature when key is None). A
    header given as a dict names the real key's kid unless it names one itself."""
    if isinstance(header, dict) and "kid" not in header:
        header = {**header, "kid": KID}
    signing_input = f"{segment(header)}.{segment(payload)}"
    if key is None:
        return f"{signing_input}."
    raw_key = key.encode() if isinstance(key, str) else key
    mac = hmac.new(raw_key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(mac)}"


def request(authorization: str | None = None, **headers: str) -> dict[str, Any]:
    all_headers = dict(headers)
    if authorization is not None:
        all_headers["Authorization"] = authorization
    return {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": all_headers}


@pytest.fixture(autouse=True)
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    served = {
        SECRET_ARN: SecretVersion(KID, KEY, 0.0),
        DENY_LIST_ARN: SecretVersion("deny", DenyList().text(), 0.0),
    }
    monkeypatch.setenv("JWT_SECRET_ARN", SECRET_ARN)
    monkeypatch.setenv("JWT_REVOCATIONS_SECRET_ARN", DENY_LIST_ARN)
    for name in ("JWT_ISSUER", "JWT_AUDIENCE", "MAX_TOKEN_LIFETIME_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(
        secrets,
        "fetch_secret_version",
        lambda secret_id, stage: served[secret_id] if stage == "AWSCURRENT" else None,
    )
    authorizer.reset()
    yield
    authorizer.reset()


def refused(token_or_request: str | dict[str, Any]) -> bool:
    event = (
        request(f"Bearer {token_or_request}")
        if isinstance(token_or_request, str)
        else token_or_request
    )
    try:
        authorizer.handler(event, None)
    except Exception as error:
        assert str(error) == "Unauthorized", f"refused as a fault, not a 401: {error!r}"
        return True
    return False


def test_the_forging_helper_makes_tokens_the_authorizer_accepts() -> None:
    """The control case: without it every 'refused' below could be refusing for a wrong reason."""
    assert not refused(forge({"alg": "HS256", "typ": "JWT"}, claims(), KEY))


# Algorithm confusion ------------------------------------------------------------------------


def test_hs256_signed_with_a_public_key_pem_is_refused() -> None:
    """The classic RS/ES -> HS confusion: the attacker HMACs with the (public) verification key."""
    assert refused(forge({"alg": "HS256"}, claims(), PUBLIC_KEY_PEM))


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "EdDSA", "HS384", "HS512"])
def test_other_algorithms_are_refused_even_when_signed_with_the_real_key(alg: str) -> None:
    digest = {"HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(alg, hashlib.sha256)
    assert refused(forge({"alg": alg}, claims(), KEY, digest))


@pytest.mark.parametrize(
    "alg", ["none", "None", "NONE", "nOnE", "hs256", "HS256 ", " HS256", "HS256\u0000", ""]
)
def test_alg_spellings_are_refused_even_with_a_valid_hs256_signature(alg: str) -> None:
    assert refused(forge({"alg": alg}, claims(), KEY))
    assert refused(forge({"alg": alg}, claims(), None))


@pytest.mark.parametrize("alg", [["HS256"], {"HS256": True}, None, 256])
def test_non_string_alg_is_refused(alg: Any) -> None:
    assert refused(forge({"alg": alg}, claims(), KEY))


def test_a_header_without_alg_is_refused() -> None:
    assert refused(forge({"typ": "JWT"}, claims(), KEY))


# Headers that point at other keys ----------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "HS256", "jku": "https://attacker.example/jwks.json"},
        {"alg": "HS256", "x5u": "https://attacker.example/cert.pem"},
        {"alg": "HS256", "kid": "attacker-key"},
        {"alg": "HS256", "kid": "../../../../dev/null"},
        {"alg": "HS256", "kid": "' UNION SELECT 'attacker-controlled-key"},
        {
            "alg": "HS256",
            "jwk": {"kty": "oct", "k": b64(ATTACKER_KEY.encode()), "alg": "HS256"},
        },
    ],
)
def test_key_pointing_headers_do_not_make_the_attacker_key_trusted(header: dict) -> None:
    assert refused(forge(header, claims(), ATTACKER_KEY))


def test_kid_pointing_at_an_empty_file_cannot_select_an_empty_key() -> None:
    assert refused(forge({"alg": "HS256", "kid": "/dev/null"}, claims(), b""))


def test_key_pointing_headers_are_ignored_when_signed_with_the_real_key() -> None:
    """They are not followed at all: the real key still verifies whatever they say."""
    header = {"alg": "HS256", "kid": KID, "jku": "https://attacker.example/jwks.json"}
    assert not refused(forge(header, claims(), KEY))


# Critical extensions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "HS256", "crit": ["exp"]},
        {"alg": "HS256", "crit": ["urn:attacker:bypass"], "urn:attacker:bypass": True},
        {"alg": "HS256", "crit": []},
        {"alg": "HS256", "crit": "b64"},
        {"alg": "HS256", "crit": ["b64"], "b64": False},
        {"alg": "HS256", "b64": False},
    ],
)
def test_unknown_or_malformed_critical_extensions_are_refused(header: dict) -> None:
    assert refused(forge(header, claims(), KEY))


# Malformed structure -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [b"not json", b"[]", b'"HS256"', b"null", b"\xff\xfe", b'{"alg": "HS256"'],
)
def test_a_header_that_is_not_a_json_object_is_refused(header: bytes) -> None:
    assert refused(forge(header, claims(), KEY))


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'"sub"', b"123", b"\xff"])
def test_a_payload_that_is_not_a_json_object_is_refused(payload: bytes) -> None:
    assert refused(forge({"alg": "HS256"}, payload, KEY))


def test_empty_signature_is_refused() -> None:
    assert refused(forge({"alg": "HS256"}, claims(), None))
    assert refused(forge({"alg": "none"}, claims(), None))


def test_padding_and_standard_alphabet_variants_are_refused() -> None:
    token = issue()
    header, payload, signature = token.split(".")

    assert refused(f"{header}.{payload}.{signature}=")
    assert refused(f"{header}==.{payload}.{signature}")
    assert refused(token.replace("-", "+").replace("_", "/") + ("" if "-" in token else "+"))


def test_spare_bits_in_the_signature_do_not_give_a_second_valid_spelling() -> None:
    """PyJWT refuses non-canonical base64url, so each token has one spelling (one cache entry)."""
    token = issue()
    signature = token.rpartition(".")[2]
    # 32 bytes -> 43 characters: the last one carries 2 unused bits. Flip them.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    twins = [alphabet[(last & ~3) | spare] for spare in range(4) if (last & ~3) | spare != last]
    assert len(signature) == 43

    for twin in twins:
        variant = token[:-1] + twin
        assert base64.urlsafe_b64decode(signature + "=") == base64.urlsafe_b64decode(
            variant.rpartition(".")[2] + "="
        )
        assert refused(variant)


@pytest.mark.parametrize(
    "token",
    [
        '{"protected":"eyJhbGciOiJIUzI1NiJ9","payload":"e30","signature":"x"}',
        "a.b.c.d.e",
        "a..c",
        ".b.c",
    ],
)
def test_other_serializations_are_refused(token: str) -> None:
    assert refused(token)


# Oversized tokens ----------------------------------------------------------------------------


def padded_token(padding: int) -> str:
    """A valid token carrying `padding` characters in a claim of its own (a subject is short)."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "trader-1", "iat": now, "exp": now + 600}
    claims |= {"jti": "padded", "pad": "x" * padding}
    return jwt.encode(claims, KEY, algorithm="HS256", headers={"kid": KID})


def test_oversized_tokens_are_refused_before_any_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    huge = padded_token(MAX_TOKEN_LENGTH)

    def must_not_decode(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an oversized token reached the JWT decoder")

    monkeypatch.setattr("entrix.tokens._jwt.decode", must_not_decode)

    assert refused(huge)
    assert refused("A" * 1_000_000 + ".b.c")
    with pytest.raises(TokenError, match="longer than"):
        verify_token(huge, lambda kid: KEY, RULES)


def test_a_token_just_under_the_limit_is_still_accepted() -> None:
    token = padded_token(MAX_TOKEN_LENGTH // 2)
    assert MAX_TOKEN_LENGTH // 2 < len(token) < MAX_TOKEN_LENGTH
    assert not refused(token)


# Header injection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "Bearer {t}\r\nX-Role: admin",
        "Bearer {t}\n",
        "Bearer {t} ",
        "Bearer  {t}",
        "Bearer\t{t}",
        " Bearer {t}",
        "Bearer {t}, Bearer {t}",
        "Bearer {t} Bearer {t}",
        "Bearer {t};admin=true",
        "Bearer Bearer {t}",
        "Bearer {t}\u0000",
        "Bearer \u200b{t}",
    ],
)
def test_injected_or_padded_authorization_values_are_refused(template: str) -> None:
    token = issue()
    assert refused(request(template.format(t=token)))


def test_two_different_authorization_headers_are_refused() -> None:
    good = issue()
    forged = forge({"alg": "HS256"}, claims(sub="admin"), ATTACKER_KEY)
    event = request(f"Bearer {good}")
    event["multiValueHeaders"] = {"Authorization": [f"Bearer {forged}", f"Bearer {good}"]}

    assert refused(event)


def test_a_lookalike_header_name_is_not_the_authorization_header() -> None:
    token = issue()
    assert refused({"methodArn": METHOD_ARN, "headers": {"Authorizati\u043en": f"Bearer {token}"}})
    assert refused({"methodArn": METHOD_ARN, "headers": {"X-Authorization": f"Bearer {token}"}})


# Tokens for someone else -------------------------------------------------------------------


def test_tokens_for_another_issuer_or_audience_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JWT_ISSUER", "entrix")
    monkeypatch.setenv("JWT_AUDIENCE", "entrix-orders")

    assert not refused(issue("s", issuer="entrix", audience="entrix-orders"))
    assert refused(issue("s", issuer="entrix", audience="entrix-billing"))
    assert refused(issue("s", issuer="entrix-staging", audience="entrix-orders"))
    assert refused(forge({"alg": "HS256"}, claims(iss="entrix", aud=["other"]), KEY))
    assert refused(forge({"alg": "HS256"}, claims(iss=["entrix"], aud="entrix-orders"), KEY))
    assert not refused(
        forge({"alg": "HS256"}, claims(iss="entrix", aud=["other", "entrix-orders"]), KEY)
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"exp": "never"},
        {"exp": None},
        {"nbf": "now"},
        {"iat": "yesterday"},
        {"iat": None},
        {"sub": 42},
        {"sub": ["admin"]},
        {"jti": None},
        {"jti": 7},
    ],
)
def test_claims_of_the_wrong_type_are_refused(payload: dict) -> None:
    assert not refused(forge({"alg": "HS256"}, claims(), KEY))
    assert refused(forge({"alg": "HS256"}, claims(**payload), KEY))


def test_deeply_nested_json_within_the_size_limit_is_refused_as_a_401() -> None:
    """3.11's json gives up on this nesting (RecursionError) and 3.13's parses it: both refuse it.

    Signed with the real key and otherwise valid, so nothing but the nesting is refused.
    """
    nested = b"[" * 2500 + b"]" * 2500
    payload = json.dumps(claims()).encode()

    assert refused(
        forge(
            b'{"alg": "HS256", "kid": "' + KID.encode() + b'", "x": ' + nested + b"}", claims(), KEY
        )
    )
    assert refused(forge(nested, claims(), KEY))
    assert refused(forge({"alg": "HS256"}, payload[:-1] + b', "x": ' + nested + b"}", KEY))
