"""`entrix local` started inside the calling process, for the benchmarks and the tests.

Handlers run in this process too, so a caller can count the system's AWS requests, time its
invocations or inject a fault into the very module that serves the API. A process keeps state
that a new system must not inherit: moto's backends (the same template's resources would
"already exist"), cached Secrets Manager clients and handler modules imported earlier (their
clients and names are from then). `in_process` resets all three, and restores the process
environment, which the runtime points at its endpoint, when the system stops.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from moto.moto_api._internal import moto_api_backend

from entrix.aws import secrets
from entrix.local.deploy import Deployment
from entrix.local.endpoint import free_port
from entrix.local.lambda_runner import applied_environment, runtime_environment
from entrix.local.runtime import TTL_SWEEP_SECONDS, LocalOptions, LocalSystem
from entrix.local.synth import STACK_NAME, ensure_template, project_root
from entrix.token_command import AUTHORIZER_HANDLER, sign_for_function

HOST = "127.0.0.1"
TOKEN_SECONDS = 3600


@contextlib.contextmanager
def in_process(
    template_path: Path | None = None,
    *,
    show_notification: Callable[[str, str], None] = lambda _topic, _text: None,
    ttl_sweep_seconds: float = TTL_SWEEP_SECONDS,
) -> Iterator[LocalSystem]:
    """The system from `template_path` (default: the project's, synthesized when stale) on two
    free ports of 127.0.0.1, with no schedule (the caller starts each run); stopped afterwards."""
    saved_environment = dict(os.environ)
    moto_api_backend.reset()
    secrets._client.cache_clear()
    if template_path is None:
        template_path, _ = ensure_template(project_root())
    options = LocalOptions(
        host=HOST,
        port=free_port(HOST),
        aws_port=free_port(HOST),
        schedule_seconds=None,
        ttl_sweep_seconds=ttl_sweep_seconds,
    )
    system = LocalSystem(
        template_path,
        options,
        show_run=lambda _summary: None,
        show_notification=show_notification,
        stack_name=STACK_NAME,
    )
    try:
        system.start()
        for spec in deployment_of(system).functions.values():
            module = sys.modules.get(spec.handler.rpartition(".")[0])
            if module is not None:
                with applied_environment(runtime_environment(spec)):
                    importlib.reload(module)
        yield system
    finally:
        system.stop()
        secrets._client.cache_clear()
        os.environ.clear()
        os.environ.update(saved_environment)


def deployment_of(system: LocalSystem) -> Deployment:
    """What a started system deployed."""
    if system.deployment is None:
        raise RuntimeError("the local system is not started")
    return system.deployment


def function_with_handler(system: LocalSystem, handler: str) -> str:
    """The name of the deployed function whose handler is `handler` (there must be one)."""
    (name,) = [
        name for name, spec in deployment_of(system).functions.items() if spec.handler == handler
    ]
    return name


def sign_token(
    system: LocalSystem, subject: str, client: Callable[[str], Any] | None = None
) -> str:
    """A token the deployed authorizer accepts, as `entrix token` signs it; `client(service)`
    makes the clients that read its configuration and secret (default: the endpoint's)."""
    make_client = client or system.endpoint.client
    return sign_for_function(
        lambda service, _region: make_client(service),
        system.region,
        function_with_handler(system, AUTHORIZER_HANDLER),
        subject,
        TOKEN_SECONDS,
    )
