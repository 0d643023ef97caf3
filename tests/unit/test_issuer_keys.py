"""The "jwks" key source: tokens of an identity provider, verified against its JWK set.

The provider is the local system's (entrix.local.identity_provider) on a loopback port; the
authorizer reads its keys as in jwks mode, and the deny list as ever.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.utils import base64url_encode

from entrix import jwks_fetch, settings
from entrix.aws import secrets
from entrix.aws.secrets import SecretVersion
from entrix.handlers import authorizer
from entrix.issuer_keys import IssuerKeys, IssuerUnavailable, check_jwks_url
from entrix.jwks_fetch import JwksPrefetch
from entrix.local.identity_provider import LocalIdentityProvider
from entrix.revocations import DenyList
from entrix.tokens import ISSUER_ALGORITHMS, TokenError, TokenRules, verify_token

ISSUER = "https://idp.entrix.example"
AUDIENCE = "entrix-auction-orders"
REVOCATIONS_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:entrix-deny-AbCdEf"
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/POST/orders"
RULES = TokenRules(ISSUER, AUDIENCE, 3600, ISSUER_ALGORITHMS)


@pytest.fixture
def idp() -> Iterator[LocalIdentityProvider]:
    provider = LocalIdentityProvider()
    provider.start()
    yield provider
    provider.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def keys_of(idp: LocalIdentityProvider, clock: Clock | None = None) -> IssuerKeys:
    return IssuerKeys(idp.jwks_url, allow_loopback_http=True, clock=clock or Clock())


def signed(key: Any, kid: str, algorithm: str = "ES256", **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "desk-a",
        "iat": now,
        "exp": now + 600,
        "jti": "j-1",
        **overrides,
    }
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def hs256_forgery(secret: bytes, kid: str) -> str:
    """An HS256 token signed by hand: PyJWT itself refuses a PEM as an HMAC secret."""
    header = base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = base64url_encode(
        json.dumps(
            jwt.decode(signed("x" * 32, kid, "HS256"), options={"verify_signature": False})
        ).encode()
    )
    signing_input = header + b"." + payload
    signature = base64url_encode(hmac.new(secret, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()


def of_idp(idp: LocalIdentityProvider, **overrides: Any) -> str:
    return signed(idp.current.private_key, idp.current.kid, **overrides)


def test_a_token_of_the_issuer_verifies(idp: LocalIdentityProvider) -> None:
    claims = verify_token(of_idp(idp), keys_of(idp).key_for, RULES)
    assert claims["sub"] == "desk-a"


def test_rs256_keys_verify_rs256(idp: LocalIdentityProvider) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(private.public_key())), "kid": "rsa-1"}
    idp.keys[0].public_jwk = jwk
    claims = verify_token(signed(private, "rsa-1", "RS256"), keys_of(idp).key_for, RULES)
    assert claims["sub"] == "desk-a"


def test_hs256_with_the_public_key_as_secret_is_refused(idp: LocalIdentityProvider) -> None:
    """Algorithm confusion: the attacker knows the public key and signs HS256 with it."""
    public_pem = idp.current.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (public_pem, json.dumps(idp.current.public_jwk).encode()):
        forged = hs256_forgery(secret, idp.current.kid)
        with pytest.raises(TokenError, match="alg"):
            verify_token(forged, keys_of(idp).key_for, RULES)


def test_an_algorithm_other_than_the_keys_is_refused(idp: LocalIdentityProvider) -> None:
    """An RSA key never verifies ES256, nor an EC key RS256: the key fixes the algorithm."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(private.public_key())), "kid": "rsa-1"}
    idp.keys[0].public_jwk = jwk
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TokenError, match="algorithm"):
        verify_token(signed(ec_key, "rsa-1", "ES256"), keys_of(idp).key_for, RULES)


def test_a_key_of_another_algorithm_verifies_nothing(idp: LocalIdentityProvider) -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(private.public_key())), "kid": "p384", "alg": "ES384"}
    idp.keys[0].public_jwk = jwk
    with pytest.raises(TokenError, match="not a usable key"):
        keys_of(idp).key_for("p384")


def test_a_key_for_encryption_verifies_nothing(idp: LocalIdentityProvider) -> None:
    idp.keys[0].public_jwk = {**idp.keys[0].public_jwk, "use": "enc"}
    with pytest.raises(TokenError, match="not a usable key"):
        keys_of(idp).key_for(idp.current.kid)


