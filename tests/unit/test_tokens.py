"""The token rules: what verify_token accepts and refuses, and how bearer_token reads headers."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest

from entrix.signing_secret import SigningKeyError, signing_key_from_secret
from entrix.tokens import (
    LEEWAY_SECONDS,
    MAX_JSON_DEPTH,
    MAX_KID_LENGTH,
    REQUIRED_CLAIMS,
    TokenError,
    TokenRules,
    bearer_token,
    issue_token,
    verify_token,
)

KEY = "k" * 64
OTHER_KEY = "o" * 64
KID = "key-version-1"
ISSUER = "https://auth.entrix.test"
AUDIENCE = "orders-api"
MAX_LIFETIME = 3600
RULES = TokenRules(issuer=ISSUER, audience=AUDIENCE, max_lifetime_seconds=MAX_LIFETIME)


def keys(kid: str) -> str:
    """The one key this test's verifier knows."""
    if kid != KID:
        raise TokenError(f"unknown kid {kid}")
    return KEY


def issue(subject: str = "trader-1", expires_in: int = 600, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "kid": KID,
        "subject": subject,
        "expires_in": expires_in,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        **overrides,
    }
    return issue_token(arguments.pop("key", KEY), **arguments)


def verify(token: str, rules: TokenRules = RULES) -> dict[str, Any]:
    return verify_token(token, keys, rules)


