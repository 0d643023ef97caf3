"""`entrix token`: print a JWT the API accepts, for the local system or a deployed stack.

Both cases take one path: find the authorizer function, read its environment (secret ARN,
issuer, audience, maximum lifetime, key cache TTL), fetch the secret's current and previous
versions and sign with the one `signing_version` picks (or `--kid`). So the token matches
whatever the authorizer is configured with, and no key is ever copied into configuration.

An authorizer that verifies an identity provider's tokens (JWT_KEY_SOURCE jwks) takes tokens from
that provider only; the one exception is the local system's provider (its JWKS URL on the
loopback interface, which only a local deployment allows), whose key is the local secret
`entrix-local-issuer`: the token is signed with it, under its kid.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from entrix import settings
from entrix.aws.secrets import CURRENT, PREVIOUS, SecretVersion, region_of_arn
from entrix.aws.signing_keys import signing_version
from entrix.command_errors import describe
from entrix.identity import MAX_SUBJECT_CHARS, valid_subject
from entrix.issuer_keys import LOOPBACK_HOSTS
from entrix.local.identity_provider import (
    ALGORITHM,
    ISSUER_SECRET_NAME,
    KID_FIELD,
    PRIVATE_KEY_FIELD,
)
from entrix.signing_secret import signing_key_from_secret
from entrix.tokens import issue_token

AUTHORIZER_HANDLER = "entrix.handlers.authorizer.handler"
# The stack output naming the deployed authorizer function.
AUTHORIZER_OUTPUT_KEY = "AuthorizerFunctionName"
# The region the local system creates its resources in.
LOCAL_REGION = "eu-west-1"

T = TypeVar("T")

# service name, region -> boto3 client
ClientFactory = Callable[[str, str | None], Any]


class TokenCommandError(Exception):
    """A problem the user can act on; printed to stderr as is."""


def token(args: argparse.Namespace) -> int:
    """Print the token on stdout alone, so `TOKEN=$(entrix token)` works; errors go to stderr."""
    try:
        # Checked before any AWS call, so a typo fails fast even with nothing running.
        if args.expires_in <= 0:
            raise TokenCommandError("--expires-in must be positive")
        if not valid_subject(args.subject):
            raise TokenCommandError(
                f"--subject must be 1 to {MAX_SUBJECT_CHARS} characters without '#' or control "
                "characters (the subject owns the orders: their key is <subject>#<record_id>)"
            )
        factory, region, function_name = find_authorizer(args)
        print(
            sign_for_function(
                factory,
                region,
                function_name,
                args.subject,
                args.expires_in,
                audience=args.audience,
                kid=args.kid,
            )
        )
    except TokenCommandError as error:
        print(f"entrix token: {error}", file=sys.stderr)
        return 1
    except EndpointConnectionError as error:
        where = f"the stack {args.stack}" if args.stack else "the local system"
        print(f"entrix token: cannot reach {where} ({error})", file=sys.stderr)
        if not args.stack:
            print("start it with `entrix local` (or pass --host/--aws-port)", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"entrix token: {describe(error)}", file=sys.stderr)
        return 1
    return 0


def find_authorizer(args: argparse.Namespace) -> tuple[ClientFactory, str | None, str]:
    """Clients, region and authorizer function of `--stack`, or of the local system."""
    if args.stack:
        region = args.region
        return (
            _aws_clients,
            region,
            stack_authorizer_function(_aws_clients("cloudformation", region), args.stack),
        )
    endpoint = f"http://{args.host}:{args.aws_port}"
    factory = _local_clients(endpoint)
    region = args.region or LOCAL_REGION
    return factory, region, local_authorizer_function(factory("lambda", region), endpoint)


def local_authorizer_function(lambda_client: Any, endpoint: str) -> str:
    """The one function of the local system whose handler is the authorizer."""
    names = [
        function["FunctionName"]
        for page in lambda_client.get_paginator("list_functions").paginate()
        for function in page["Functions"]
        if function.get("Handler") == AUTHORIZER_HANDLER
    ]
    if not names:
        raise TokenCommandError(
            f"no authorizer function at {endpoint}: is `entrix local` running there?"
        )
    if len(names) > 1:
        raise TokenCommandError(f"more than one authorizer function at {endpoint}: {names}")
    return names[0]


def stack_authorizer_function(cloudformation_client: Any, stack_name: str) -> str:
    """The authorizer function named by the deployed stack's AuthorizerFunctionName output."""
    try:
        stacks = cloudformation_client.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError":
            raise TokenCommandError(f"no stack named {stack_name!r}: {error}") from None
        raise
    for output in stacks[0].get("Outputs", []):
        if output.get("OutputKey") == AUTHORIZER_OUTPUT_KEY:
            return str(output["OutputValue"])
    raise TokenCommandError(f"stack {stack_name!r} has no {AUTHORIZER_OUTPUT_KEY} output")