def test_a_key_whose_curve_is_not_its_algorithms_verifies_nothing(
    idp: LocalIdentityProvider,
) -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(private.public_key())), "kid": "p384", "alg": "ES256"}
    idp.keys[0].public_jwk = jwk
    with pytest.raises(TokenError, match="not a usable key"):
        keys_of(idp).key_for("p384")


def test_a_short_rsa_key_verifies_nothing(idp: LocalIdentityProvider) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    idp.keys[0].public_jwk = {**json.loads(RSAAlgorithm.to_jwk(private.public_key())), "kid": "k"}
    with pytest.raises(TokenError, match="not a usable key"):
        keys_of(idp).key_for("k")


def test_another_key_pair_with_the_issuers_kid_is_refused(idp: LocalIdentityProvider) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TokenError, match="Signature"):
        verify_token(signed(other, idp.current.kid), keys_of(idp).key_for, RULES)


def test_a_new_key_is_fetched_on_its_first_token(idp: LocalIdentityProvider) -> None:
    keys = keys_of(idp)
    verify_token(of_idp(idp), keys.key_for, RULES)
    idp.rotate()
    verify_token(of_idp(idp), keys.key_for, RULES)
    assert idp.fetches == 2


def test_unknown_kids_force_one_fetch_per_interval(idp: LocalIdentityProvider) -> None:
    clock = Clock()
    keys = keys_of(idp, clock)
    keys.key_for(idp.current.kid)
    for forged in range(50):
        with pytest.raises(TokenError):
            keys.key_for(f"forged-{forged}")
    assert idp.fetches == 2  # the set, then one refresh for the first forged kid
    clock.now += 5
    with pytest.raises(TokenError):
        keys.key_for("forged-again")
    assert idp.fetches == 3


def test_the_set_is_kept_for_its_lifespan(idp: LocalIdentityProvider) -> None:
    keys = keys_of(idp)
    for _ in range(20):
        keys.key_for(idp.current.kid)
    assert idp.fetches == 1


def test_an_unreachable_issuer_is_a_fault_not_a_refusal(idp: LocalIdentityProvider) -> None:
    keys = keys_of(idp)
    idp.stop()
    with pytest.raises(IssuerUnavailable):
        keys.key_for("any")


def test_a_redirect_is_not_followed(idp: LocalIdentityProvider) -> None:
    """The keys come from the configured URL only, never from where a reply points."""

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", idp.jwks_url)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        keys = IssuerKeys(
            f"http://127.0.0.1:{server.server_address[1]}/jwks", allow_loopback_http=True
        )
        with pytest.raises(IssuerUnavailable, match="302"):
            keys.key_for(idp.current.kid)
    finally:
        server.shutdown()
        server.server_close()
    assert idp.fetches == 0


# The prefetch: the set fetched in a thread from the authorizer's init, taken by the first lookup.


def prefetch_of(idp: LocalIdentityProvider, clock: Clock | None = None) -> JwksPrefetch:
    return JwksPrefetch(idp.jwks_url, allow_loopback_http=True, timeout=2.0, clock=clock or Clock())


def prefetching_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "jwks-prefetch"]


def test_the_first_lookup_takes_the_prefetched_set(idp: LocalIdentityProvider) -> None:
    clock = Clock()
    prefetch = prefetch_of(idp, clock)
    keys = IssuerKeys(idp.jwks_url, allow_loopback_http=True, prefetch=prefetch, clock=clock)
    claims = verify_token(of_idp(idp), keys.key_for, RULES)
    assert claims["sub"] == "desk-a"
    assert idp.fetches == 1  # the prefetch's: the lookup fetched nothing
    assert prefetching_threads() == []
    assert prefetch.take() is None  # handed over once


