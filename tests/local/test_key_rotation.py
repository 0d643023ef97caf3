"""The signing key rotated under load against the local system (`entrix local` in process), as
in production: Secrets Manager's RotateSecret runs the rotation function's four steps, clients
keep calling the API with tokens obtained as `entrix token` obtains them, and no valid token is
refused (issue 19).

The system is synthesized with short caches so the whole run takes seconds: the authorizer keeps
a key SECRET_TTL seconds, API Gateway an Allow AUTHORIZER_TTL seconds; the signers' margin on
top of the verifiers' TTL (entrix.aws.signing_keys.PROPAGATION_MARGIN_SECONDS, 60 s) is
shortened likewise, for the signers of this test only. Client tokens live CLIENT_TOKEN_SECONDS.

What happens, with real time passing (every wait is for a condition, bounded generously):
1. four clients send GET /orders (every third request of the fresh ones a POST): two keep the
   token they got before the rotation until it expires, then ask for another; two ask for a new
   token for every request;
2. the key is rotated (K0 -> K1); tokens keep carrying K0 until K1 is older than the signers'
   delay (SECRET_TTL + margin), then K1;
3. once the last K0 token handed to a client has expired, the key is rotated again (K1 -> K2):
   K0 is retired, and a K0 token still within its lifetime (kept aside, never used by the
   clients) is refused from then on;
4. the clients go on until tokens carry K2.
Every request of every client carried a token within its lifetime: none may be refused.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from aws_cdk import App

from entrix.aws import signing_keys
from entrix.local import call_log, harness
from entrix.local.iam.model import StackModel
from entrix.local.runtime import LocalSystem
from entrix.local.synth import STACK_NAME, cdk_context, project_root
from entrix.token_command import AUTHORIZER_HANDLER, sign_for_function
from infra.config import ServiceConfig
from infra.stacks.service import ServiceStack
from tests.permissions.edges import call_edges, denied

SECRET_TTL = 2
AUTHORIZER_TTL = 1
MARGIN = 2.0
SIGNER_DELAY = SECRET_TTL + MARGIN
CLIENT_TOKEN_SECONDS = 8
# The token kept aside to show the retirement: still within its lifetime when it is refused.
PROBE_TOKEN_SECONDS = 600
MAX_LIFETIME = 900
# Generous bounds for each wait on a loaded 2-core machine.
BOUND_SECONDS = 90
ROTATE_KEY = "entrix.handlers.rotate_key.handler"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service stack with short caches and token lifetimes (everything else as cdk.json)."""
    outdir = tmp_path_factory.mktemp("cdk.out-rotation")
    context = {
        **cdk_context(project_root()),
        "aws:cdk:bundling-stacks": [],
        "entrix:secret_cache_ttl_seconds": SECRET_TTL,
        "entrix:authorizer_cache_ttl_seconds": AUTHORIZER_TTL,
        "entrix:max_token_lifetime_seconds": MAX_LIFETIME,
    }
    app = App(context=context, outdir=str(outdir))
    ServiceStack(app, STACK_NAME, config=ServiceConfig.from_context(app.node))
    app.synth()
    return outdir / f"{STACK_NAME}.template.json"


@dataclass
class Request:
    client: str
    method: str
    kid: str
    expires: float
    sent: float
    status: int


@dataclass
class Issued:
    kid: str
    asked: float  # before the signer read the secret
    got: float  # after it signed


