"""Signing keys by kid (the verifier's side) and the signer's choice of key during a rotation."""

from __future__ import annotations

import pytest

from entrix.aws.secrets import CURRENT, PREVIOUS, SecretCache, SecretVersion
from entrix.aws.signing_keys import PROPAGATION_MARGIN_SECONDS, SigningKeys, signing_version
from entrix.tokens import TokenError

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jwt-AbCdEf"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Secret:
    def __init__(self) -> None:
        self.stages: dict[str, SecretVersion] = {CURRENT: SecretVersion("v1", "key-1", 0.0)}
        self.reads: list[str] = []

    def fetch(self, secret_id: str, stage: str) -> SecretVersion | None:
        self.reads.append(stage)
        return self.stages.get(stage)

    def rotate(self, version_id: str, key: str) -> None:
        self.stages[PREVIOUS] = self.stages[CURRENT]
        self.stages[CURRENT] = SecretVersion(version_id, key, 0.0)


def keys(secret: Secret, clock: Clock, ttl: float = 300) -> SigningKeys:
    return SigningKeys(ARN, SecretCache(ttl, secret.fetch, clock), clock, refresh_interval=5)


def test_the_current_key_costs_one_read_and_the_previous_is_read_only_when_named() -> None:
    secret, clock = Secret(), Clock()
    signing_keys = keys(secret, clock)

    assert signing_keys.key_for("v1") == "key-1"
    assert secret.reads == [CURRENT]


def test_current_and_previous_are_accepted_and_the_one_before_is_not() -> None:
    secret, clock = Secret(), Clock()
    secret.rotate("v2", "key-2")
    secret.rotate("v3", "key-3")
    signing_keys = keys(secret, clock)

    assert signing_keys.key_for("v3") == "key-3"
    assert signing_keys.key_for("v2") == "key-2"
    with pytest.raises(TokenError, match="neither the current nor the previous"):
        signing_keys.key_for("v1")


def test_an_unknown_kid_refreshes_at_once_then_not_again_within_the_interval() -> None:
    secret, clock = Secret(), Clock()
    signing_keys = keys(secret, clock)
    signing_keys.key_for("v1")
    secret.rotate("v2", "key-2")

    assert signing_keys.key_for("v2") == "key-2"  # the cache said v1; a refresh found v2

    secret.rotate("v3", "key-3")
    clock.now += 1
    with pytest.raises(TokenError):
        signing_keys.key_for("v3")  # within 5 s of the last forced refresh
    clock.now += 5
    assert signing_keys.key_for("v3") == "key-3"


def test_without_refreshes_a_rotation_reaches_the_verifier_after_its_cache_ttl() -> None:
    secret, clock = Secret(), Clock()
    signing_keys = SigningKeys(ARN, SecretCache(300, secret.fetch, clock), clock, 10**9)
    signing_keys.key_for("v1")
    secret.rotate("v2", "key-2")
    signing_keys._last_refresh = clock.now  # the one forced refresh just spent

    with pytest.raises(TokenError):
        signing_keys.key_for("v2")
    clock.now += 300
    assert signing_keys.key_for("v2") == "key-2"


def test_the_signer_uses_a_new_key_only_once_every_verifier_cache_has_expired() -> None:
    previous = SecretVersion("v1", "key-1", 0.0)
    current = SecretVersion("v2", "key-2", 10_000.0)
    ttl = 300.0
    switch = 10_000.0 + ttl + PROPAGATION_MARGIN_SECONDS

    assert signing_version(current, previous, switch - 1, ttl) == previous
    assert signing_version(current, previous, switch, ttl) == current
    # A secret never rotated has only its current key.
    assert signing_version(current, None, 10_000.0, ttl) == current
