"""Secrets Manager's four-step rotation of the HS256 signing key (no AWS imports).

Secrets Manager calls the rotation function once per step, with the secret, the step and a
ClientRequestToken that is the new version's id (the new key's `kid`), and retries a step that
fails; each step below is therefore idempotent, and starts with the checks AWS's rotation
template for "generic" secrets makes (rotation enabled; the token is a version of the secret,
staged AWSPENDING, or already AWSCURRENT: nothing left to do).

- createSecret: unless the AWSPENDING version already has a value (a retried step), a new
  random key of the current one's shape (the raw string, or the JSON object with its
  `signing_key` replaced) is stored as that version, staged AWSPENDING only.
- setSecret: nothing to set. An HS256 key is not installed anywhere: signers and verifiers read
  it from the secret (entrix.aws.signing_keys).
- testSecret: the pending key is usable, at least MIN_KEY_BYTES (RFC 7518: 256 bits for HS256).
- finishSecret: AWSCURRENT moves to the new version; Secrets Manager then labels the version it
  left AWSPREVIOUS, which verifiers still accept until the next rotation. AWSPENDING is taken
  off the new version too: a finished rotation leaves no pending version, which both Secrets
  Manager and moto take to mean "no rotation in progress".

The new version is created seconds before it becomes AWSCURRENT; signers only use a current key
once it is older than the verifiers' cache TTL plus a margin (`signing_version`).
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from entrix.signing_secret import SIGNING_KEY_FIELD, SigningKeyError, signing_key_from_secret

logger = logging.getLogger(__name__)

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# The key CloudFormation generates at deploy time (GenerateSecretString: 64 characters, no
# punctuation); a rotated key has the same length and alphabet.
KEY_LENGTH = 64
KEY_ALPHABET = string.ascii_letters + string.digits
# RFC 7518 3.2: an HS256 key is at least 256 bits.
MIN_KEY_BYTES = 32


class RotationError(Exception):
    """The rotation cannot go on: the secret or the step is not as the protocol requires."""


class SecretVersions(Protocol):
    """What a rotation needs of Secrets Manager (entrix.aws.rotation_store implements it)."""

    def describe(self, secret_id: str) -> Mapping[str, Any]:
        """DescribeSecret: at least RotationEnabled and VersionIdsToStages."""
        ...

    def value(self, secret_id: str, *, stage: str, version_id: str | None = None) -> str | None:
        """The SecretString of the version (`stage`, and `version_id` if given); None if no
        such version has a value."""
        ...

    def put_pending(self, secret_id: str, version_id: str, secret_string: str) -> None:
        """PutSecretValue as version `version_id`, staged AWSPENDING only."""
        ...

    def move_stage(
        self,
        secret_id: str,
        stage: str,
        *,
        to_version: str | None,
        from_version: str | None,
    ) -> None:
        """UpdateSecretVersionStage."""
        ...


def random_key(choice: Callable[[Sequence[str]], str] = secrets.choice) -> str:
    """A new key: KEY_LENGTH characters drawn from KEY_ALPHABET by a CSPRNG."""
    return "".join(choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


def new_secret_string(current: str, key: str) -> str:
    """`key` in the shape of the current SecretString: the raw key, or the same JSON object
    with its `signing_key` replaced (its other fields kept)."""
    try:
        document = json.loads(current)
    except ValueError:
        return key
    if not isinstance(document, dict):
        return key
    key_of(current)  # a JSON object must already hold a signing_key
    return json.dumps({**document, SIGNING_KEY_FIELD: key})


def key_of(secret_string: str) -> str:
    """The key in a secret, read as the authorizer reads it; RotationError if it has none."""
    try:
        return signing_key_from_secret(secret_string)
    except SigningKeyError as error:
        raise RotationError(str(error)) from None


def check_key(secret_string: str) -> None:
    """RotationError unless the secret holds a usable HS256 key of at least MIN_KEY_BYTES."""
    key = key_of(secret_string)
    if len(key.encode()) < MIN_KEY_BYTES:
        raise RotationError(f"the pending key has fewer than {MIN_KEY_BYTES} bytes")


def rotate(
    store: SecretVersions,
    secret_id: str,
    token: str,
    step: str,
    make_key: Callable[[], str] = random_key,
) -> str:
    """Run one step for version `token` of `secret_id`; what was done, for the log."""
    if step not in STEPS:
        raise RotationError(f"unknown rotation step {step!r}")
    metadata = store.describe(secret_id)
    if not metadata.get("RotationEnabled"):
        raise RotationError(f"secret {secret_id} is not enabled for rotation")
    versions: Mapping[str, Sequence[str]] = metadata.get("VersionIdsToStages") or {}
    if token not in versions:
        raise RotationError(f"version {token} of secret {secret_id} has no stage for rotation")
    stages = versions[token]
    if CURRENT in stages:
        if step == "finishSecret" and PENDING in stages:
            # A retried finishSecret that moved AWSCURRENT but had not yet taken AWSPENDING off.
            store.move_stage(secret_id, PENDING, to_version=None, from_version=token)
        return f"version {token} is already {CURRENT}: nothing to do"
    if PENDING not in stages:
        raise RotationError(f"version {token} of secret {secret_id} is not staged {PENDING}")
    if step == "createSecret":
        return _create(store, secret_id, token, make_key)
    if step == "setSecret":
        return "nothing to set: signers and verifiers read the key from the secret"
    if step == "testSecret":
        pending = store.value(secret_id, stage=PENDING, version_id=token)
        if pending is None:
            raise RotationError(f"version {token} of secret {secret_id} has no value to test")
        check_key(pending)
        return f"the pending key {token} is usable"
    return _finish(store, secret_id, token, versions)


def _create(store: SecretVersions, secret_id: str, token: str, make_key: Callable[[], str]) -> str:
    current = store.value(secret_id, stage=CURRENT)
    if current is None:
        raise RotationError(f"secret {secret_id} has no {CURRENT} value")
    if store.value(secret_id, stage=PENDING, version_id=token) is not None:
        return f"version {token} already has its new key"
    store.put_pending(secret_id, token, new_secret_string(current, make_key()))
    return f"new key stored as version {token} ({PENDING})"


def _finish(
    store: SecretVersions, secret_id: str, token: str, versions: Mapping[str, Sequence[str]]
) -> str:
    current = next((v for v, stages in versions.items() if CURRENT in stages), None)
    store.move_stage(secret_id, CURRENT, to_version=token, from_version=current)
    store.move_stage(secret_id, PENDING, to_version=None, from_version=token)
    return f"version {token} is {CURRENT}; {current} is AWSPREVIOUS"