@dataclass
class Run:
    system: LocalSystem
    secret_arn: str
    requests: list[Request] = field(default_factory=list)
    issued: list[Issued] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The kid of each request sent and not yet answered, by client.
    in_flight: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # One client per service, made here: boto3 clients are thread-safe, their making is not.
        for service in ("lambda", "secretsmanager"):
            self._clients[service] = self.system.endpoint.client(service)
        self.authorizer = harness.function_with_handler(self.system, AUTHORIZER_HANDLER)

    def token(self, subject: str, seconds: int = CLIENT_TOKEN_SECONDS) -> tuple[str, Issued]:
        """A token as `entrix token` signs it: the authorizer's settings, the current and
        previous versions read now, `signing_version`'s choice."""
        asked = time.time()
        token = sign_for_function(
            lambda service, _region: self._clients[service],
            self.system.region,
            self.authorizer,
            subject,
            seconds,
        )
        issued = Issued(jwt.get_unverified_header(token)["kid"], asked, time.time())
        with self.lock:
            self.issued.append(issued)
        return token, issued

    def call(self, method: str, token: str, body: Any = None) -> int:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.system.api_url}/orders",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                reply.read()
                return int(reply.status)
        except urllib.error.HTTPError as error:
            error.read()
            return int(error.code)

    def stages(self) -> dict[str, list[str]]:
        versions = self._clients["secretsmanager"].describe_secret(SecretId=self.secret_arn)
        return {v: sorted(s) for v, s in versions["VersionIdsToStages"].items() if s}

    def current(self) -> tuple[str, float]:
        reply = self._clients["secretsmanager"].get_secret_value(
            SecretId=self.secret_arn, VersionStage="AWSCURRENT"
        )
        return reply["VersionId"], reply["CreatedDate"].timestamp()


