"""Fetching an identity provider's JWK set, with the standard library only.

Only the standard library, so that the authorizer's init can start the fetch (`JwksPrefetch`)
before it imports PyJWT and cryptography (entrix.issuer_keys, which uses `fetch_jwk_set` for
every later fetch too): waiting on the network and loading the TLS trust store release the GIL,
so they run beside that import. The wait is hidden wherever it is; the trust store's parsing
only where the process has CPU to spare (docs/cold-start.md, "The authorizer in jwks mode").
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "::1")
# Per fetch: two fetches (the set, then a refresh for an unknown kid) fit in the authorizer's 5 s.
FETCH_TIMEOUT_SECONDS = 2.0


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


def tls_context() -> ssl.SSLContext:
    """The default context: OpenSSL's default trust store (the system's CA bundle on Lambda).

    Loading it is most of a first fetch's own cost (40 to 50 ms), so one context serves every
    fetch of a container. It is made for an http:// URL too (the local provider, the bench), as
    an https:// one pays it, and as python 3.13's urllib makes one for any URL anyway.
    """
    return ssl.create_default_context()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error, not followed: the keys come from the configured URL only."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch_jwk_set(url: str, context: ssl.SSLContext, timeout: float) -> dict[str, Any]:
    """The JSON object at `url`; IssuerUnavailable if it cannot be had (the caller has checked
    the URL with `check_jwks_url`)."""
    opener = urllib.request.build_opener(
        _NoRedirects(), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=timeout) as response:
            document = json.load(response)
    except urllib.error.HTTPError as error:
        error.close()
        raise IssuerUnavailable(f"JWK set of {url}: {error}") from None
    # OSError covers URLError, timeouts and a connection reset mid-body; ValueError bad JSON.
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise IssuerUnavailable(f"JWK set of {url}: {error}") from None
    if not isinstance(document, dict):
        raise IssuerUnavailable(f"JWK set of {url}: not a JSON object")
    return document


class Prefetched(NamedTuple):
    """What a prefetch got: the TLS context (None if even that failed), the JWK set's document
    (None if the fetch failed) and when the fetch ended."""

    context: ssl.SSLContext | None
    document: dict[str, Any] | None
    fetched_at: float


class JwksPrefetch:
    """The JWK set fetched in a thread of its own from construction on, for the first request.

    `take()` waits for the thread (up to the fetch's timeout) and hands its result over once
    (None afterwards), so no two requests use one prefetch. A failure, or a fetch still running
    after the timeout, is logged there and leaves the taker to fetch as it would have without a
    prefetch.
    """

    def __init__(
        self,
        url: str,
        *,
        allow_loopback_http: bool,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_jwks_url(url, allow_loopback_http=allow_loopback_http)
        self.url = url
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._result: Prefetched | None = None
        self._taken = False
        self._thread = threading.Thread(target=self._run, name="jwks-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        context = None
        try:
            context = tls_context()
            document = fetch_jwk_set(self.url, context, self._timeout)
            self._result = Prefetched(context, document, self._clock())
        except Exception as error:  # noqa: BLE001 - any failure: the taker fetches itself
            logger.warning(
                "the JWK set's prefetch failed, the first request fetches it: %s: %s",
                type(error).__name__,
                error,
            )
            self._result = Prefetched(context, None, self._clock())

    def take(self) -> Prefetched | None:
        """The prefetch's result, the first time (after waiting for it); None every other time."""
        with self._lock:
            if self._taken:
                return None
            self._taken = True
            # The timeout bounds each socket operation, not a name lookup or a body that drips:
            # past it, the taker fetches itself and the daemon thread's result is dropped.
            self._thread.join(self._timeout)
            if self._thread.is_alive():
                logger.warning("the JWK set's prefetch is still running, the request fetches it")
                return None
            return self._result
