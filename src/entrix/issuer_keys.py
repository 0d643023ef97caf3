"""The "jwks" key source: an identity provider's public keys, by `kid`, from its JWKS URL.

Tokens then come from the company's identity provider and the service holds no key that can
mint one. PyJWT's PyJWKClient fetches the JWK set and keeps it JWKS_LIFESPAN_SECONDS. A token
naming a kid the set lacks forces one fetch at most every UNKNOWN_KID_REFRESH_SECONDS (failed
fetches included), so a key the provider adds is picked up by the first token that names it and
forged kids cannot turn every request into a call to the provider.

Each key verifies its own algorithm only: RS256 with an RSA key, ES256 with a P-256 EC key
(PyJWT refuses a header `alg` other than its key's). Keys of any other type, algorithm or
use, and keys PyJWT would refuse to verify with (an RSA key under 2,048 bits), are not keys of
the issuer here. HS256 is never among this source's algorithms (`ALGORITHMS`), so a token signed
with a public key as an HMAC secret is refused.

The URL must be https://; only with JWT_JWKS_ALLOW_LOOPBACK_HTTP (the local runtime's identity
provider and tests; false in every deployed authorizer) may it be http:// to 127.0.0.1 or ::1.

These algorithms need `cryptography`, which only this mode's layer holds: the default mode's cold
request does not import it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import jwt

from entrix.tokens import ISSUER_ALGORITHMS, TokenError

logger = logging.getLogger(__name__)

ALGORITHMS = ISSUER_ALGORITHMS
# How long a JWK set is used before it is fetched again.
JWKS_LIFESPAN_SECONDS = 300.0
# Least time between two fetches forced by tokens naming a kid the set does not hold.
UNKNOWN_KID_REFRESH_SECONDS = 5.0
# Per fetch: two fetches (the set, then a refresh for an unknown kid) fit in the authorizer's 5 s.
FETCH_TIMEOUT_SECONDS = 2.0
LOOPBACK_HOSTS = ("127.0.0.1", "::1")
# The key type each algorithm verifies with (the EC curve is checked by PyJWT's prepare_key).
_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}


class IssuerUnavailable(Exception):
    """The identity provider's JWK set cannot be had: a fault of the deployment or the provider,
    not of the caller (the authorizer fails, API Gateway answers 500 and caches nothing)."""


def check_jwks_url(url: str, *, allow_loopback_http: bool) -> None:
    """Refuse any URL but https:// (or, where allowed, http:// on the loopback interface)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if allow_loopback_http and parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise ValueError(f"the JWKS URL must be an https:// URL, not {url!r}")


def usable(key: jwt.PyJWK) -> bool:
    """Whether `key` may verify tokens here: a signing key of an accepted algorithm and type,
    which PyJWT accepts for that algorithm (curve, RSA length)."""
    if key.public_key_use not in ("sig", None):
        return False
    if _KEY_TYPES.get(key.algorithm_name) != key.key_type:
        return False
    try:
        prepared = key.Algorithm.prepare_key(key.key)
    except jwt.InvalidKeyError:
        return False
    return key.Algorithm.check_key_length(prepared) is None


class IssuerKeys:
    """The verifier's side: `key_for(kid)` is the issuer's key of that kid, as a PyJWK (its
    algorithm bound to it); TokenError for a kid the issuer's JWK set does not hold."""

    def __init__(
        self,
        url: str,
        *,
        allow_loopback_http: bool = False,
        clock: Callable[[], float] = time.monotonic,
        refresh_interval: float = UNKNOWN_KID_REFRESH_SECONDS,
        lifespan: float = JWKS_LIFESPAN_SECONDS,
        timeout: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        check_jwks_url(url, allow_loopback_http=allow_loopback_http)
        # PyJWKClient's own cooldown is off: the bound below also counts failed fetches.
        self._client = jwt.PyJWKClient(url, lifespan=lifespan, timeout=timeout, cooldown_duration=0)
        self._url = url
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._last_refresh: float | None = None

    def key_for(self, kid: str) -> jwt.PyJWK:
        key = self._lookup(kid, refresh=False)
        if key is None and self._may_refresh():
            key = self._lookup(kid, refresh=True)
        if key is None:
            raise TokenError(f"kid {kid!r} is not a usable key of the issuer's JWK set")
        return key

    def _lookup(self, kid: str, *, refresh: bool) -> jwt.PyJWK | None:
        try:
            keys = self._client.get_jwk_set(refresh=refresh).keys
        except (jwt.PyJWKClientError, jwt.PyJWKSetError, jwt.PyJWKError) as error:
            raise IssuerUnavailable(f"JWK set of {self._url}: {error}") from None
        found = [key for key in keys if key.key_id == kid]
        if found and not usable(found[0]):
            logger.warning("the issuer's key %r is not usable here (%s)", kid, ALGORITHMS)
            return None
        return found[0] if found else None

    def _may_refresh(self) -> bool:
        now = self._clock()
        if self._last_refresh is not None and now - self._last_refresh < self._refresh_interval:
            return False
        self._last_refresh = now
        return True
