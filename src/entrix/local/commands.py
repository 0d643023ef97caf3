"""`entrix local`, `entrix pipeline run` and `entrix alerts` (called by entrix.cli with its parsed
arguments)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from entrix import settings
from entrix.cli import DEFAULT_TOKEN_SUBJECT
from entrix.local.alert_log import recent_entries
from entrix.local.apigateway import ApiConfigurationError
from entrix.local.deploy import DeploymentError
from entrix.local.endpoint import PortInUse, client_host, local_client
from entrix.local.lambda_runner import handler_output_captured
from entrix.local.pipeline import PipelineError, find_state_machine, start_run, wait_for_summary
from entrix.local.runtime import LocalOptions, LocalSystem
from entrix.local.synth import STACK_NAME, SynthError, ensure_template, project_root
from entrix.local.template import TemplateError

AUTHORIZER_HANDLER = "entrix.handlers.authorizer.handler"
CONSOLE_TOKEN_SECONDS = 3600
LOCAL_REGION = "eu-west-1"

_print_lock = threading.Lock()


def say(text: str = "") -> None:
    """One console message, whole, even when threads print at the same time."""
    with _print_lock:
        print(text, flush=True)


def local(args: argparse.Namespace) -> int:
    """Run the whole system until Ctrl-C or SIGTERM; 0 on a clean stop.

    The console shows the system's own messages; what the handlers print or log goes to the
    endpoint's CloudWatch Logs, as in AWS.
    """
    with handler_output_captured():
        return _run_local(args)


def _run_local(args: argparse.Namespace) -> int:
    started = time.monotonic()
    stop = _StopRequest()
    # Installed first, so a Ctrl-C during synthesis or startup also ends in a clean stop.
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    system: LocalSystem | None = None
    try:
        root = project_root()
        template_path, synthesized = ensure_template(root)
        if synthesized:
            say(f"synthesized {template_path.relative_to(root)} (CDK sources changed)")
        system = LocalSystem(
            template_path,
            LocalOptions(
                host=args.host,
                port=args.port,
                aws_port=args.aws_port,
                schedule_seconds=args.schedule_seconds,
                enforce_permissions=args.enforce_permissions,
            ),
            show_run=_show_run,
            show_notification=_show_notification,
            stack_name=STACK_NAME,
            show_secret_request=_show_secret_request,
        )
        if not stop.requested:
            system.start()
            _show_banner(system, args, root, time.monotonic() - started)
        while not stop.requested:
            time.sleep(0.2)
        say("stopping...")
        code = 0
    except (SynthError, TemplateError, PortInUse, DeploymentError, ApiConfigurationError) as error:
        code = 0 if stop.requested else 1
        if code:
            print(f"entrix local: {error}", file=sys.stderr)
    finally:
        try:
            if system is not None:
                system.stop()
        except Exception as error:  # noqa: BLE001 - one line, as for a failed start
            print(f"entrix local: {error}", file=sys.stderr)
            code = 1
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    return code


class _StopRequest:
    """The signal handler: the first signal asks for a clean stop, a second one ends at once.

    It only sets a flag (taking no lock, as a handler interrupting its own thread must not).
    """

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: object) -> None:
        if self.requested:
            os._exit(128 + signum)
        self.requested = True


def pipeline_run(args: argparse.Namespace) -> int:
    """Start one execution of the local pipeline now, wait for it, print its summary as JSON."""
    endpoint = f"http://{client_host(args.host)}:{args.aws_port}"
    sfn = local_client("stepfunctions", endpoint, LOCAL_REGION)
    try:
        state_machine_arn = find_state_machine(sfn)
        execution_arn = start_run(sfn, state_machine_arn, {"source": "entrix.cli"}, "manual")
        summary = wait_for_summary(sfn, execution_arn)
    except PipelineError as error:
        print(f"entrix pipeline run: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(
            f"entrix pipeline run: cannot use the local system at {endpoint}: {error}",
            file=sys.stderr,
        )
        print("start it with `entrix local` (or pass --host/--aws-port)", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0 if summary["status"] == "SUCCEEDED" else 1


def alerts(args: argparse.Namespace) -> int:
    """Print the newest notifications and run summaries the local console showed, oldest first,
    each with its time."""
    endpoint = f"http://{client_host(args.host)}:{args.aws_port}"
    logs = local_client("logs", endpoint, LOCAL_REGION)
    try:
        entries = recent_entries(logs, args.limit)
    except (BotoCoreError, ClientError) as error:
        print(
            f"entrix alerts: cannot read the local system's alerts at {endpoint}: {error}",
            file=sys.stderr,
        )
        print("start it with `entrix local` (or pass --host/--aws-port)", file=sys.stderr)
        return 1
    if not entries:
        print("no alerts or runs yet")
    for seconds, entry in entries:
        shown = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))
        text = _run_text(entry["run"]) if "run" in entry else _notification_text(**entry)
        print(f"{shown} {text}")
    return 0


def _run_text(summary: dict[str, Any]) -> str:
    return f"[pipeline] {json.dumps(summary)}"


def _notification_text(topic: str, text: str) -> str:
    lines = text.splitlines() or [""]
    return "\n".join([f"[slack #{topic}] {lines[0]}", *(f"    {line}" for line in lines[1:])])


def _show_run(summary: dict[str, Any]) -> None:
    say(_run_text(summary))


def _show_notification(topic: str, text: str) -> None:
    say(_notification_text(topic, text))


def _show_secret_request(function_name: str, secret_id: str, status: int) -> None:
    """A function read a secret through the local Parameters and Secrets Extension."""
    say(f"[secrets extension] {function_name}: GetSecretValue {secret_id} -> {status}")


def _endpoint_flags(args: argparse.Namespace) -> str:
    flags = []
    if args.host != "127.0.0.1":
        flags.append(f"--host {args.host}")
    if args.aws_port != 4566:
        flags.append(f"--aws-port {args.aws_port}")
    return "".join(f" {flag}" for flag in flags)


def _console_token(system: LocalSystem) -> str | None:
    """A token signed exactly as `entrix token` signs one for this system."""
    from entrix.token_command import TokenCommandError, sign_for_function

    assert system.deployment is not None
    names = [
        name
        for name, spec in system.deployment.functions.items()
        if spec.handler == AUTHORIZER_HANDLER
    ]
    if len(names) != 1:
        return None
    try:
        return sign_for_function(
            lambda service, _region: system.endpoint.client(service),
            system.region,
            names[0],
            DEFAULT_TOKEN_SUBJECT,
            CONSOLE_TOKEN_SECONDS,
        )
    except TokenCommandError as error:
        say(f"(no ready token: {error})")
        return None


def _show_banner(system: LocalSystem, args: argparse.Namespace, root: Any, seconds: float) -> None:
    deployment = system.deployment
    assert deployment is not None
    aws = system.endpoint.url
    template = system.template_path
    shown = template.relative_to(root) if template.is_relative_to(root) else template
    rows = [
        ("API", f"{system.api_url}/orders"),
        ("AWS endpoint", f"{aws}  (region {system.region})"),
    ]
    labels = {
        "AWS::DynamoDB::Table": "table",
        "AWS::S3::Bucket": "bucket",
        "AWS::SNS::Topic": "topic",
        "AWS::SQS::Queue": "queue",
        "AWS::SecretsManager::Secret": "secret",
        "AWS::StepFunctions::StateMachine": "state machine",
        "AWS::Lambda::Function": "function",
    }
    for resource_type, label in labels.items():
        rows.extend((label, name) for name in deployment.names_of(resource_type))
    schedule = (
        f"every {args.schedule_seconds:g} s"
        if args.schedule_seconds
        else "off (--schedule-seconds)"
    )
    rows.append(
        (
            "permissions",
            "enforced: each AWS call of a function is checked against the template's policies"
            if system.enforcer
            else "NOT enforced (--no-enforce-permissions): calls AWS would refuse succeed here",
        )
    )
    extension = system.secrets_extension
    if extension is not None and extension.functions:
        rows.append(
            (
                "secrets extension",
                f"http://127.0.0.1:{extension.port}/secretsmanager/get  "
                f"(Parameters and Secrets Lambda Extension of {', '.join(extension.functions)})",
            )
        )
    if system.identity_provider is not None:
        rows.append(
            (
                "identity provider",
                f"{system.identity_provider.jwks_url}  (ES256; the authorizer verifies its "
                "tokens, `entrix token` signs with its key)",
            )
        )
    if deployment.schedules:
        rows.append(("schedule", f"{deployment.schedules[0].expression} -> locally {schedule}"))
    width = max(len(label) for label, _ in rows)
    lines = [
        "",
        f"Entrix is running locally: stack {deployment.stack_name} from {shown}, "
        f"ready in {seconds:.1f} s",
        "",
        *(f"  {label.ljust(width)}  {value}" for label, value in rows),
    ]
    token = _console_token(system)
    if token:
        sample = json.dumps([{"record_id": "order-1", "parameter_1": "a", "parameter_2": 2.1}])
        lines += [
            "",
            f"A token for client {DEFAULT_TOKEN_SUBJECT} (valid {CONSOLE_TOKEN_SECONDS // 60} min;"
            f" `entrix token{_endpoint_flags(args)}` prints a fresh one for the same client):",
            f"  export TOKEN={token}",
            "",
            "Post orders:",
            f'  curl -sS -X POST {system.api_url}/orders -H "Authorization: Bearer $TOKEN" '
            f"-H 'Content-Type: application/json' -d {shlex.quote(sample)}",
            "",
            "Read one back:",
            f'  curl -sS {system.api_url}/orders/order-1 -H "Authorization: Bearer $TOKEN"',
        ]
    # The orders table, when the template is the service's; else the first table.
    table = deployment.table_named_by(settings.ORDERS_TABLE_NAME.name) or next(
        iter(deployment.tables), None
    )
    if table:
        lines += [
            "",
            "See them in the table (any credentials work):",
            f"  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws --endpoint-url {aws} "
            f"--region {system.region} dynamodb scan --table-name {table}",
        ]
    functions = list(deployment.functions)
    if functions:
        # The authorizer's log is the one a user first needs: it says why a token was refused.
        log_function = next(
            (n for n, spec in deployment.functions.items() if spec.handler == AUTHORIZER_HANDLER),
            functions[0],
        )
        log_group = deployment.functions[log_function].log_group_name
        lines += [
            "",
            "Lambda logs (each function logs JSON lines to its own group, as deployed; the "
            "authorizer's says why a token was refused):",
            f"  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws --endpoint-url {aws} "
            f"--region {system.region} logs filter-log-events --log-group-name "
            f"{log_group} --query 'events[].message' --output text",
        ]
    if deployment.state_machines:
        lines += ["", f"Run the pipeline now:  entrix pipeline run{_endpoint_flags(args)}"]
    lines += ["", f"Alerts and run summaries so far:  entrix alerts{_endpoint_flags(args)}"]
    lines += ["", "Ctrl-C stops everything.", ""]
    say("\n".join(lines))
