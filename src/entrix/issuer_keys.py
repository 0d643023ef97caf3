"""The "jwks" key source: an identity provider's public keys, by `kid`, from its JWKS URL.

Tokens then come from the company's identity provider and the service holds no key that can
mint one. The JWK set is fetched with entrix.jwks_fetch (the first time by the authorizer's
init, `JwksPrefetch`, where there is one), parsed by PyJWT and kept JWKS_LIFESPAN_SECONDS from
its fetch. A token naming a kid the set lacks forces one fetch at most every
UNKNOWN_KID_REFRESH_SECONDS (failed fetches included), so a key the provider adds is picked up
by the first token that names it and forged kids cannot turn every request into a call to the
provider. Lookups hold a lock: concurrent callers share one fetch and take the prefetch once.

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
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt

from entrix.jwks_fetch import (
    FETCH_TIMEOUT_SECONDS,
    LOOPBACK_HOSTS,
    IssuerUnavailable,
    JwksPrefetch,
    check_jwks_url,
    fetch_jwk_set,
    tls_context,
)
from entrix.tokens import ISSUER_ALGORITHMS, TokenError

logger = logging.getLogger(__name__)

# The URL's rules and the fault live in entrix.jwks_fetch (no PyJWT there); importers of this
# module keep finding them here.
__all__ = ["LOOPBACK_HOSTS", "IssuerKeys", "IssuerUnavailable", "check_jwks_url", "usable"]

ALGORITHMS = ISSUER_ALGORITHMS
# How long a JWK set is used after its fetch before it is fetched again.
JWKS_LIFESPAN_SECONDS = 300.0
# Least time between two fetches forced by tokens naming a kid the set does not hold.
UNKNOWN_KID_REFRESH_SECONDS = 5.0
# The key type each algorithm verifies with (the EC curve is checked by PyJWT's prepare_key).
_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}


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
    algorithm bound to it); TokenError for a kid the issuer's JWK set does not hold.

    `prefetch`, a JwksPrefetch of the same URL, supplies the first fetch (and the TLS context
    of every fetch); one of another URL is ignored.
    """

    def __init__(
        self,
        url: str,
        *,
        allow_loopback_http: bool = False,
        prefetch: JwksPrefetch | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresh_interval: float = UNKNOWN_KID_REFRESH_SECONDS,
        lifespan: float = JWKS_LIFESPAN_SECONDS,
        timeout: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        check_jwks_url(url, allow_loopback_http=allow_loopback_http)
        self._url = url
        self._prefetch = prefetch if prefetch is not None and prefetch.url == url else None
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._lifespan = lifespan
        self._timeout = timeout
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        self._keys: jwt.PyJWKSet | None = None
        self._fetched_at = 0.0
        self._last_refresh: float | None = None

    def key_for(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            key = self._lookup(kid, refresh=False)
            if key is None and self._may_refresh():
                key = self._lookup(kid, refresh=True)
        if key is None:
            raise TokenError(f"kid {kid!r} is not a usable key of the issuer's JWK set")
        return key

    def _lookup(self, kid: str, *, refresh: bool) -> jwt.PyJWK | None:
        if refresh or self._keys is None or self._clock() - self._fetched_at >= self._lifespan:
            self._keys, self._fetched_at = self._fetch()
        found = [key for key in self._keys.keys if key.key_id == kid]
        if found and not usable(found[0]):
            logger.warning("the issuer's key %r is not usable here (%s)", kid, ALGORITHMS)
            return None
        return found[0] if found else None

    def _fetch(self) -> tuple[jwt.PyJWKSet, float]:
        """The JWK set and when it was fetched: the prefetch's if it got one still within its
        lifespan, else one fetched now. On failure the set held so far stays."""
        prefetched = self._prefetch.take() if self._prefetch is not None else None
        self._prefetch = None
        if prefetched is not None:
            self._context = prefetched.context
            fresh = self._clock() - prefetched.fetched_at < self._lifespan
            if prefetched.document is not None and fresh:
                return self._parsed(prefetched.document), prefetched.fetched_at
        if self._context is None:
            self._context = tls_context()
        document = fetch_jwk_set(self._url, self._context, self._timeout)
        return self._parsed(document), self._clock()

    def _parsed(self, document: dict[str, Any]) -> jwt.PyJWKSet:
        try:
            return jwt.PyJWKSet.from_dict(document)
        except (jwt.PyJWKSetError, jwt.PyJWKError) as error:
            raise IssuerUnavailable(f"JWK set of {self._url}: {error}") from None

    def _may_refresh(self) -> bool:
        now = self._clock()
        if self._last_refresh is not None and now - self._last_refresh < self._refresh_interval:
            return False
        self._last_refresh = now
        return True
