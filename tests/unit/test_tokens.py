"""The token rules: what verify_token accepts and refuses, and how bearer_token reads headers."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest

from entrix.tokens import (
    LEEWAY_SECONDS,
    MAX_JSON_DEPTH,
    SigningKeyError,
    TokenError,
    bearer_token,
    issue_token,
    signing_key_from_secret,
    verify_token,
)

KEY = "k" * 64
OTHER_KEY = "o" * 64


def test_issued_token_verifies_with_its_claims() -> None:
    token = issue_token(KEY, "trader-1", 600, issuer="entrix", audience="orders-api")

    claims = verify_token(token, KEY, issuer="entrix", audience="orders-api")

    assert claims["sub"] == "trader-1"
    assert claims["iss"] == "entrix"
    assert claims["aud"] == "orders-api"
    assert claims["exp"] - claims["iat"] == 600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_expired_token_is_refused() -> None:
    token = issue_token(KEY, "trader-1", 60, now=time.time() - 60 - LEEWAY_SECONDS - 5)

    with pytest.raises(TokenError, match="Expired"):
        verify_token(token, KEY)


def test_expiry_within_the_leeway_is_tolerated() -> None:
    token = issue_token(KEY, "trader-1", 60, now=time.time() - 60 - LEEWAY_SECONDS + 10)

    assert verify_token(token, KEY)["sub"] == "trader-1"


def test_token_not_yet_valid_is_refused() -> None:
    token = jwt.encode(
        {"sub": "s", "nbf": int(time.time()) + 300, "exp": int(time.time()) + 900}, KEY, "HS256"
    )

    with pytest.raises(TokenError, match="nbf"):
        verify_token(token, KEY)


def test_token_issued_in_the_future_beyond_the_leeway_is_refused() -> None:
    token = issue_token(KEY, "trader-1", 600, now=time.time() + LEEWAY_SECONDS + 60)

    with pytest.raises(TokenError, match="not yet valid"):
        verify_token(token, KEY)


def test_small_clock_skew_on_nbf_and_iat_is_tolerated() -> None:
    token = issue_token(KEY, "trader-1", 600, now=time.time() + LEEWAY_SECONDS - 10)

    assert verify_token(token, KEY)["sub"] == "trader-1"


def test_token_without_exp_is_refused() -> None:
    token = jwt.encode({"sub": "s", "iat": int(time.time())}, KEY, "HS256")

    with pytest.raises(TokenError, match="exp"):
        verify_token(token, KEY)


@pytest.mark.parametrize("sub", [None, ""])
def test_token_without_a_subject_is_refused(sub: str | None) -> None:
    claims = {"exp": int(time.time()) + 600}
    if sub is not None:
        claims["sub"] = sub  # type: ignore[assignment]
    token = jwt.encode(claims, KEY, "HS256")

    with pytest.raises(TokenError, match="sub"):
        verify_token(token, KEY)


def test_token_signed_with_another_key_is_refused() -> None:
    token = issue_token(OTHER_KEY, "trader-1", 600)

    with pytest.raises(TokenError, match="Signature"):
        verify_token(token, KEY)


def test_hs512_with_the_right_key_is_refused() -> None:
    token = jwt.encode({"sub": "s", "exp": int(time.time()) + 600}, KEY, "HS512")

    with pytest.raises(TokenError, match="InvalidAlgorithm"):
        verify_token(token, KEY)


def test_alg_none_is_refused() -> None:
    token = jwt.encode({"sub": "s", "exp": int(time.time()) + 600}, None, "none")

    with pytest.raises(TokenError):
        verify_token(token, KEY)
    # Even with a signature segment glued on, "none" is not an accepted algorithm.
    with pytest.raises(TokenError, match="InvalidAlgorithm"):
        verify_token(token + "c2ln", KEY)


def test_tampered_payload_is_refused() -> None:
    header, _, signature = issue_token(KEY, "trader-1", 600).split(".")
    forged = jwt.utils.base64url_encode(
        json.dumps({"sub": "admin", "exp": int(time.time()) + 600}).encode()
    ).decode()

    with pytest.raises(TokenError, match="Signature"):
        verify_token(f"{header}.{forged}.{signature}", KEY)


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "a.b", "a.b.c.d", "....", "not a token at all", "eyJ.eyJ.", "a b.c.d", "ä.b.c"],
)
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(TokenError):
        verify_token(garbage, KEY)


def test_issuer_and_audience_are_checked_when_configured() -> None:
    right = issue_token(KEY, "s", 600, issuer="entrix", audience="orders-api")
    wrong_issuer = issue_token(KEY, "s", 600, issuer="someone-else", audience="orders-api")
    wrong_audience = issue_token(KEY, "s", 600, issuer="entrix", audience="billing-api")
    neither = issue_token(KEY, "s", 600)

    assert verify_token(right, KEY, issuer="entrix", audience="orders-api")["sub"] == "s"
    with pytest.raises(TokenError, match="Issuer"):
        verify_token(wrong_issuer, KEY, issuer="entrix", audience="orders-api")
    with pytest.raises(TokenError, match="Audience"):
        verify_token(wrong_audience, KEY, issuer="entrix", audience="orders-api")
    with pytest.raises(TokenError, match="iss"):
        verify_token(neither, KEY, issuer="entrix")
    with pytest.raises(TokenError, match="aud"):
        verify_token(neither, KEY, audience="orders-api")


def test_a_token_naming_an_audience_is_refused_when_none_is_configured() -> None:
    token = issue_token(KEY, "s", 600, audience="orders-api")

    with pytest.raises(TokenError, match="Audience"):
        verify_token(token, KEY)


def nested(depth: int) -> Any:
    """A JSON value `depth` arrays deep."""
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def signed(header: dict[str, Any], payload: dict[str, Any]) -> str:
    """A token signed with the real key, so only the nesting can be refused."""
    claims = {"sub": "s", "exp": int(time.time()) + 600, **payload}
    return jwt.encode(claims, KEY, algorithm="HS256", headers=header)


def test_json_nested_as_deep_as_the_limit_is_accepted() -> None:
    # The segment's own object is one level; "x" adds the rest.
    token = signed({"x": nested(MAX_JSON_DEPTH - 1)}, {"x": nested(MAX_JSON_DEPTH - 1)})

    assert verify_token(token, KEY)["x"] == nested(MAX_JSON_DEPTH - 1)


@pytest.mark.parametrize("segment", ["header", "payload"])
def test_json_nested_one_level_beyond_the_limit_is_refused(segment: str) -> None:
    """Refused by depth, far below where any Python's json would give up."""
    deep = {"x": nested(MAX_JSON_DEPTH)}
    token = signed(deep, {}) if segment == "header" else signed({}, deep)

    with pytest.raises(TokenError, match=f"the {segment} nests JSON deeper than {MAX_JSON_DEPTH}"):
        verify_token(token, KEY)


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = '[{"\\' + "[" * 100 + '\\"{' * 50

    assert verify_token(signed({}, {"note": text}), KEY)["note"] == text


