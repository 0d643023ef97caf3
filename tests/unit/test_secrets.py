"""The Secrets Manager adapter: TTL cache, the Lambda extension path and the boto3 fallback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from moto import mock_aws

from entrix import settings
from entrix.aws import secrets
from entrix.aws.secrets import (
    CURRENT,
    PREVIOUS,
    SecretCache,
    SecretVersion,
    fetch_secret_version,
    region_of_arn,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_fetch() -> tuple[list[str], Any]:
    fetched: list[str] = []

    def fetch(secret_id: str, stage: str) -> SecretVersion:
        fetched.append(secret_id)
        return SecretVersion(f"v{len(fetched)}", f"value-{len(fetched)}", 0.0)

    return fetched, fetch


def test_cache_fetches_again_only_after_the_ttl() -> None:
    clock = Clock()
    fetched, fetch = counting_fetch()
    cache = SecretCache(ttl_seconds=300, fetch=fetch, clock=clock)

    assert cache.get("arn-a") == "value-1"
    clock.now += 299.9
    assert cache.get("arn-a") == "value-1"
    assert fetched == ["arn-a"]

    clock.now += 0.1
    assert cache.get("arn-a") == "value-2"
    assert fetched == ["arn-a", "arn-a"]
    clock.now += 100
    assert cache.get("arn-a") == "value-2"


def test_cache_keeps_each_secret_separately() -> None:
    fetched, fetch = counting_fetch()
    cache = SecretCache(fetch=fetch, clock=Clock())

    cache.get("arn-a")
    cache.get("arn-b")
    cache.get("arn-a")

    assert fetched == ["arn-a", "arn-b"]


def test_cache_keeps_each_stage_separately_and_refreshes_on_request() -> None:
    asked: list[tuple[str, str]] = []

    def fetch(secret_id: str, stage: str) -> SecretVersion | None:
        asked.append((secret_id, stage))
        return None if stage == PREVIOUS else SecretVersion(f"v{len(asked)}", "key", 0.0)

    cache = SecretCache(ttl_seconds=300, fetch=fetch, clock=Clock())

    assert cache.version("arn-a") == SecretVersion("v1", "key", 0.0)
    assert cache.version("arn-a", PREVIOUS) is None
    assert cache.version("arn-a", PREVIOUS) is None  # an absent label is cached too
    assert cache.version("arn-a", CURRENT, refresh=True) == SecretVersion("v3", "key", 0.0)
    assert asked == [("arn-a", CURRENT), ("arn-a", PREVIOUS), ("arn-a", CURRENT)]


def test_a_secret_without_a_current_version_is_an_error() -> None:
    cache = SecretCache(fetch=lambda secret_id, stage: None, clock=Clock())

    with pytest.raises(ValueError, match="no AWSCURRENT"):
        cache.get("arn-a")


def test_zero_ttl_fetches_every_time() -> None:
    fetched, fetch = counting_fetch()
    cache = SecretCache(ttl_seconds=0, fetch=fetch, clock=Clock())

    cache.get("arn-a")
    cache.get("arn-a")

    assert len(fetched) == 2


def test_a_failed_fetch_is_not_cached() -> None:
    calls = 0

    def flaky(secret_id: str, stage: str) -> SecretVersion:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("throttled")
        return SecretVersion("v1", "value", 0.0)

    cache = SecretCache(fetch=flaky, clock=Clock())
    with pytest.raises(ConnectionError):
        cache.get("arn-a")

    assert cache.get("arn-a") == "value"


def test_a_value_read_before_is_used_while_secrets_manager_cannot_be_read() -> None:
    """Nobody can rotate or revoke while Secrets Manager is down: the last value stays right,
    for a bounded time, and a failing read is retried only every few seconds."""
    clock, attempts = Clock(), []
    failing = False

    def fetch(secret_id: str, stage: str) -> SecretVersion:
        attempts.append(clock.now)
        if failing:
            raise ConnectionError("Secrets Manager is unavailable")
        return SecretVersion("v1", "value", 0.0)

    cache = SecretCache(ttl_seconds=30, fetch=fetch, clock=clock)
    assert cache.get("arn-a") == "value"
    failing = True
    clock.now += 31
    assert cache.get("arn-a") == "value"  # stale, logged
    clock.now += 1
    assert cache.get("arn-a") == "value"
    assert len(attempts) == 2  # the second request did not wait for another failing read
    clock.now += 5
    assert cache.get("arn-a") == "value"
    assert len(attempts) == 3
    clock.now = 1000.0 + 30 + 15 * 60  # the grace is over: a fault again
    with pytest.raises(ConnectionError):
        cache.get("arn-a")


def test_nothing_read_before_is_a_fault_at_once() -> None:
    def fetch(secret_id: str, stage: str) -> SecretVersion:
        raise ConnectionError("Secrets Manager is unavailable")

    with pytest.raises(ConnectionError):
        SecretCache(fetch=fetch, clock=Clock()).get("arn-a")


@pytest.mark.parametrize(("value", "ttl"), [(None, 300.0), ("", 300.0), ("60", 60.0)])
def test_ttl_from_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, ttl: float
) -> None:
    if value is None:
        monkeypatch.delenv("SECRET_CACHE_TTL_SECONDS", raising=False)
    else:
        monkeypatch.setenv("SECRET_CACHE_TTL_SECONDS", value)

    assert settings.SECRET_CACHE_TTL_SECONDS.read() == ttl


@pytest.mark.parametrize(
    ("secret_id", "region"),
    [
        ("arn:aws:secretsmanager:us-east-2:123456789012:secret:jwt-AbCdEf", "us-east-2"),
        ("entrix-jwt", None),
        ("arn:aws:s3:::bucket", None),
    ],
)
def test_region_of_arn(secret_id: str, region: str | None) -> None:
    assert region_of_arn(secret_id) == region


@mock_aws
def test_fetch_with_boto3_uses_the_region_of_the_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", raising=False)
    secrets._client.cache_clear()
    client = boto3.client("secretsmanager", region_name="us-east-2")
    created = client.create_secret(Name="jwt", SecretString="raw-key")
    arn = created["ARN"]

    current = fetch_secret_version(arn)
    assert current is not None
    assert (current.version_id, current.secret_string) == (created["VersionId"], "raw-key")
    assert current.created > 0
    assert fetch_secret_version(arn, PREVIOUS) is None  # never rotated

    client.put_secret_value(SecretId=arn, SecretString="new-key")
    previous = fetch_secret_version(arn, PREVIOUS)
    assert previous is not None
    assert (previous.version_id, previous.secret_string) == (created["VersionId"], "raw-key")


@mock_aws
def test_a_binary_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", raising=False)
    secrets._client.cache_clear()
    arn = boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
        Name="jwt", SecretBinary=b"\x00\x01"
    )["ARN"]

    with pytest.raises(ValueError, match="SecretString"):
        fetch_secret_version(arn)


class FakeExtension(BaseHTTPRequestHandler):
    """Answers like the Parameters and Secrets Lambda Extension; records what it was asked."""

    requests: ClassVar[list[tuple[str, dict[str, list[str]], str | None]]] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        token = self.headers.get("X-Aws-Parameters-Secrets-Token")
        query = parse_qs(url.query)
        FakeExtension.requests.append((url.path, query, token))
        if token != "session-token":
            self.send_response(401)
            self.end_headers()
            return
        if query["versionStage"] == [PREVIOUS]:
            # What the extension passes on from Secrets Manager for a label on no version.
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"__type":"ResourceNotFoundException","message":"no AWSPREVIOUS"}')
            return
        body = json.dumps(
            {
                "ARN": query["secretId"][0],
                "VersionId": "version-1",
                "SecretString": "ext-key",
                "CreatedDate": 1700000000.5,
            }
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def extension(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    server = HTTPServer(("localhost", 0), FakeExtension)
    # Polled every 10 ms, so that shutdown() returns at once instead of within 0.5 s.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    FakeExtension.requests = []
    monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(server.server_port))
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    yield FakeExtension.requests
    server.shutdown()
    server.server_close()


def test_fetch_through_the_extension_when_its_port_is_set(
    extension: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_boto3(region: str | None) -> Any:
        raise AssertionError("boto3 must not be used when the extension is there")

    monkeypatch.setattr(secrets, "_client", no_boto3)
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jwt/key-AbCdEf"

    assert fetch_secret_version(arn) == SecretVersion("version-1", "ext-key", 1700000000.5)
    assert fetch_secret_version(arn, PREVIOUS) is None
    assert extension == [
        ("/secretsmanager/get", {"secretId": [arn], "versionStage": [stage]}, "session-token")
        for stage in (CURRENT, PREVIOUS)
    ]


def test_an_extension_refusal_is_raised_not_swallowed(
    extension: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "wrong")

    with pytest.raises(OSError, match="401"):
        fetch_secret_version("jwt")
