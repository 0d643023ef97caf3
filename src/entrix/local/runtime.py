"""The whole system on one machine, assembled from a synthesized template.

Start order: the embedded AWS endpoint, the local identity provider when the authorizer verifies
an issuer's tokens (JWT_KEY_SOURCE jwks; its private key goes into the local secret
`entrix-local-issuer` for `entrix token`), the permission enforcement (before the deploy, which
can run functions), every template resource in it (functions with the
Parameters and Secrets Extension's layer get the local extension), then the API Gateway
emulation, the TTL sweeper, the stream poller, the console's log (entrix.local.alert_log), the
notification tap, the run watcher and the scheduler. Each notification shown and each run's
summary is also written to the console's log, which `entrix alerts` reads. `stop()` undoes it in
reverse and frees every port.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entrix import settings
from entrix.local import lambda_runner
from entrix.local.alert_log import AlertLog
from entrix.local.apigateway import ApiGateway, ApiServer, RestApi
from entrix.local.deploy import Deployer, Deployment
from entrix.local.endpoint import ACCOUNT_ID, AwsEndpoint, check_port_free, client_host
from entrix.local.iam.enforcement import Enforcer
from entrix.local.iam.model import StackModel
from entrix.local.identity_provider import ISSUER_SECRET_NAME, LocalIdentityProvider, SigningKey
from entrix.local.lambda_runner import Invocation
from entrix.local.notifications import NotificationTap
from entrix.local.pipeline import RunWatcher, Scheduler
from entrix.local.secrets_extension import LocalSecretsExtension, RequestListener
from entrix.local.streams import StreamPoller, TtlDeletions
from entrix.local.synth import stack_region
from entrix.local.template import PseudoParameters, Template
from entrix.local.ttl import TtlSweeper

logger = logging.getLogger(__name__)

# Wait states longer than this are shortened locally, so a run's polling takes seconds.
LOCAL_MAX_WAIT_SECONDS = 1
TTL_SWEEP_SECONDS = 5.0
STREAM_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class LocalOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    aws_port: int = 4566
    schedule_seconds: float | None = 300.0
    max_wait_seconds: int | None = LOCAL_MAX_WAIT_SECONDS
    ttl_sweep_seconds: float = TTL_SWEEP_SECONDS
    stream_poll_seconds: float = STREAM_POLL_SECONDS
    # Every AWS call of every function authorized against the template, as AWS would
    # (entrix.local.iam.enforcement); off only for a debugging session, never in tests.
    enforce_permissions: bool = True


class LocalSystem:
    """Everything `entrix local` runs; `start()` returns once the API is serving."""

    def __init__(
        self,
        template_path: Path,
        options: LocalOptions,
        *,
        show_run: Callable[[dict[str, Any]], None],
        show_notification: Callable[[str, str], None],
        region: str | None = None,
        stack_name: str = "Entrix",
        show_secret_request: RequestListener | None = None,
    ) -> None:
        self.template_path = template_path
        self.template = Template.load(template_path)
        self.options = options
        self.region = region or stack_region(template_path, stack_name)
        self.stack_name = stack_name
        self.endpoint = AwsEndpoint(
            options.host, options.aws_port, self.region, on_flush=self._flush_authorizer_cache
        )
        self.gateway: ApiGateway | None = None
        self.show_run = show_run
        self.show_notification = show_notification
        self.show_secret_request = show_secret_request
        self.secrets_extension: LocalSecretsExtension | None = None
        self.identity_provider: LocalIdentityProvider | None = None
        self.deployment: Deployment | None = None
        self.api_server: ApiServer | None = None
        self.alert_log: AlertLog | None = None
        self.enforcer: Enforcer | None = None
        self._stoppables: list[Any] = []

    @property
    def api_url(self) -> str:
        return f"http://{client_host(self.options.host)}:{self.options.port}"

    def _flush_authorizer_cache(self, api_id: str, stage: str) -> None:
        gateway = self.gateway
        if gateway is not None and (gateway.api.api_id, gateway.api.stage) == (api_id, stage):
            gateway.authorizers.flush()

    def start(self) -> None:
        check_port_free(self.options.host, self.options.port, "--port")
        self.endpoint.start()
        self._stoppables.append(self.endpoint)
        self.secrets_extension = LocalSecretsExtension(
            self.endpoint.client("secretsmanager"), on_request=self.show_secret_request
        )
        self._stoppables.append(self.secrets_extension)
        if self.verifies_issuer_tokens():
            self.identity_provider = LocalIdentityProvider()
            self.identity_provider.start()
            self._stoppables.append(self.identity_provider)
            self.endpoint.client("secretsmanager").create_secret(
                Name=ISSUER_SECRET_NAME,
                Description="The local identity provider's signing key (entrix token reads it)",
                SecretString=self.identity_provider.current.secret_string(),
            )
        deployer = Deployer(
            self.template,
            self.endpoint.client,
            pseudo=PseudoParameters(
                region=self.region, account_id=ACCOUNT_ID, stack_name=self.stack_name
            ),
            asset_dir=self.template_path.parent,
            max_wait_seconds=self.options.max_wait_seconds,
            secrets_extension=self.secrets_extension,
            jwks_url=self.identity_provider.jwks_url if self.identity_provider else None,
        )
        if self.options.enforce_permissions:
            # Before the deploy, which can run functions itself (a secret's first rotation).
            model = StackModel(
                self.stack_name, json.loads(self.template_path.read_text()), self.region
            )
            self.enforcer = Enforcer(model, deployer.deployment)
            self.enforcer.start()
            self._stoppables.append(self.enforcer)
        # Stopped before the enforcer, the secrets extension and the endpoint, after the API,
        # the pollers and the scheduler: a message published before the stop reaches its
        # Lambda subscriber under enforcement, then no invocation starts (a state machine still
        # running gets a function error).
        self._stoppables.append(lambda_runner.SnsDeliveriesDrain())
        deployment = deployer.deploy()
        self.deployment = deployment

        if deployment.api:
            gateway = ApiGateway(
                RestApi.from_parts(deployment.api, deployment.api_ids),
                self.invoke,
                region=self.region,
                account_id=ACCOUNT_ID,
                domain_name=f"{client_host(self.options.host)}:{self.options.port}",
            )
            self.gateway = gateway
            self.api_server = ApiServer(gateway, self.options.host, self.options.port)
            self.api_server.start()
            self._stoppables.append(self.api_server)

        ttl_deletions = TtlDeletions()
        # Only a streamed table's deletions are ever taken back (by the stream poller); the
        # client usage table's expired counters would otherwise pile up here.
        streamed = {mapping.table_name for mapping in deployment.stream_mappings}

        def deleted_key(table_name: str, key: dict[str, Any]) -> None:
            if table_name in streamed:
                ttl_deletions.add(table_name, key)

        sweeper = TtlSweeper(
            self.endpoint.client("dynamodb"),
            deployment.tables,
            self.options.ttl_sweep_seconds,
            deleted_key=deleted_key,
        )
        sweeper.start()
        self._stoppables.append(sweeper)

        if deployment.stream_mappings:
            poller = StreamPoller(
                self.endpoint.client("dynamodbstreams"),
                self.endpoint.client("sqs"),
                deployment.stream_mappings,
                self.invoke,
                self.region,
                ttl_deletions,
                self.options.stream_poll_seconds,
            )
            poller.start()
            self._stoppables.append(poller)

        self.alert_log = AlertLog(self.endpoint.client("logs"))
        self.alert_log.start()
        topics = deployment.topics
        if topics:
            tap = NotificationTap(
                self.endpoint.client("sns"),
                self.endpoint.client("sqs"),
                topics,
                self._notification,
            )
            tap.start()
            self._stoppables.append(tap)
        if deployment.state_machines:
            watcher = RunWatcher(
                self.endpoint.client("stepfunctions"),
                list(deployment.state_machines.values()),
                self._run,
            )
            watcher.start()
            self._stoppables.append(watcher)

        targets = [
            (machine, schedule.rule_arn)
            for schedule in deployment.schedules
            if schedule.enabled
            for machine in schedule.state_machine_arns
        ]
        if targets and self.options.schedule_seconds:
            scheduler = Scheduler(
                self.endpoint.client("stepfunctions"),
                targets,
                self.options.schedule_seconds,
                self._run,
                region=self.region,
                account_id=ACCOUNT_ID,
            )
            scheduler.start()
            self._stoppables.append(scheduler)

    def verifies_issuer_tokens(self) -> bool:
        """Whether a function of the template verifies an identity provider's tokens."""
        return any(
            resource.type == "AWS::Lambda::Function"
            and (resource.properties.get("Environment") or {})
            .get("Variables", {})
            .get(settings.JWT_KEY_SOURCE.name)
            == "jwks"
            for resource in self.template.resources.values()
        )

    def rotate_issuer_key(self) -> SigningKey:
        """A new key at the local identity provider, published in its JWK set and signing from
        now on (`entrix token` too); the old key stays published."""
        if self.identity_provider is None:
            raise RuntimeError("this system runs no local identity provider")
        key = self.identity_provider.rotate()
        self.endpoint.client("secretsmanager").put_secret_value(
            SecretId=ISSUER_SECRET_NAME, SecretString=key.secret_string()
        )
        return key

    def _notification(self, topic: str, text: str) -> None:
        """A message the Slack channel would get: shown, and kept for `entrix alerts`."""
        self.show_notification(topic, text)
        assert self.alert_log is not None
        self.alert_log.record({"topic": topic, "text": text})

    def _run(self, summary: dict[str, Any]) -> None:
        """A run's summary (or a run that could not start): shown, and kept likewise."""
        self.show_run(summary)
        assert self.alert_log is not None
        self.alert_log.record({"run": summary})

    def invoke(self, function_name: str, event: Any) -> Invocation:
        """Run a function of the deployment in this process, with its environment; its logs go
        to the endpoint's CloudWatch Logs, as for every invocation moto makes."""
        from moto.awslambda import lambda_backends

        function = lambda_backends[ACCOUNT_ID][self.region].get_function(function_name)
        return lambda_runner.invoke_moto_function(function, event)

    def stop(self) -> None:
        """Stop everything started, newest first; both ports are free afterwards. A part that
        fails to stop (or a Ctrl-C while one stops) does not keep the others running: the
        error is raised once all have stopped, an interruption first, the others logged."""
        errors: list[BaseException] = []
        while self._stoppables:
            try:
                self._stoppables.pop().stop()
            except BaseException as error:  # noqa: BLE001 - raised below, once all have stopped
                errors.append(error)
        if not errors:
            return
        errors.sort(key=lambda failure: isinstance(failure, Exception))  # interruptions first
        for failure in errors[1:]:
            logger.error("while the local system stopped: %s", failure)
        raise errors[0]
