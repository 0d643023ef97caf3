"""Secrets Manager reads for Lambda code, cached in memory and free of boto3 at import time.

Inside Lambda with the AWS Parameters and Secrets Lambda Extension (its port in
PARAMETERS_SECRETS_EXTENSION_HTTP_PORT) the secret comes over localhost HTTP and boto3 is never
loaded; everywhere else (no extension, the local system) boto3 is imported on the first fetch.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from entrix import settings

logger = logging.getLogger(__name__)

EXTENSION_PORT_VARIABLE = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
EXTENSION_TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"  # noqa: S105 - a header name
EXTENSION_TIMEOUT_SECONDS = 3.0


# How long past its TTL a secret read before is used when it cannot be read again.
STALE_GRACE_SECONDS = 15 * 60
STALE_RETRY_SECONDS = 5.0

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"


class SecretVersion(NamedTuple):
    """One version of a secret: its id (a signing key's `kid`), its string, when it was made."""

    version_id: str
    secret_string: str
    created: float


# secret id, staging label -> that version, or None when the label is on no version
VersionFetch = Callable[[str, str], "SecretVersion | None"]


class SecretCache:
    """Secret versions by id and staging label, each fetched again only once `ttl_seconds` have
    passed (or when asked to refresh).

    A rotated secret is therefore picked up within one TTL, and a warm function fetches at most
    once per TTL however many requests it serves. Without `ttl_seconds`, the TTL is the
    function's SECRET_CACHE_TTL_SECONDS, read when the cache is made.
    """

    def __init__(
        self,
        ttl_seconds: float | None = None,
        fetch: VersionFetch | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds is None:
            ttl_seconds = settings.SECRET_CACHE_TTL_SECONDS.read()
        self._ttl = max(0.0, ttl_seconds)
        self._fetch = fetch or fetch_secret_version
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[SecretVersion | None, float]] = {}
        self._stale_until: dict[tuple[str, str], float] = {}

    def get(self, secret_id: str) -> str:
        """The string of the secret's current version."""
        version = self.version(secret_id)
        if version is None:
            # Secrets Manager answers both with ResourceNotFoundException.
            raise ValueError(f"secret {secret_id} does not exist or has no {CURRENT} version")
        return version.secret_string

    def version(
        self, secret_id: str, stage: str = CURRENT, *, refresh: bool = False
    ) -> SecretVersion | None:
        """The version `stage` labels (None if none), from the cache unless it is older than
        the TTL or `refresh` is set."""
        now = self._clock()
        key = (secret_id, stage)
        entry = self._entries.get(key)
        if entry is not None and now < entry[1] and not refresh:
            return entry[0]
        if entry is not None and now < self._stale_until.get(key, now):
            return entry[0]
        try:
            value = self._fetch(secret_id, stage)
        except Exception:
            # While Secrets Manager cannot be read, nobody can rotate the key or revoke a token
            # either: the last value read stays right, for STALE_GRACE_SECONDS past its TTL, and
            # is read again only every STALE_RETRY_SECONDS meanwhile (a request does not wait
            # for a read that fails).
            if entry is None or now >= entry[1] + STALE_GRACE_SECONDS:
                raise
            logger.exception("secret %s (%s) not read: using the last value read", secret_id, stage)
            self._stale_until[key] = now + STALE_RETRY_SECONDS
            return entry[0]
        self._entries[key] = (value, now + self._ttl)
        self._stale_until.pop(key, None)
        return value


def fetch_secret_version(secret_id: str, stage: str = CURRENT) -> SecretVersion | None:
    """The version `stage` labels of `secret_id` (a name or an ARN), through the extension when
    present; None when the label is on no version (a secret never rotated has no AWSPREVIOUS)."""
    port = os.environ.get(EXTENSION_PORT_VARIABLE)
    response = (
        _fetch_from_extension(secret_id, stage, port)
        if port
        else _fetch_with_boto3(secret_id, stage)
    )
    if response is None:
        return None
    secret_string = response.get("SecretString")
    if not isinstance(secret_string, str):
        raise ValueError(f"secret {secret_id} has no SecretString")
    # boto3 parses CreatedDate into a datetime; the extension passes the wire's epoch seconds.
    created = response.get("CreatedDate") or 0
    return SecretVersion(
        version_id=str(response.get("VersionId", "")),
        secret_string=secret_string,
        created=created if isinstance(created, int | float) else created.timestamp(),
    )


def _fetch_from_extension(secret_id: str, stage: str, port: str) -> dict[str, Any] | None:
    """GET the secret from the extension; it answers with the GetSecretValue response as JSON.

    http.client rather than urllib.request: on python3.13, urlopen() builds an HTTPS handler
    whose default SSL context loads the CA bundle (about 90 ms on the bench machine), even for
    this plain http request. Secrets Manager's ResourceNotFoundException (no version has the
    label) is None; any other refusal raises OSError.
    """
    from http.client import HTTPConnection
    from urllib.parse import quote

    connection = HTTPConnection("localhost", int(port), timeout=EXTENSION_TIMEOUT_SECONDS)
    try:
        connection.request(
            "GET",
            f"/secretsmanager/get?secretId={quote(secret_id, safe='')}"
            f"&versionStage={quote(stage, safe='')}",
            headers={EXTENSION_TOKEN_HEADER: os.environ.get("AWS_SESSION_TOKEN", "")},
        )
        reply = connection.getresponse()
        body = reply.read()
    finally:
        connection.close()
    if reply.status in (400, 404) and b"ResourceNotFoundException" in body:
        return None
    if reply.status != 200:
        raise OSError(
            f"the secrets extension answered {reply.status} {reply.reason} for {secret_id}"
        )
    document: dict[str, Any] = json.loads(body)
    return document


def _fetch_with_boto3(secret_id: str, stage: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    client = _client(region_of_arn(secret_id), os.environ.get("AWS_ENDPOINT_URL"))
    try:
        response: dict[str, Any] = dict(
            client.get_secret_value(SecretId=secret_id, VersionStage=stage)
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return response


@functools.cache
def _client(region: str | None, endpoint_url: str | None) -> Any:
    """One Secrets Manager client per region and endpoint, created on first use (boto3 costs
    ~150 ms). The endpoint is part of the key because a process hosting several local systems
    (tests) must not reach one system's secrets through another's client."""
    import boto3

    return boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)


def region_of_arn(secret_id: str) -> str | None:
    """The region inside a secret ARN (None for a bare name), so clients ask where it lives."""
    parts = secret_id.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == "secretsmanager" and parts[3]:
        return parts[3]
    return None