def wait_for(condition: Callable[[], bool], what: str, bound: float = BOUND_SECONDS) -> float:
    """Until `condition()` holds (checked every 0.2 s); how long that took. Fails past `bound`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > bound:
            pytest.fail(f"not within {bound} s: {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def client_loop(run: Run, name: str, fresh: bool, stop: threading.Event) -> None:
    """One client: a fresh token for every request, or one kept until it expires."""
    token, issued = run.token(name)
    expires = issued.asked + CLIENT_TOKEN_SECONDS
    for number in itertools.count():
        if stop.is_set():
            return
        if fresh or time.time() > expires - 1:
            token, issued = run.token(name)
            expires = issued.asked + CLIENT_TOKEN_SECONDS
        method = "POST" if fresh and number % 3 == 2 else "GET"
        body = (
            [{"record_id": f"{name}-{number}", "parameter_1": "a", "parameter_2": 1}]
            if method == "POST"
            else None
        )
        with run.lock:
            run.in_flight[name] = issued.kid
        sent = time.time()
        status = run.call(method, token, body)
        with run.lock:
            del run.in_flight[name]
            run.requests.append(Request(name, method, issued.kid, expires, sent, status))
        time.sleep(0.05)


@contextlib.contextmanager
def clients(run: Run) -> Iterator[threading.Event]:
    stop = threading.Event()
    threads = [
        threading.Thread(target=client_loop, args=(run, name, fresh, stop), daemon=True)
        for name, fresh in (
            ("rot-holder-1", False),
            ("rot-holder-2", False),
            ("rot-fresh-1", True),
            ("rot-fresh-2", True),
        )
    ]
    for thread in threads:
        thread.start()
    try:
        yield stop
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)


def test_rotating_the_key_twice_under_load_refuses_no_valid_token(
    template: Path, monkeypatch: pytest.MonkeyPatch, record_property: Callable[[str, Any], None]
) -> None:
    monkeypatch.setattr(signing_keys, "PROPAGATION_MARGIN_SECONDS", MARGIN)
    started = time.monotonic()
    with harness.in_process(template) as system, call_log.recording() as calls:
        (secret_arn,) = {
            s.environment["JWT_SECRET_ARN"]
            for s in harness.deployment_of(system).functions.values()
            if s.handler == AUTHORIZER_HANDLER
        }
        run = Run(system, secret_arn)
        k0, _ = run.current()
        # The schedule does not rotate on deploy (RotateImmediatelyOnUpdate false): one version.
        assert run.stages() == {k0: ["AWSCURRENT"]}
        probe, probe_issued = run.token("rot-probe", PROBE_TOKEN_SECONDS)
        assert probe_issued.kid == k0
        assert run.call("GET", probe) == 200
        secrets = run._clients["secretsmanager"]
        with clients(run):
            wait_for(lambda: len(run.requests) >= 20, "20 requests before the rotation")

            # 1: K0 -> K1, as `aws secretsmanager rotate-secret --secret-id` starts it.
            secrets.rotate_secret(SecretId=secret_arn)
            k1, k1_created = run.current()
            assert run.stages() == {k0: ["AWSPREVIOUS"], k1: ["AWSCURRENT"]}
            wait_for(lambda: any(i.kid == k1 for i in run.issued), "a token signed with K1")
            last_k0 = max(i.got for i in run.issued if i.kid == k0)

            # 2: once every K0 token a client holds has expired (and no request sent with one
            # before is still on its way), K1 -> K2 retires K0.
            def k0_gone() -> bool:
                with run.lock:
                    in_flight = k0 in run.in_flight.values()
                return time.time() > last_k0 + CLIENT_TOKEN_SECONDS and not in_flight

            wait_for(k0_gone, "the clients' K0 tokens to expire")
            before_retirement = time.time()
            secrets.rotate_secret(SecretId=secret_arn)
            k2, k2_created = run.current()
            assert run.stages() == {k1: ["AWSPREVIOUS"], k2: ["AWSCURRENT"]}
            refused_after = wait_for(
                lambda: run.call("GET", probe) == 401, "the retired key's token to be refused"
            )
            wait_for(lambda: any(i.kid == k2 for i in run.issued), "a token signed with K2")
            wait_for(
                lambda: sum(r.kid == k2 for r in run.requests) >= 10, "10 requests with K2 tokens"
            )
        assert time.time() - before_retirement < PROBE_TOKEN_SECONDS  # the probe was unexpired
        edges = call_edges(
            StackModel.load(system.template_path),
            harness.deployment_of(system),
            [c for c in calls if _handler(system, c.function) == ROTATE_KEY],
        )
    elapsed = time.monotonic() - started

    # No request with a token within its lifetime was refused; none failed otherwise.
    statuses = {(r.method, r.status) for r in run.requests}
    refused = [r for r in run.requests if r.status in (401, 403) and r.sent < r.expires]
    assert not refused, refused[:5]
    assert statuses <= {("GET", 200), ("POST", 201)}, statuses
    by_kid = {kid: sum(r.kid == kid for r in run.requests) for kid in (k0, k1, k2)}
    assert all(count > 0 for count in by_kid.values()), by_kid
    # Holders used tokens from before the first rotation after it: K0 while K1 was current.
    assert any(r.kid == k0 and r.sent > k1_created + 1 for r in run.requests)

    # The signer's rule: a new key only once older than the verifiers' TTL plus the margin.
    for created, old, new in ((k1_created, k0, k1), (k2_created, k1, k2)):
        for issued in run.issued:
            if issued.got < created + SIGNER_DELAY and issued.asked > created:
                assert issued.kid == old, (issued, created)
            if issued.asked >= created + SIGNER_DELAY:
                assert issued.kid in (new, k2), (issued, created)

    # The rotation function's calls, each allowed by its role in the template.
    assert {e.requests[0].action for e in edges} == {
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    }
    assert not denied(edges)

    record_property("seconds", round(elapsed, 1))
    record_property("requests", len(run.requests))
    record_property("tokens", len(run.issued))
    record_property("requests_by_key", list(by_kid.values()))
    record_property("retired_key_refused_after_seconds", round(refused_after, 2))
    print(
        f"rotation run: {elapsed:.1f} s, {len(run.requests)} requests "
        f"(K0 {by_kid[k0]}, K1 {by_kid[k1]}, K2 {by_kid[k2]}), {len(run.issued)} tokens, "
        f"retired key refused {refused_after:.2f} s after the second rotation"
    )


def _handler(system: LocalSystem, function_name: str) -> str:
    spec = harness.deployment_of(system).functions.get(function_name)
    return spec.handler if spec else ""
