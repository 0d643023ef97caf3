"""The API's REQUEST authorizer: a valid, unrevoked Bearer JWT gets an Allow policy, anything
else a 401.

It imports neither boto3 nor pydantic. In Lambda (and under `entrix local`) the signing keys and
the deny list come from the Parameters and Secrets Extension over localhost (entrix.aws.secrets),
so a cold request pays for PyJWT, the standard library and two local HTTP requests; without the
extension, boto3 is imported on the first fetch. With JWT_KEY_SOURCE=jwks the keys are the
identity provider's (entrix.issuer_keys): PyJWT with cryptography and one fetch of its JWK set
instead of the signing key's read, a fetch this module's import starts (`JWKS_PREFETCH`).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from entrix import settings
from entrix.jwks_fetch import FETCH_TIMEOUT_SECONDS, JwksPrefetch


def start_jwks_prefetch() -> JwksPrefetch | None:
    """In jwks mode, the JWK set's fetch started in a thread (entrix.jwks_fetch), for the first
    request to take; None in the default mode, or where the settings are wrong (the first
    request then fails on them, as it would without a prefetch)."""
    try:
        if settings.JWT_KEY_SOURCE.read() != "jwks":
            return None
        return JwksPrefetch(
            settings.JWT_JWKS_URL.read(),
            allow_loopback_http=settings.JWT_JWKS_ALLOW_LOOPBACK_HTTP.read(),
            timeout=FETCH_TIMEOUT_SECONDS,
        )
    except (settings.SettingError, ValueError):
        return None


# Started by this module's import, Lambda's init, before the imports below: the fetch's trust
# store load and network wait overlap PyJWT's and cryptography's import (docs/cold-start.md).
JWKS_PREFETCH = start_jwks_prefetch()

from entrix.aws.secrets import SecretCache  # noqa: E402
from entrix.aws.signing_keys import SigningKeys  # noqa: E402
from entrix.issuer_keys import IssuerKeys  # noqa: E402
from entrix.revocations import DenyList, parse_deny_list  # noqa: E402
from entrix.telemetry import api_request_id, correlated  # noqa: E402
from entrix.tokens import (  # noqa: E402
    ISSUER_ALGORITHMS,
    SHARED_KEY_ALGORITHM,
    KeyLookup,
    TokenError,
    TokenRules,
    bearer_token,
    verify_token,
)

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


@functools.cache
def secret_cache() -> SecretCache:
    """The signing keys' cache, made on the first invocation (with the function's
    SECRET_CACHE_TTL_SECONDS) and kept for the container's life. A test clears it (and the
    others below) with `reset()`."""
    return SecretCache()


@functools.cache
def key_lookup() -> KeyLookup:
    """kid -> key, from the configured key source: the HS256 keys of the signing secret, or
    the identity provider's public keys from its JWKS URL."""
    if settings.JWT_KEY_SOURCE.read() == "jwks":
        return IssuerKeys(
            settings.JWT_JWKS_URL.read(),
            allow_loopback_http=settings.JWT_JWKS_ALLOW_LOOPBACK_HTTP.read(),
            prefetch=JWKS_PREFETCH,
        ).key_for
    return SigningKeys(settings.JWT_SECRET_ARN.read(), secret_cache()).key_for


@functools.cache
def token_rules() -> TokenRules:
    return TokenRules(
        issuer=settings.JWT_ISSUER.read(),
        audience=settings.JWT_AUDIENCE.read(),
        max_lifetime_seconds=settings.MAX_TOKEN_LIFETIME_SECONDS.read(),
        # Never HS256 with an issuer's keys: a public key is no secret.
        algorithms=(
            ISSUER_ALGORITHMS
            if settings.JWT_KEY_SOURCE.read() == "jwks"
            else (SHARED_KEY_ALGORITHM,)
        ),
    )


@functools.cache
def revocations_cache() -> SecretCache:
    """The deny list is read again every REVOCATIONS_CACHE_TTL_SECONDS: a revocation reaches a
    warm authorizer within that time (and API Gateway's cached Allows once flushed)."""
    return SecretCache(ttl_seconds=settings.REVOCATIONS_CACHE_TTL_SECONDS.read())


@functools.cache
def _parsed(text: str) -> DenyList:
    return parse_deny_list(text)


def deny_list() -> DenyList:
    return _parsed(revocations_cache().get(settings.JWT_REVOCATIONS_SECRET_ARN.read()))


def reset() -> None:
    """Forget every cache, as a new container would (tests)."""
    for cached in (secret_cache, key_lookup, token_rules, revocations_cache, _parsed):
        cached.cache_clear()


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Allow the caller on every method of this API stage, or raise Unauthorized (HTTP 401)."""
    with correlated(api_request_id(event)):
        return authorize(event)


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    try:
        token = bearer_token(event.get("headers"), event.get("multiValueHeaders"))
        claims = verify_token(token, key_lookup(), token_rules())
        # Read only for a token that is otherwise valid: garbage costs no deny-list fetch.
        refusal = deny_list().refusal(claims)
        if refusal:
            raise TokenError(refusal)
    except TokenError as refusal:
        logger.info("token refused: %s", refusal)
        # API Gateway turns exactly this message into a 401 response.
        raise Exception("Unauthorized") from None
    subject = str(claims["sub"])
    logger.info("token %s of %s allowed", claims["jti"], subject)
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
        "context": {"sub": subject, "exp": int(claims["exp"]), "jti": str(claims["jti"])},
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
