"""The API's REQUEST authorizer: a valid Bearer JWT gets an Allow policy, anything else a 401.

It imports neither boto3 nor pydantic. In Lambda (and under `entrix local`) the signing key comes
from the Parameters and Secrets Extension over localhost (entrix.aws.secrets), so a cold request
pays for PyJWT, the standard library and one local HTTP request; without the extension, boto3 is
imported on the first fetch.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from entrix import settings
from entrix.aws.secrets import SecretCache
from entrix.telemetry import api_request_id, correlated
from entrix.tokens import TokenError, bearer_token, signing_key_from_secret, verify_token

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


@functools.cache
def secret_cache() -> SecretCache:
    """The signing key's cache, made on the first invocation (with the function's
    SECRET_CACHE_TTL_SECONDS) and kept for the container's life. A test clears it with
    `secret_cache.cache_clear()`."""
    return SecretCache()


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Allow the caller on every method of this API stage, or raise Unauthorized (HTTP 401)."""
    with correlated(api_request_id(event)):
        return authorize(event)


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    try:
        token = bearer_token(event.get("headers"), event.get("multiValueHeaders"))
        key = signing_key_from_secret(secret_cache().get(settings.JWT_SECRET_ARN.read()))
        claims = verify_token(
            token,
            key,
            issuer=settings.JWT_ISSUER.read() or None,
            audience=settings.JWT_AUDIENCE.read() or None,
        )
    except TokenError as refusal:
        logger.info("token refused: %s", refusal)
        # API Gateway turns exactly this message into a 401 response.
        raise Exception("Unauthorized") from None
    subject = str(claims["sub"])
    return {
        "principalId": subject,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": stage_wide_resource(event["methodArn"]),
                }
            ],
        },
        # The order handlers read the owner from `sub`, and refuse the token past `exp` while
        # API Gateway still serves this Allow from its cache (entrix.http.caller).
        "context": {"sub": subject, "exp": int(claims["exp"])},
    }


def stage_wide_resource(method_arn: str) -> str:
    """Every method and path of the called API stage.

    API Gateway caches this policy per Authorization header (300 s), so a policy naming only the
    first method called would deny the same token on the next one.
    `arn:aws:execute-api:eu-west-1:123:api/prod/POST/orders` -> `...:123:api/prod/*/*`.
    """
    prefix, separator, path = method_arn.rpartition(":")
    api_id, _, rest = path.partition("/")
    stage = rest.partition("/")[0]
    if not (separator and prefix.startswith("arn:") and api_id and stage):
        raise ValueError(f"not an execute-api method ARN: {method_arn!r}")
    return f"{prefix}:{api_id}/{stage}/*/*"
