"""The `entrix` command: the local system, tokens and their revocation, pipeline runs, alerts,
post-deploy verification and rollback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

DEFAULT_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8000
# The client `entrix token` signs for by default, and so the one of `entrix local`'s banner token.
DEFAULT_TOKEN_SUBJECT = "entrix-cli"  # noqa: S105 - a subject, not a secret
DEFAULT_AWS_PORT = 4566


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in its help, except an option that has none (None) and a flag
    (its default is not giving it), whose help says in words what happens without it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


def _add_endpoint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help="host of the local system")
    parser.add_argument(
        "--aws-port", type=int, default=DEFAULT_AWS_PORT, help="port of the embedded AWS endpoint"
    )


def _count(text: str) -> int:
    """A count of 1 to 10,000 (what one CloudWatch Logs read returns at most)."""
    value = int(text)
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError("must be within 1..10000")
    return value


def _command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help: str,
    description: str,
) -> argparse.ArgumentParser:
    """A (sub)command whose --help shows its description and its options' defaults."""
    return subparsers.add_parser(
        name, help=help, description=description, formatter_class=_HelpFormatter
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="entrix", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    local = _command(
        commands,
        "local",
        help="run the whole system on this machine",
        description="Runs the whole system on this machine from the synthesized CDK template: the "
        "API, an embedded AWS endpoint, every function and the results pipeline on its schedule. "
        "Prints where everything is and a ready token; Ctrl-C stops it, and nothing survives a "
        "restart.",
    )
    _add_endpoint_options(local)
    local.add_argument("--port", type=int, default=DEFAULT_API_PORT, help="port of the API")
    local.add_argument(
        "--schedule-seconds",
        type=float,
        default=300.0,
        help="seconds between scheduled pipeline runs (the deployed rule is rate(5 minutes))",
    )
    local.add_argument(
        "--no-enforce-permissions",
        dest="enforce_permissions",
        action="store_false",
        help="for a debugging session only: let functions make AWS calls their roles do not allow;"
        " without it every call is checked against the template, as AWS does",
    )
    local.set_defaults(run="entrix.local.commands:local")

    token = _command(
        commands,
        "token",
        help="print a JWT the API accepts",
        description="Prints a JWT the API accepts, signed with the local system's key, or with "
        "--stack a deployed stack's secret.",
    )
    _add_endpoint_options(token)
    token.add_argument("--subject", default=DEFAULT_TOKEN_SUBJECT, help="the token's sub claim")
    token.add_argument(
        "--expires-in",
        type=int,
        default=3600,
        help="seconds until the token expires (at most the authorizer's maximum lifetime)",
    )
    token.add_argument(
        "--audience", help="the token's aud claim (default: the audience the API requires)"
    )
    token.add_argument(
        "--kid",
        help="sign with this key version (the current or the previous one; default: the newest "
        "key every warm authorizer already knows)",
    )
    token.add_argument(
        "--stack", help="sign with this deployed stack's secret instead of the local system's"
    )
    token.add_argument("--region", help="AWS region of --stack (default: your AWS configuration)")
    token.set_defaults(run="entrix.token_command:token")

    revoke = _command(
        commands,
        "revoke",
        help="withdraw a leaked token, or every token a subject holds now",
        description="Withdraws tokens before their exp: one token (itself or its jti), or every "
        "token a subject holds now. Written to the deny list every authorizer reads; API "
        "Gateway's authorizer cache is flushed.",
    )
    _add_endpoint_options(revoke)
    what = revoke.add_mutually_exclusive_group(required=True)
    what.add_argument("--token", help="the leaked token itself (its jti and exp are read)")
    what.add_argument("--jti", help="the id of the token to revoke")
    what.add_argument("--subject", help="revoke every token of this subject issued until now")
    revoke.add_argument("--stack", help="revoke at this deployed stack instead of the local system")
    revoke.add_argument("--region", help="AWS region of --stack (default: your AWS configuration)")
    revoke.set_defaults(run="entrix.revoke_command:revoke")

    pipeline = _command(
        commands,
        "pipeline",
        help="the auction results pipeline",
        description="The local system's auction results pipeline.",
    )
    pipeline_commands = pipeline.add_subparsers(dest="pipeline_command", required=True)
    pipeline_run = _command(
        pipeline_commands,
        "run",
        help="start one execution now and print its summary as JSON",
        description="Starts one execution of the local results pipeline now, waits for it and "
        "prints its summary as JSON.",
    )
    _add_endpoint_options(pipeline_run)
    pipeline_run.set_defaults(run="entrix.local.commands:pipeline_run")

    alerts = _command(
        commands,
        "alerts",
        help="the recent alerts and run summaries of the local system",
        description="Prints the newest notifications and run summaries the local system's "
        "console showed, oldest first, each with its time.",
    )
    _add_endpoint_options(alerts)
    alerts.add_argument(
        "--limit", type=_count, default=50, help="how many of the newest entries to print"
    )
    alerts.set_defaults(run="entrix.local.commands:alerts")

    verify = _command(
        commands,
        "verify",
        help="after a deploy: prove in AWS that alarms, alerts, API and pipeline work",
        description="After a deploy, proves in AWS, from the stack's outputs, that its alarms, "
        "alerts, API and pipeline work: one line per check, exit 1 if any failed. Needs AWS "
        "credentials and a region.",
    )
    verify.add_argument(
        "--mode",
        choices=("quiet", "full"),
        default="quiet",
        help="quiet (Prod): nothing a trader or on-call sees; full (Dev): also stores an order, "
        "starts runs and publishes alerts",
    )
    verify.add_argument(
        "--stack", required=True, help="the deployed service stack, e.g. Dev-Entrix"
    )
    verify.add_argument("--region", help="its AWS region (default: your AWS configuration)")
    verify.add_argument(
        "--role-arn", help="run as this role (e.g. the stage's EntrixVerify-<stack> role)"
    )
    verify.add_argument(
        "--check", action="append", help="run only this check (repeatable; default: all)"
    )
    verify.set_defaults(run="entrix.verify_command:verify")

    rollback = _command(
        commands,
        "rollback",
        help="put every function of a deployed stack back on its version before the last deploy",
        description="Stops a running CodeDeploy deployment (CloudFormation then rolls the whole "
        "stack update back), or points each function's live alias back at its version before "
        "the stack's last update; flushes the API's authorizer cache when the authorizer moved. "
        "Tables, buckets, the state machine, routes and policies stay as deployed: revert "
        "through the pipeline for those (docs/delivery.md, Rolling back).",
    )
    rollback.add_argument(
        "--stack", required=True, help="the deployed service stack, e.g. Prod-Entrix"
    )
    rollback.add_argument("--region", help="its AWS region (default: your AWS configuration)")
    rollback.set_defaults(run="entrix.rollback_command:rollback")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen command, importing only what it needs."""
    args = build_parser().parse_args(argv)
    module_name, function_name = args.run.split(":")
    module = __import__(module_name, fromlist=[function_name])
    return int(getattr(module, function_name)(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
