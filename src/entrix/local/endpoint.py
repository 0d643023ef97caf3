"""The embedded AWS endpoint: moto's threaded server, speaking the real AWS wire protocols.

boto3 and the aws CLI work against it with `--endpoint-url`. moto executes state machines when
its `stepfunctions.execute_state_machine` option is on, and their Lambda tasks call back into
this server on `localhost:$MOTO_PORT`, so `MOTO_PORT` must be the server's port. Lambda
invocations run in this process through `entrix.local.lambda_runner`.
"""

from __future__ import annotations

import decimal
import json
import logging
import os
import re
import socket
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.dynamodb.types import DYNAMODB_CONTEXT
from botocore.config import Config

from entrix.local.lambda_runner import moto_lambdas_in_process
from entrix.local.rotation import moto_rotation_keeps_its_function

ACCOUNT_ID = "123456789012"  # moto's default account
# Clients of the embedded endpoint sign with these; the endpoint accepts any credentials.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "entrix-local",
    "AWS_SECRET_ACCESS_KEY": "entrix-local",
}


class PortInUse(Exception):
    """The requested port is taken; the message says which and how to choose another."""


def client_host(host: str) -> str:
    """The address clients use to reach a server bound to `host` (a wildcard means loopback)."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - a comparison


def check_port_free(host: str, port: int, flag: str) -> None:
    """Fail early and clearly, instead of leaving a server thread that cannot bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(
                f"{host}:{port} is not available ({error}); choose another {flag}"
            ) from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port of `host` that nothing listens on now (the system binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def local_client(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 client of the embedded endpoint (no retries: a local failure is a real one)."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1}),
    )


# (rest api id, stage name) -> None: flush that stage's authorizer cache.
FlushListener = Callable[[str, str], None]
# The listener of each running endpoint, by its port.
_flush_listeners: dict[int, FlushListener] = {}
_FLUSH_PATH = re.compile(r"/restapis/(?P<api>[^/]+)/stages/(?P<stage>[^/]+)/cache/authorizers$")


def _flush_stage_authorizers_cache(request: Any, full_url: str, headers: Any) -> Any:
    """FlushStageAuthorizersCache, which moto lacks: the local API Gateway keeps the cache, so the
    endpoint whose port was called tells its listener. 202 with no body, as AWS answers."""
    url = urlsplit(full_url)
    match = _FLUSH_PATH.search(url.path)
    listener = _flush_listeners.get(url.port or 80)
    if match is None or listener is None:
        return 404, {}, json.dumps({"message": f"no API is served at {full_url}"})
    listener(match["api"], match["stage"])
    return 202, {}, ""


def _serve_authorizer_cache_flushes() -> None:
    """Add the flush route to moto's API Gateway routes (before its server app is built)."""
    from moto.apigateway import urls

    urls.url_paths.setdefault(
        "{0}/restapis/(?P<function_id>[^/]+)/stages/(?P<stage_name>[^/]+)/cache/authorizers$",
        _flush_stage_authorizers_cache,
    )


class AwsEndpoint:
    """moto's server on host:port, executing state machines and running Lambdas in process."""

    def __init__(
        self, host: str, port: int, region: str, *, on_flush: FlushListener | None = None
    ) -> None:
        self.host = host
        self.on_flush = on_flush
        self.port = port
        self.region = region
        self.url = f"http://{client_host(host)}:{port}"
        self._server: Any = None
        self._saved_environment: dict[str, str | None] = {}
        self._lambdas = moto_lambdas_in_process()
        self._rotation = moto_rotation_keeps_its_function()
        self._patched = False

    def start(self) -> None:
        """Start serving; until `stop()`, this process's AWS SDK is pointed at the endpoint, as
        the handlers running here must only ever reach the local resources."""
        check_port_free(self.host, self.port, "--aws-port")
        changes: dict[str, str | None] = {
            **LOCAL_CREDENTIALS,
            "AWS_SESSION_TOKEN": None,
            "AWS_PROFILE": None,
            "MOTO_PORT": str(self.port),
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # X-Ray is not emulated; Powertools' tracer would otherwise try to reach it.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        self._saved_environment = {name: os.environ.get(name) for name in changes}
        _set_environment(changes)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # moto's state machine interpreter logs each task failure as an error of 1-4 KB (its
        # internal event dump), also those a Retry or Catch handles; a run's outcome and error
        # reach the console through the runtime's run watcher instead. Its other errors (a
        # fault of the interpreter itself) still show.
        interpreter = logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component")
        if _task_failure_dumps not in interpreter.filters:
            interpreter.addFilter(_task_failure_dumps)
        from moto.server import ThreadedMotoServer

        # moto's index queries deserialize items through boto3's 38-digit context, which raises
        # Rounded on numbers DynamoDB holds (-3.4028234660E+38 as its 39 digits): GET /orders
        # answered 500 for such an order. Inexact stays trapped.
        DYNAMODB_CONTEXT.traps[decimal.Rounded] = False

        self._lambdas.__enter__()
        self._rotation.__enter__()
        self._patched = True
        _serve_authorizer_cache_flushes()
        if self.on_flush is not None:
            _flush_listeners[self.port] = self.on_flush
        try:
            self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
            self._server.start()
            request = urllib.request.Request(  # noqa: S310 - our own http endpoint
                f"{self.url}/moto-api/config",
                data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
                reply.read()
        except BaseException:
            self.stop()
            raise

    def client(self, service: str) -> Any:
        return local_client(service, self.url, self.region)

    def stop(self) -> None:
        """Stop serving, release the port and restore this process's environment."""
        if self._server is not None:
            self._server.stop()
            # ThreadedMotoServer.stop() leaves the listening socket open: close it to free the port.
            if self._server._server is not None:
                self._server._server.server_close()
            self._server = None
        _flush_listeners.pop(self.port, None)
        if self._patched:
            self._rotation.__exit__(None, None, None)
            self._lambdas.__exit__(None, None, None)
            self._patched = False
        _set_environment(self._saved_environment)
        self._saved_environment = {}


def _task_failure_dumps(record: logging.LogRecord) -> bool:
    """False for moto's record of a state's failure event (a `FailureEventException`)."""
    return not record.getMessage().startswith("Exception=FailureEventException")


def _set_environment(values: dict[str, str | None]) -> None:
    """Set each variable, or remove it where the value is None."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
