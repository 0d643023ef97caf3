"""`entrix revoke`: withdraw a leaked token, or every token of a subject issued until now.

It edits the deny list (entrix.revocations) that the authorizer reads, in the secret its
function names, waits until every warm authorizer has read the list again (its
REVOCATIONS_CACHE_TTL_SECONDS), then flushes the API stage's authorizer cache: a flush before
that wait would let a warm authorizer with the old list allow the token again, and API Gateway
would keep that Allow for its whole cache TTL. When the command returns, the token is refused.
Secrets Manager has no conditional write, so the command reads the list again after writing it
and merges once more if another revocation replaced it in between.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from typing import Any

import jwt
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from entrix import settings
from entrix.command_errors import describe
from entrix.identity import LEEWAY_SECONDS, valid_subject
from entrix.revocations import DenyList, DenyListError, parse_deny_list
from entrix.token_command import (
    ClientFactory,
    TokenCommandError,
    authorizer_setting,
    authorizer_variables,
    find_authorizer,
)

# Writes attempted before giving up on a deny list that keeps changing under the command.
WRITE_ATTEMPTS = 5
# Added to the authorizers' deny-list TTL before the flush: a read that started just before the
# write may finish just after it.
FLUSH_MARGIN_SECONDS = 2.0


def revoke(args: argparse.Namespace) -> int:
    """Print what was revoked and when it takes effect, as JSON; errors go to stderr."""
    try:
        factory, region, function_name = find_authorizer(args)
        variables = authorizer_variables(factory, region, function_name)
        secret_arn = authorizer_setting(settings.JWT_REVOCATIONS_SECRET_ARN, variables)
        max_lifetime = authorizer_setting(settings.MAX_TOKEN_LIFETIME_SECONDS, variables)
        now = time.time()
        revocation = _revocation(args, now, max_lifetime)
        secrets = factory("secretsmanager", region)
        wait = authorizer_setting(settings.REVOCATIONS_CACHE_TTL_SECONDS, variables)
        # A revocation written by someone else between another writer's read and write is lost
        # from the list: after the wait (when every warm authorizer has read the list), the
        # command checks its entry is still there, else writes it again and waits again.
        for _ in range(WRITE_ATTEMPTS):
            entries = write_revocation(secrets, secret_arn, revocation, now, max_lifetime)
            print(
                f"entrix revoke: written; waiting {wait:g} s for warm authorizers to read it",
                file=sys.stderr,
            )
            time.sleep(wait + FLUSH_MARGIN_SECONDS)
            if _holds(_read(secrets, secret_arn), revocation):
                break
            print(
                "entrix revoke: another write replaced the entry; writing it again", file=sys.stderr
            )
        else:
            raise TokenCommandError(f"the deny list {secret_arn} keeps losing the entry; try again")
        try:
            flushed = _flush_authorizer_cache(factory, region, args)
        except (ClientError, BotoCoreError) as error:
            raise TokenCommandError(
                f"the revocation is written and every warm authorizer refuses the token, but "
                f"API Gateway's authorizer cache was not flushed ({error}): answers it cached "
                "before may be served until its TTL ends; flush it with `aws apigateway "
                "flush-stage-authorizers-cache` or run the command again"
            ) from None
    except TokenCommandError as error:
        print(f"entrix revoke: {error}", file=sys.stderr)
        return 1
    except EndpointConnectionError as error:
        where = f"the stack {args.stack}" if args.stack else "the local system"
        print(f"entrix revoke: cannot reach {where} ({error})", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError, DenyListError) as error:
        print(f"entrix revoke: {describe(error)}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "revoked": revocation,
                "deny_list_entries": entries,
                "authorizer_caches_flushed": flushed,
            }
        )
    )
    return 0


def _revocation(args: argparse.Namespace, now: float, max_lifetime: int) -> dict[str, Any]:
    """What to add: a token id and until when to keep it, or a subject and since when."""
    if args.subject:
        if not valid_subject(args.subject):
            raise TokenCommandError(
                f"--subject {args.subject!r} can be no token's subject (1 to 128 characters, "
                "no '#' or control characters)"
            )
        return {"subject": args.subject, "issued_until": int(now)}
    if args.token:
        try:
            claims = jwt.decode(args.token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise TokenCommandError(f"--token is not a JWT: {error}") from None
        if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("exp"), int):
            raise TokenCommandError("--token has no jti or exp: revoke its --subject instead")
        if claims["exp"] + LEEWAY_SECONDS < now:
            raise TokenCommandError(
                f"--token expired at {claims['exp']} (with the {LEEWAY_SECONDS} s leeway): it is "
                "refused already, nothing to revoke"
            )
        return {"jti": claims["jti"], "keep_until": claims["exp"]}
    # A bare token id: kept as long as any token issued now could live.
    return {"jti": args.jti, "keep_until": int(now) + max_lifetime}


def write_revocation(
    secrets: Any, secret_arn: str, revocation: dict[str, Any], now: float, max_lifetime: int
) -> int:
    """Add the revocation to the stored list (pruned of entries no token needs); the number of
    entries the list then holds."""
    for _ in range(WRITE_ATTEMPTS):
        stored = _read(secrets, secret_arn)
        updated = _added(stored, revocation).pruned(now, LEEWAY_SECONDS, max_lifetime)
        if updated != stored:
            secrets.put_secret_value(SecretId=secret_arn, SecretString=updated.text())
        # Another revocation written between our read and our write replaced ours: merge again.
        after = _read(secrets, secret_arn)
        if _holds(after, revocation):
            return len(after.tokens) + len(after.subjects)
    raise TokenCommandError(
        f"the deny list {secret_arn} changed under each of {WRITE_ATTEMPTS} writes; try again"
    )


def _holds(deny: DenyList, revocation: dict[str, Any]) -> bool:
    return _added(deny, revocation) == deny


def _read(secrets: Any, secret_arn: str) -> DenyList:
    return parse_deny_list(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])


def _added(deny: DenyList, revocation: dict[str, Any]) -> DenyList:
    if "subject" in revocation:
        return deny.with_subject(revocation["subject"], revocation["issued_until"])
    keep_until = max(revocation["keep_until"], deny.tokens.get(revocation["jti"], 0))
    return deny.with_token(revocation["jti"], keep_until)


def _flush_authorizer_cache(
    factory: ClientFactory, region: str | None, args: argparse.Namespace
) -> list[str]:
    """Flush the authorizer cache of the stack's API stage (or of every stage the local system
    serves); the `<api id>/<stage>` flushed."""
    apigateway = factory("apigateway", region)
    if args.stack:
        (stack,) = factory("cloudformation", region).describe_stacks(StackName=args.stack)["Stacks"]
        try:
            return [flush_stack_authorizer_cache(apigateway, stack)]
        except LookupError as error:
            raise TokenCommandError(str(error)) from None
    stages = [
        (api["id"], stage["stageName"])
        for api in apigateway.get_rest_apis()["items"]
        for stage in apigateway.get_stages(restApiId=api["id"])["item"]
    ]
    for api_id, stage in stages:
        apigateway.flush_stage_authorizers_cache(restApiId=api_id, stageName=stage)
    return [f"{api_id}/{stage}" for api_id, stage in stages]


def flush_stack_authorizer_cache(apigateway: Any, stack: Mapping[str, Any]) -> str:
    """Flush the authorizer cache of the API stage named by `stack`'s outputs RestApiId and
    ApiStageName (`stack` as DescribeStacks gives it); the `<api id>/<stage>` flushed. Also used
    by `entrix rollback` after it moved the authorizer back."""
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    if "RestApiId" not in outputs or "ApiStageName" not in outputs:
        raise LookupError(f"stack {stack['StackName']} has no RestApiId and ApiStageName outputs")
    apigateway.flush_stage_authorizers_cache(
        restApiId=outputs["RestApiId"], stageName=outputs["ApiStageName"]
    )
    return f"{outputs['RestApiId']}/{outputs['ApiStageName']}"