def sign_for_function(
    client_factory: ClientFactory,
    region: str | None,
    function_name: str,
    subject: str,
    expires_in: int,
    *,
    audience: str | None = None,
    kid: str | None = None,
) -> str:
    """Sign with a key, issuer and audience the authorizer function is configured with."""
    variables = authorizer_variables(client_factory, region, function_name)
    source = authorizer_setting(settings.JWT_KEY_SOURCE, variables)
    max_lifetime = authorizer_setting(settings.MAX_TOKEN_LIFETIME_SECONDS, variables)
    if expires_in > max_lifetime:
        raise TokenCommandError(
            f"--expires-in {expires_in} is over the authorizer's maximum lifetime of "
            f"{max_lifetime} s ({settings.MAX_TOKEN_LIFETIME_SECONDS.name})"
        )
    if source == "jwks":
        return _sign_as_local_issuer(
            client_factory, region, function_name, variables, subject, expires_in, audience, kid
        )
    secret_arn = authorizer_setting(settings.JWT_SECRET_ARN, variables)
    secret = client_factory("secretsmanager", region_of_arn(secret_arn) or region)
    current, previous = (_version(secret, secret_arn, stage) for stage in (CURRENT, PREVIOUS))
    if current is None:
        raise TokenCommandError(f"secret {secret_arn} does not exist or has no {CURRENT} version")
    if kid is None:
        version = signing_version(
            current,
            previous,
            time.time(),
            authorizer_setting(settings.SECRET_CACHE_TTL_SECONDS, variables),
        )
    else:
        matches = [v for v in (current, previous) if v is not None and v.version_id == kid]
        if not matches:
            raise TokenCommandError(
                f"--kid {kid} is neither the current ({current.version_id}) nor the previous "
                f"key ({previous.version_id if previous else 'none'}) of {secret_arn}"
            )
        version = matches[0]
    try:
        return issue_token(
            signing_key_from_secret(version.secret_string),
            kid=version.version_id,
            subject=subject,
            expires_in=expires_in,
            issuer=authorizer_setting(settings.JWT_ISSUER, variables),
            audience=audience or authorizer_setting(settings.JWT_AUDIENCE, variables),
        )
    except ValueError as error:
        raise TokenCommandError(str(error)) from None


def _sign_as_local_issuer(
    client_factory: ClientFactory,
    region: str | None,
    function_name: str,
    variables: dict[str, str],
    subject: str,
    expires_in: int,
    audience: str | None,
    kid: str | None,
) -> str:
    """A token of the local identity provider, signed with its current key."""
    url = authorizer_setting(settings.JWT_JWKS_URL, variables)
    parts = urlsplit(url)
    local = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if not (local and authorizer_setting(settings.JWT_JWKS_ALLOW_LOOPBACK_HTTP, variables)):
        raise TokenCommandError(
            f"function {function_name} verifies tokens of the identity provider at {url} "
            f"({settings.JWT_KEY_SOURCE.name}=jwks): get a token from it"
        )
    secret = client_factory("secretsmanager", region)
    try:
        document = json.loads(secret.get_secret_value(SecretId=ISSUER_SECRET_NAME)["SecretString"])
    except ClientError as error:
        raise TokenCommandError(
            f"the local identity provider's key ({ISSUER_SECRET_NAME}) cannot be read: {error}"
        ) from None
    if kid is not None and kid != document[KID_FIELD]:
        raise TokenCommandError(
            f"--kid {kid} is not the local identity provider's current key ({document[KID_FIELD]})"
        )
    try:
        return issue_token(
            document[PRIVATE_KEY_FIELD],
            kid=document[KID_FIELD],
            subject=subject,
            expires_in=expires_in,
            issuer=authorizer_setting(settings.JWT_ISSUER, variables),
            audience=audience or authorizer_setting(settings.JWT_AUDIENCE, variables),
            algorithm=ALGORITHM,
        )
    except ValueError as error:
        raise TokenCommandError(str(error)) from None


def authorizer_variables(
    client_factory: ClientFactory, region: str | None, name: str
) -> dict[str, str]:
    """The environment of the authorizer function `name`."""
    configuration = client_factory("lambda", region).get_function_configuration(FunctionName=name)
    variables: dict[str, str] = configuration.get("Environment", {}).get("Variables", {})
    return variables


def authorizer_setting(setting: settings.Setting[T], variables: dict[str, str]) -> T:
    """A setting of the authorizer function, read from its environment as it reads it."""
    raw = variables.get(setting.name, "")
    if raw == "":
        if setting.default is None:
            raise TokenCommandError(f"the authorizer function has no {setting.name} variable")
        return setting.default
    try:
        return setting.parse(raw)
    except ValueError as error:
        raise TokenCommandError(f"the authorizer's {setting.name}={raw!r}: {error}") from None


def _version(client: Any, secret_arn: str, stage: str) -> SecretVersion | None:
    try:
        response = client.get_secret_value(SecretId=secret_arn, VersionStage=stage)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    secret_string = response.get("SecretString")
    if not isinstance(secret_string, str):
        raise TokenCommandError(f"secret {secret_arn} ({stage}) has no SecretString")
    return SecretVersion(response["VersionId"], secret_string, response["CreatedDate"].timestamp())


def _aws_clients(service: str, region: str | None) -> Any:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def _local_clients(endpoint: str) -> ClientFactory:
    """Clients for the embedded AWS endpoint, which accepts any credentials."""

    def factory(service: str, region: str | None) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=region or LOCAL_REGION,
            endpoint_url=endpoint,
            aws_access_key_id="entrix-local",
            aws_secret_access_key="entrix-local",  # noqa: S106 - the local endpoint's dummy
        )

    return factory
