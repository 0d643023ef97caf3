"""SigningKeys across a rotation, on a fake clock: a warm verifier whose cached AWSCURRENT and
AWSPREVIOUS were read at different times (a token of each key) must still accept a token of the
new previous key after a second rotation."""

from __future__ import annotations

import pytest

from entrix.aws.secrets import CURRENT, PREVIOUS, SecretCache, SecretVersion
from entrix.aws.signing_keys import SigningKeys
from entrix.tokens import TokenError

KEYS = {kid: SecretVersion(kid, kid * 32, 0.0) for kid in ("k0", "k1", "k2")}


class Versions:
    def __init__(self) -> None:
        self.current, self.previous = "k1", "k0"

    def fetch(self, _secret_id: str, stage: str) -> SecretVersion | None:
        return KEYS[{CURRENT: self.current, PREVIOUS: self.previous}[stage]]

    def rotate(self) -> None:
        self.current, self.previous = "k2", "k1"


def verifier(ttl: float, versions: Versions, now: list[float]) -> SigningKeys:
    clock = lambda: now[0]  # noqa: E731
    return SigningKeys("key", SecretCache(ttl, versions.fetch, clock), clock, refresh_interval=5)


@pytest.mark.parametrize("ttl", [300, 2])
def test_the_new_previous_key_is_accepted_right_after_a_second_rotation(ttl: float) -> None:
    versions, now = Versions(), [0.0]
    keys = verifier(ttl, versions, now)
    with pytest.raises(TokenError):
        keys.key_for("forged")  # a forced refresh at 0
    now[0] = ttl + 0.1
    assert keys.key_for("k1")  # AWSCURRENT read again
    now[0] = ttl + 0.5
    assert keys.key_for("k0")  # AWSPREVIOUS read again, later
    now[0] = ttl + 1.0
    versions.rotate()
    now[0] = 2 * ttl + 0.2  # AWSCURRENT expired, AWSPREVIOUS (k0) not yet
    assert keys.key_for("k1") == "k1" * 32
