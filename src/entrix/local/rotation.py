"""RotateSecret as Secrets Manager runs it, on moto.

Secrets Manager rotates a secret whose rotation is configured with the function it was configured
with, when RotateSecret names none (`aws secretsmanager rotate-secret --secret-id ...`, the
runbook's command, and every scheduled rotation). moto 5.2.5 instead forgets the function and
rotates by itself, leaving a new AWSCURRENT version with no value. `moto_rotation_keeps_its_
function()` passes the configured function on in that case; the embedded endpoint
(entrix.local.endpoint) enters it for as long as it serves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def moto_rotation_keeps_its_function() -> Iterator[None]:
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.rotate_secret

    def rotate_secret(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> str:
        if (
            not kwargs.get("rotation_lambda_arn")
            and not args
            and self._is_valid_identifier(secret_id)
        ):
            configured = getattr(self.secrets[secret_id], "rotation_lambda_arn", "")
            if configured:
                kwargs["rotation_lambda_arn"] = configured
        result: str = original(self, secret_id, *args, **kwargs)
        return result

    SecretsManagerBackend.rotate_secret = rotate_secret  # type: ignore[method-assign]
    try:
        yield
    finally:
        SecretsManagerBackend.rotate_secret = original  # type: ignore[method-assign]
