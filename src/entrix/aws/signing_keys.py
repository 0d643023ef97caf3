"""HS256 signing keys by `kid`: the AWSCURRENT and AWSPREVIOUS versions of one secret.

A key's `kid` is its secret version's id. Rotation (entrix.handlers.rotate_key) adds a new
version as AWSCURRENT and leaves the one before as AWSPREVIOUS, so tokens signed with either are
accepted: a new key is introduced, then used, then retired by the next rotation, and no valid
token is refused on the way (docs/delivery.md, "Rotating the signing key").

Two rules make that hold against warm caches:
- the verifier refreshes on an unknown `kid` (at most once per UNKNOWN_KID_REFRESH_SECONDS, so
  forged kids cannot turn every request into a Secrets Manager call);
- the signer (`signing_version`) uses a new current key only once every warm verifier has had
  time to see it (its cache TTL), and the previous one until then.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from entrix.aws.secrets import CURRENT, PREVIOUS, SecretCache, SecretVersion
from entrix.signing_secret import signing_key_from_secret
from entrix.tokens import TokenError

# Least time between two refreshes forced by tokens naming a kid the cache does not hold.
UNKNOWN_KID_REFRESH_SECONDS = 5.0
# Margin on top of the verifiers' cache TTL before the signer switches to a new key: a rotation's
# version is created a few seconds before it becomes AWSCURRENT.
PROPAGATION_MARGIN_SECONDS = 60.0


class SigningKeys:
    """The verifier's side: `key_for(kid)` is the key of that version, if it is current or
    previous; TokenError otherwise."""

    def __init__(
        self,
        secret_id: str,
        cache: SecretCache,
        clock: Callable[[], float] = time.monotonic,
        refresh_interval: float = UNKNOWN_KID_REFRESH_SECONDS,
    ) -> None:
        self._secret_id = secret_id
        self._cache = cache
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._last_refresh: float | None = None
        self._current_id: str | None = None

    def key_for(self, kid: str) -> str:
        key = self._lookup(kid, refresh=False)
        if key is None and self._may_refresh():
            key = self._lookup(kid, refresh=True)
        if key is None:
            raise TokenError(f"kid {kid!r} is neither the current nor the previous key")
        return key

    def _lookup(self, kid: str, *, refresh: bool) -> str | None:
        # The previous key is read only for a token that does not name the current one, so a
        # cold request with a current token costs one read.
        current = self._cache.version(self._secret_id, CURRENT, refresh=refresh)
        if current is not None and current.version_id == kid:
            return signing_key_from_secret(current.secret_string)
        # A current key this cache has not seen means a rotation: the previous key it holds,
        # read at another time, may be the one before, so it is read again with it.
        rotated = current is not None and current.version_id != self._current_id
        self._current_id = current.version_id if current is not None else None
        previous = self._cache.version(self._secret_id, PREVIOUS, refresh=refresh or rotated)
        if previous is not None and previous.version_id == kid:
            return signing_key_from_secret(previous.secret_string)
        return None

    def _may_refresh(self) -> bool:
        now = self._clock()
        if self._last_refresh is not None and now - self._last_refresh < self._refresh_interval:
            return False
        self._last_refresh = now
        return True


def signing_version(
    current: SecretVersion,
    previous: SecretVersion | None,
    now: float,
    verifier_cache_seconds: float,
) -> SecretVersion:
    """The version a signer uses: the current one once it is older than the verifiers' cache
    TTL plus PROPAGATION_MARGIN_SECONDS, the previous one before that (if there is one)."""
    if previous is None or now - current.created >= verifier_cache_seconds + (
        PROPAGATION_MARGIN_SECONDS
    ):
        return current
    return previous
