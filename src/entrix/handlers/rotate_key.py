"""Secrets Manager's rotation function for the JWT signing key: one step per invocation.

The event is {"SecretId", "ClientRequestToken", "Step"}; the steps are entrix.key_rotation's.
A step that cannot go on raises, so Secrets Manager records the failure and retries it.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from entrix.aws.clients import client
from entrix.aws.rotation_store import SecretsManagerVersions
from entrix.key_rotation import rotate

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


@functools.cache
def store() -> SecretsManagerVersions:
    """Made on the first invocation and kept for the container's life."""
    return SecretsManagerVersions(client("secretsmanager"))


def handler(event: dict[str, Any], context: object) -> None:
    secret_id, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    done = rotate(store(), secret_id, token, step)
    logger.info("%s of %s: %s", step, secret_id, done)