def claims(**changes: Any) -> dict[str, Any]:
    """A complete valid claim set with `changes` (a value of None drops the claim)."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "s",
        "iat": now,
        "exp": now + 600,
        "jti": "token-1",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def signed(header: dict[str, Any], payload: dict[str, Any], key: Any = KEY) -> str:
    """A token signed with the real key and kid, so only what the test changes can be refused."""
    return jwt.encode(claims(**payload), key, algorithm="HS256", headers={"kid": KID, **header})


def test_issued_token_verifies_with_its_claims() -> None:
    token = issue()

    verified = verify(token)

    assert verified["sub"] == "trader-1"
    assert verified["iss"] == ISSUER
    assert verified["aud"] == AUDIENCE
    assert verified["exp"] - verified["iat"] == 600
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": KID, "typ": "JWT"}


def test_each_token_gets_its_own_jti() -> None:
    assert verify(issue())["jti"] != verify(issue())["jti"]


def test_expired_token_is_refused() -> None:
    token = issue(expires_in=60, now=time.time() - 60 - LEEWAY_SECONDS - 5)

    with pytest.raises(TokenError, match="Expired"):
        verify(token)


def test_expiry_within_the_leeway_is_tolerated() -> None:
    token = issue(expires_in=60, now=time.time() - 60 - LEEWAY_SECONDS + 10)

    assert verify(token)["sub"] == "trader-1"


def test_token_not_yet_valid_is_refused() -> None:
    token = signed({}, {"nbf": int(time.time()) + 300, "exp": int(time.time()) + 900})

    with pytest.raises(TokenError, match="nbf"):
        verify(token)


def test_token_issued_in_the_future_beyond_the_leeway_is_refused() -> None:
    token = issue(now=time.time() + LEEWAY_SECONDS + 60)

    with pytest.raises(TokenError, match="not yet valid"):
        verify(token)


def test_small_clock_skew_on_nbf_and_iat_is_tolerated() -> None:
    token = issue(now=time.time() + LEEWAY_SECONDS - 10)

    assert verify(token)["sub"] == "trader-1"


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_a_token_without_a_required_claim_is_refused(claim: str) -> None:
    assert verify(signed({}, {}))["sub"] == "s"
    with pytest.raises(TokenError, match=claim):
        verify(signed({}, {claim: None}))


def test_the_required_claims_are_the_ones_the_service_relies_on() -> None:
    """iss and aud: not a token for another service; iat: a bounded lifetime; jti: revocable."""
    assert set(REQUIRED_CLAIMS) == {"exp", "iat", "iss", "aud", "sub", "jti"}


@pytest.mark.parametrize("jti", ["", 7, ["a"]])
def test_a_jti_that_is_not_a_non_empty_string_is_refused(jti: Any) -> None:
    with pytest.raises(TokenError, match=r"(?i)jti|JWT ID"):
        verify(signed({}, {"jti": jti}))


def test_a_lifetime_up_to_the_maximum_is_accepted_and_one_second_more_is_refused() -> None:
    now = int(time.time())

    assert verify(signed({}, {"iat": now, "exp": now + MAX_LIFETIME}))["sub"] == "s"
    with pytest.raises(TokenError, match=f"lives {MAX_LIFETIME + 1} s"):
        verify(signed({}, {"iat": now, "exp": now + MAX_LIFETIME + 1}))


def test_a_ten_year_token_is_refused_although_it_has_not_expired() -> None:
    with pytest.raises(TokenError, match="over the 3600 s maximum"):
        verify(issue(expires_in=10 * 365 * 86400))


def test_an_iat_backdated_to_stretch_the_lifetime_is_still_bounded_by_exp_minus_iat() -> None:
    now = int(time.time())
    token = signed({}, {"iat": now - 2 * MAX_LIFETIME, "exp": now + 60})

    with pytest.raises(TokenError, match="maximum"):
        verify(token)


@pytest.mark.parametrize("kid", [None, "", 5, "x" * (MAX_KID_LENGTH + 1)])
def test_a_token_without_a_usable_kid_is_refused(kid: Any) -> None:
    header = {"alg": "HS256", "typ": "JWT"} if kid is None else {"alg": "HS256", "kid": kid}
    segments = [
        jwt.utils.base64url_encode(json.dumps(part).encode()) for part in (header, claims())
    ]
    signing_input = b".".join(segments)
    signature = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256).sign(
        signing_input, KEY.encode()
    )
    token = b".".join([signing_input, jwt.utils.base64url_encode(signature)]).decode()

    with pytest.raises(TokenError, match=r"(?i)kid|key id"):
        verify(token)


def test_a_token_naming_a_kid_the_verifier_does_not_know_is_refused() -> None:
    with pytest.raises(TokenError, match="unknown kid other"):
        verify(signed({"kid": "other"}, {}))


def test_the_key_is_the_one_the_kid_names() -> None:
    def two_keys(kid: str) -> str:
        return {"old": OTHER_KEY, "new": KEY}[kid]

    old = issue(kid="old", key=OTHER_KEY)
    assert verify_token(old, two_keys, RULES)["sub"] == "trader-1"
    # Signed with the old key but naming the new one: the signature does not match.
    relabelled = issue(kid="new", key=OTHER_KEY)
    with pytest.raises(TokenError, match="Signature"):
        verify_token(relabelled, two_keys, RULES)


def test_token_signed_with_another_key_is_refused() -> None:
    with pytest.raises(TokenError, match="Signature"):
        verify(issue(key=OTHER_KEY))


def test_hs512_with_the_right_key_is_refused() -> None:
    token = jwt.encode(claims(), KEY, "HS512", headers={"kid": KID})

    with pytest.raises(TokenError, match="InvalidAlgorithm"):
        verify(token)


def test_alg_none_is_refused() -> None:
    token = jwt.encode(claims(), None, "none", headers={"kid": KID})

    with pytest.raises(TokenError):
        verify(token)
    # Even with a signature segment glued on, "none" is not an accepted algorithm.
    with pytest.raises(TokenError, match="InvalidAlgorithm"):
        verify(token + "c2ln")


def test_tampered_payload_is_refused() -> None:
    header, _, signature = issue().split(".")
    forged = jwt.utils.base64url_encode(json.dumps(claims(sub="admin")).encode()).decode()

    with pytest.raises(TokenError, match="Signature"):
        verify(f"{header}.{forged}.{signature}")


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "a.b", "a.b.c.d", "....", "not a token at all", "eyJ.eyJ.", "a b.c.d", "ä.b.c"],
)
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(TokenError):
        verify(garbage)


def test_issuer_and_audience_must_be_the_configured_ones() -> None:
    with pytest.raises(TokenError, match="Issuer"):
        verify(issue(issuer="https://someone-else.example"))
    with pytest.raises(TokenError, match="Audience"):
        verify(issue(audience="billing-api"))
    # A list audience is accepted when it names this API.
    assert verify(signed({}, {"aud": ["billing-api", AUDIENCE]}))["sub"] == "s"


def nested(depth: int) -> Any:
    """A JSON value `depth` arrays deep."""
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_json_nested_as_deep_as_the_limit_is_accepted() -> None:
    # The segment's own object is one level; "x" adds the rest.
    token = signed({"x": nested(MAX_JSON_DEPTH - 1)}, {"x": nested(MAX_JSON_DEPTH - 1)})

    assert verify(token)["x"] == nested(MAX_JSON_DEPTH - 1)


@pytest.mark.parametrize("segment", ["header", "payload"])
def test_json_nested_one_level_beyond_the_limit_is_refused(segment: str) -> None:
    """Refused by depth, far below where any Python's json would give up."""
    deep = {"x": nested(MAX_JSON_DEPTH)}
    token = signed(deep, {}) if segment == "header" else signed({}, deep)

    with pytest.raises(TokenError, match=f"the {segment} nests JSON deeper than {MAX_JSON_DEPTH}"):
        verify(token)


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = '[{"\\' + "[" * 100 + '\\"{' * 50

    assert verify(signed({}, {"note": text}))["note"] == text


def test_an_escaped_backslash_ends_its_string_before_the_nesting_that_follows() -> None:
    """Misread as an escaped quote, the end of "\\\\" would hide the nesting that follows."""
    token = signed({}, {"a": "\\", "x": nested(MAX_JSON_DEPTH)})

    with pytest.raises(TokenError, match="nests JSON deeper"):
        verify(token)


def test_a_short_key_is_a_configuration_fault_not_a_caller_fault() -> None:
    with pytest.raises(SigningKeyError):
        issue(key="short")
    with pytest.raises(SigningKeyError):
        verify_token(issue(), lambda kid: "short", RULES)


@pytest.mark.parametrize(
    ("subject", "expires_in", "kid"), [("", 600, KID), ("s", 0, KID), ("s", -5, KID), ("s", 60, "")]
)
def test_issue_token_rejects_bad_arguments(subject: str, expires_in: int, kid: str) -> None:
    with pytest.raises(ValueError):
        issue(subject, expires_in, kid=kid)


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
        issue(subject, 60)
    with pytest.raises(TokenError, match="sub"):
        verify(signed({}, {"sub": subject}))


def test_the_longest_subject_is_issued_and_accepted() -> None:
    subject = "é" * 128
    assert verify(issue(subject, 60))["sub"] == subject