def test_an_escaped_backslash_ends_its_string_before_the_nesting_that_follows() -> None:
    """Misread as an escaped quote, the end of "\\\\" would hide the nesting that follows."""
    token = signed({}, {"a": "\\", "x": nested(MAX_JSON_DEPTH)})

    with pytest.raises(TokenError, match="nests JSON deeper"):
        verify_token(token, KEY)


def test_a_short_key_is_a_configuration_fault_not_a_caller_fault() -> None:
    with pytest.raises(SigningKeyError):
        issue_token("short", "s", 600)
    token = issue_token(KEY, "s", 600)
    with pytest.raises(SigningKeyError):
        verify_token(token, "short")


@pytest.mark.parametrize(("subject", "expires_in"), [("", 600), ("s", 0), ("s", -5)])
def test_issue_token_rejects_bad_arguments(subject: str, expires_in: int) -> None:
    with pytest.raises(ValueError):
        issue_token(KEY, subject, expires_in)


@pytest.mark.parametrize(
    ("secret_string", "key"),
    [
        ("plain-random-string", "plain-random-string"),
        ('{"signing_key": "from-json"}', "from-json"),
        ("12345", "12345"),
        ('"quoted"', '"quoted"'),
    ],
)
def test_signing_key_from_secret(secret_string: str, key: str) -> None:
    assert signing_key_from_secret(secret_string) == key


def test_a_json_secret_without_signing_key_is_a_configuration_fault() -> None:
    with pytest.raises(SigningKeyError, match="signing_key"):
        signing_key_from_secret('{"password": "x"}')


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer abc.def.ghi"},
        {"authorization": "Bearer abc.def.ghi"},
        {"AUTHORIZATION": "bearer abc.def.ghi"},
    ],
)
def test_bearer_token_reads_the_header_in_any_case(headers: dict[str, str]) -> None:
    assert bearer_token(headers) == "abc.def.ghi"


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"Content-Type": "application/json"},
        {"Authorization": None},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token abc.def.ghi"},
        {"Authorization": "Bearerabc.def.ghi"},
        {"Authorization": ["Bearer abc.def.ghi"]},
    ],
)
def test_bearer_token_refuses_missing_or_other_credentials(headers: dict | None) -> None:
    with pytest.raises(TokenError):
        bearer_token(headers)


def test_differing_authorization_values_are_refused() -> None:
    with pytest.raises(TokenError, match="more than one"):
        bearer_token({"Authorization": "Bearer a.b.c", "authorization": "Bearer d.e.f"})
    with pytest.raises(TokenError, match="more than one"):
        bearer_token(
            {"Authorization": "Bearer d.e.f"},
            {"Authorization": ["Bearer a.b.c", "Bearer d.e.f"]},
        )


def test_a_repeated_identical_value_is_one_credential() -> None:
    assert (
        bearer_token({"Authorization": "Bearer a.b.c"}, {"authorization": ["Bearer a.b.c"] * 2})
        == "a.b.c"
    )


@pytest.mark.parametrize("subject", ["", "desk#a", "desk\na", "\x7f", "x" * 129])
def test_a_subject_that_cannot_own_orders_is_neither_issued_nor_accepted(subject: str) -> None:
    """Orders are keyed `<sub>#<record_id>`: a `#` in a subject would make keys ambiguous."""
    with pytest.raises(ValueError, match="subject must be"):
        issue_token(KEY, subject, 60)
    with pytest.raises(TokenError, match="sub"):
        verify_token(signed({}, {"sub": subject}), KEY)


def test_the_longest_subject_is_issued_and_accepted() -> None:
    subject = "é" * 128
    assert verify_token(issue_token(KEY, subject, 60), KEY)["sub"] == subject