def test_a_failed_prefetch_is_logged_and_leaves_the_lookup_to_fetch(
    idp: LocalIdentityProvider, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    served, replies = idp.served, []

    def error_page_first() -> bytes:
        replies.append("error page" if not replies else "set")
        return b"<html>a proxy's error page</html>" if len(replies) == 1 else served()

    monkeypatch.setattr(idp, "served", error_page_first)
    with caplog.at_level(logging.WARNING):
        keys = IssuerKeys(
            idp.jwks_url, allow_loopback_http=True, prefetch=prefetch_of(idp), clock=Clock()
        )
        assert keys.key_for(idp.current.kid).key_id == idp.current.kid
    assert replies == ["error page", "set"]
    assert "prefetch failed" in caplog.text


def test_a_prefetch_still_running_after_its_timeout_leaves_the_lookup_to_fetch(
    idp: LocalIdentityProvider, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The timeout bounds each socket operation, not a fetch that never ends (a name lookup, a
    dripping body): the first request waits for the prefetch no longer than the timeout."""
    release = threading.Event()

    def stuck(url: str, context: object, timeout: float) -> object:
        release.wait(30)
        raise OSError("released")

    monkeypatch.setattr(jwks_fetch, "fetch_jwk_set", stuck)
    prefetch = JwksPrefetch(idp.jwks_url, allow_loopback_http=True, timeout=0.2, clock=Clock())
    try:
        with caplog.at_level(logging.WARNING):
            assert prefetch.take() is None
        assert "still running" in caplog.text
    finally:
        release.set()


def test_an_issuer_unreachable_at_init_and_at_the_request_is_a_fault(
    idp: LocalIdentityProvider,
) -> None:
    url = idp.jwks_url
    idp.stop()
    prefetch = JwksPrefetch(url, allow_loopback_http=True, timeout=2.0)
    keys = IssuerKeys(url, allow_loopback_http=True, prefetch=prefetch)
    with pytest.raises(IssuerUnavailable):
        keys.key_for("any")


def test_an_unknown_kid_still_refreshes_a_prefetched_set(idp: LocalIdentityProvider) -> None:
    clock = Clock()
    keys = IssuerKeys(
        idp.jwks_url, allow_loopback_http=True, prefetch=prefetch_of(idp, clock), clock=clock
    )
    keys.key_for(idp.current.kid)
    idp.rotate()
    assert keys.key_for(idp.current.kid).key_id == idp.current.kid
    assert idp.fetches == 2


def test_a_prefetched_set_past_its_lifespan_is_fetched_again(idp: LocalIdentityProvider) -> None:
    """As where the init runs long before the first request (provisioned concurrency)."""
    fetched, first_request = Clock(), Clock()
    first_request.now = fetched.now + 300
    prefetch = prefetch_of(idp, fetched)
    keys = IssuerKeys(
        idp.jwks_url, allow_loopback_http=True, prefetch=prefetch, clock=first_request
    )
    keys.key_for(idp.current.kid)
    assert idp.fetches == 2


def test_a_prefetch_of_another_url_is_not_used(idp: LocalIdentityProvider) -> None:
    other = LocalIdentityProvider()
    other.start()
    prefetch = prefetch_of(other)
    try:
        keys = IssuerKeys(idp.jwks_url, allow_loopback_http=True, prefetch=prefetch, clock=Clock())
        with pytest.raises(TokenError):
            keys.key_for(other.current.kid)
        assert idp.fetches == 2  # the set, then a refresh for the other provider's kid
        assert prefetch.take() is not None  # left untaken (and waited for here)
    finally:
        other.stop()


def test_a_prefetch_fetches_only_an_allowed_url() -> None:
    with pytest.raises(ValueError, match="https://"):
        JwksPrefetch("http://idp.example/jwks", allow_loopback_http=True, timeout=2.0)
    assert prefetching_threads() == []


@pytest.mark.parametrize("prefetched", [False, True], ids=["fetched", "prefetched"])
def test_concurrent_first_lookups_share_one_fetch(
    idp: LocalIdentityProvider, prefetched: bool
) -> None:
    clock = Clock()
    prefetch = prefetch_of(idp, clock) if prefetched else None
    keys = IssuerKeys(idp.jwks_url, allow_loopback_http=True, prefetch=prefetch, clock=clock)
    start = threading.Barrier(8)
    found: list[str | None] = []

    def look_up() -> None:
        start.wait()
        found.append(keys.key_for(idp.current.kid).key_id)

    threads = [threading.Thread(target=look_up) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [idp.current.kid] * 8
    assert idp.fetches == 1


@pytest.mark.parametrize(
    ("url", "loopback", "accepted"),
    [
        ("https://idp.example/.well-known/jwks.json", False, True),
        ("http://idp.example/.well-known/jwks.json", False, False),
        ("http://idp.example/.well-known/jwks.json", True, False),
        ("http://127.0.0.1:9/jwks", False, False),
        ("http://127.0.0.1:9/jwks", True, True),
        ("http://[::1]:9/jwks", True, True),
        ("file:///etc/passwd", True, False),
        ("https:///jwks", False, False),
    ],
)
def test_only_https_or_allowed_loopback_http(url: str, loopback: bool, accepted: bool) -> None:
    if accepted:
        check_jwks_url(url, allow_loopback_http=loopback)
    else:
        with pytest.raises(ValueError, match="https://"):
            check_jwks_url(url, allow_loopback_http=loopback)


# The authorizer in jwks mode.


@pytest.fixture
def jwks_mode(monkeypatch: pytest.MonkeyPatch, idp: LocalIdentityProvider) -> Iterator[list[str]]:
    """The authorizer configured for `idp`; yields the secrets it read (the deny list only)."""
    read: list[str] = []

    def fetch(secret_id: str, stage: str = "AWSCURRENT") -> SecretVersion | None:
        read.append(secret_id)
        assert secret_id == REVOCATIONS_ARN, f"jwks mode read {secret_id}"
        return SecretVersion("v1", DenyList().text(), 0.0)

    for setting, value in (
        (settings.JWT_KEY_SOURCE, "jwks"),
        (settings.JWT_JWKS_URL, idp.jwks_url),
        (settings.JWT_JWKS_ALLOW_LOOPBACK_HTTP, "true"),
        (settings.JWT_ISSUER, ISSUER),
        (settings.JWT_AUDIENCE, AUDIENCE),
        (settings.JWT_REVOCATIONS_SECRET_ARN, REVOCATIONS_ARN),
    ):
        monkeypatch.setenv(setting.name, value)
    monkeypatch.delenv(settings.JWT_SECRET_ARN.name, raising=False)
    monkeypatch.setattr(secrets, "fetch_secret_version", fetch)
    authorizer.reset()
    yield read
    authorizer.reset()


def request(token: str) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": {"Authorization": f"Bearer {token}"},
        "multiValueHeaders": {"Authorization": [f"Bearer {token}"]},
    }


def test_the_authorizer_allows_the_issuers_token(
    jwks_mode: list[str], idp: LocalIdentityProvider
) -> None:
    reply = authorizer.handler(request(of_idp(idp)), None)
    assert reply["principalId"] == "desk-a"
    assert jwks_mode == [REVOCATIONS_ARN]


def test_the_authorizer_refuses_hs256_in_jwks_mode(
    jwks_mode: list[str], idp: LocalIdentityProvider
) -> None:
    public_pem = idp.current.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert authorizer.token_rules().algorithms == ISSUER_ALGORITHMS
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.handler(request(hs256_forgery(public_pem, idp.current.kid)), None)


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000},  # expired
        {"exp": int(time.time()) + 7200},  # over the 3,600 s maximum lifetime
        {"iss": "https://other.example"},
        {"aud": "another-service"},
    ],
)
def test_the_authorizer_refuses_what_the_rules_refuse(
    jwks_mode: list[str],
    idp: LocalIdentityProvider,
    monkeypatch: pytest.MonkeyPatch,
    claims: dict[str, Any],
) -> None:
    monkeypatch.setenv(settings.MAX_TOKEN_LIFETIME_SECONDS.name, "3600")
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.handler(request(of_idp(idp, **claims)), None)


def test_an_http_jwks_url_off_loopback_is_refused_at_the_first_request(
    jwks_mode: list[str], idp: LocalIdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.JWT_JWKS_ALLOW_LOOPBACK_HTTP.name, "false")
    with pytest.raises(ValueError, match="https://"):
        authorizer.handler(request(of_idp(idp)), None)


def test_the_private_key_never_leaves_the_provider(idp: LocalIdentityProvider) -> None:
    assert all(
        set(key) <= {"kty", "crv", "x", "y", "kid", "alg", "use"} for key in idp.jwks()["keys"]
    )


def test_the_default_mode_starts_no_prefetch() -> None:
    assert authorizer.start_jwks_prefetch() is None
    assert prefetching_threads() == []


def test_a_refused_jwks_url_starts_no_prefetch(
    jwks_mode: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.JWT_JWKS_URL.name, "http://idp.example/jwks")
    assert authorizer.start_jwks_prefetch() is None
    assert prefetching_threads() == []


def test_the_first_request_takes_the_set_the_init_prefetched(
    jwks_mode: list[str], idp: LocalIdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a Lambda's init (the module's import, `JWKS_PREFETCH`) and first request run it."""
    prefetch = authorizer.start_jwks_prefetch()
    assert prefetch is not None
    monkeypatch.setattr(authorizer, "JWKS_PREFETCH", prefetch)
    reply = authorizer.handler(request(of_idp(idp)), None)
    assert reply["principalId"] == "desk-a"
    assert prefetch.take() is None  # taken by the request (which waited for it)
    assert idp.fetches == 1
    assert prefetching_threads() == []
