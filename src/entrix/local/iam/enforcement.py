"""The local runtime refuses what AWS refuses: each AWS call a function makes is authorized
against the template the local system deployed before the emulator sees it.

moto enforces no IAM policy, resource policy or key policy. While an `Enforcer` is started, every
call a thread running a handler makes (`call_log` marks the thread and keeps the call in
botocore's request context) is turned into the requests AWS authorizes for it by the permission
model's own code (`calls.call_requests`: the function's role, the target's resource policy, the
topic key's policy for a publish to an encrypted topic) and decided by the same simulator. A
refused call is answered from botocore's `before-call` event with the service's own error code,
HTTP status and message, so it never reaches the endpoint and the handler gets the ClientError
AWS would raise. A call the model does not map raises `UnmappedCall`, naming it: a new kind of
call gets mapped, never waved through. A call marked as a caller without a template role
(`call_log.running(..., with_its_role=False)`, `entrix verify`) is not decided; under a deployed
function's name it raises `UnenforcedCall`, since it would skip that function's role.

Calls of threads that run no handler (the runtime itself, moto, tests) are not checked.
Importing this module installs the hook; Lambda code never imports it.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from entrix.local import (
    call_log,
    lambda_runner,  # noqa: F401 - its deadline hook must run before this one
)
from entrix.local.call_log import Call
from entrix.local.deploy import Deployment
from entrix.local.iam.calls import Local, call_requests
from entrix.local.iam.evaluate import Decision, Request, Simulator, decide
from entrix.local.iam.model import ModelError, Role, StackModel

# Each service's answer to a request its policies refuse: error code and HTTP status.
REFUSALS: Mapping[str, tuple[str, int]] = {
    "dynamodb": ("AccessDeniedException", 400),
    "secretsmanager": ("AccessDeniedException", 400),
    "s3": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
}
# A service's answer when KMS refuses the data key it asks for with the caller's permissions.
KMS_REFUSALS: Mapping[str, tuple[str, int]] = {"sns": ("KMSAccessDenied", 400)}


class UnmappedCall(BaseException):
    """A function made a call the permission model cannot turn into requests, so it cannot be
    authorized: map it in entrix.local.iam.calls. A BaseException, so that a handler's `except
    Exception` does not swallow it; the enforcer also keeps it, and its `stop()` raises, for
    where it is swallowed all the same (the secrets extension's reply fails, and the cache
    serves the last value)."""


class UnenforcedCall(BaseException):
    """A deployed function's name was run with `with_its_role=False`, the exemption for callers
    the template does not define: its calls would skip that function's role unchecked. Raised
    and kept as UnmappedCall."""


@dataclass(frozen=True)
class Refusal:
    """A service's error response to one refused call."""

    code: str
    status: int
    message: str
    sender: bool  # the query protocol (SNS) also says whose fault it is

    def response(self, url: str) -> tuple[AWSResponse, dict[str, Any]]:
        """What botocore's `before-call` returns to answer the call without sending it."""
        request_id = str(uuid.uuid4())
        headers = HTTPHeaders()
        headers["x-amzn-requestid"] = request_id
        error: dict[str, str] = {"Code": self.code, "Message": self.message}
        if self.sender:
            error["Type"] = "Sender"
        parsed = {
            "Error": error,
            "ResponseMetadata": {
                "RequestId": request_id,
                "HTTPStatusCode": self.status,
                "HTTPHeaders": dict(headers),
                "RetryAttempts": 0,
            },
        }
        return AWSResponse(url, self.status, headers, raw=None), parsed


def session_arn(role: Role, function: str) -> str:
    """The caller AWS names in a refusal: the function's session of its role."""
    account = role.arn.split(":")[4]
    return f"arn:aws:sts::{account}:assumed-role/{role.arn.rsplit('/', 1)[-1]}/{function}"


def reason(decision: Decision) -> str:
    """Why AWS refused, in the words of its access denied messages."""
    action = decision.request.action
    if decision.result == "ExplicitlyDenied":
        policy = "an identity" if decision.identity == "ExplicitlyDenied" else "a resource"
        return f"with an explicit deny in {policy}-based policy"
    # A key policy must allow the caller (or delegate to the account) before IAM can.
    if action.startswith("kms:") and decision.resource_policy == "ImplicitlyDenied":
        return f"because no resource-based policy allows the {action} action"
    return f"because no identity-based policy allows the {action} action"


def refusal(call: Call, role: Role, decision: Decision) -> Refusal:
    request = decision.request
    resource = f'"{request.resource}"' if call.service == "s3" else request.resource
    message = (
        f"User: {session_arn(role, call.function)} is not authorized to perform: "
        f"{request.action} on resource: {resource} {reason(decision)}"
    )
    if request.action.startswith("kms:") and call.service in KMS_REFUSALS:
        code, status = KMS_REFUSALS[call.service]
        message += (
            f" (Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException; "
            f"Request ID: {uuid.uuid4()})"
        )
    else:
        code, status = REFUSALS.get(call.service, ("AccessDeniedException", 400))
    return Refusal(code, status, message, sender=call.service == "sns")


class Enforcer:
    """Authorizes the calls of one local system's functions, from the template it deployed.

    `deployment` may still be filling: a deploy can run functions itself (a rotation schedule
    that rotates its secret at creation), and those calls are checked too. Verdicts are kept per
    request, with every policy it was decided under in the key, so a changed policy is decided
    anew.
    """

    def __init__(
        self, model: StackModel, deployment: Deployment, simulator: Simulator | None = None
    ) -> None:
        self.model = model
        self.deployment = deployment
        self.simulator = simulator or Simulator()
        self._local = Local(model, deployment)
        self._local_names = len(deployment.names)  # how many names `_local` knows
        self._roles: dict[str, Role] = {}
        self._verdicts: dict[str, Decision] = {}
        self._lock = threading.Lock()
        # The calls it could not judge (UnmappedCall, UnenforcedCall), for `stop()`.
        self._unjudged: list[str] = []

    def start(self) -> None:
        global _active
        with _active_lock:
            if _active not in (None, self):
                raise RuntimeError("another local system's enforcement is running in this process")
            _active = self

    def stop(self) -> None:
        """Stop deciding; raise if any call could not be judged, as a handler (or the secrets
        extension's server thread) may have swallowed the exception it got."""
        global _active
        with _active_lock:
            if _active is self:
                _active = None
        self.simulator.stop()
        if unjudged := self.take_unjudged():
            raise RuntimeError(
                "calls the local enforcement could not judge: " + "; ".join(unjudged)
            )

    def take_unjudged(self) -> list[str]:
        """The calls it could not judge so far (each once)."""
        with self._lock:
            unjudged, self._unjudged = self._unjudged, []
        return unjudged

    def unjudged(self, error: UnmappedCall | UnenforcedCall) -> UnmappedCall | UnenforcedCall:
        """`error`, kept for `stop()`."""
        with self._lock:
            self._unjudged.append(f"{type(error).__name__}: {error}")
        return error

    def check(self, call: Call) -> Refusal | None:
        """None when AWS would let the call through, else how the service refuses it."""
        try:
            role = self._role(call.function)
            groups = call_requests(self._current_local(), role, call, at=time.time())
        except ModelError as error:
            raise self.unjudged(
                UnmappedCall(
                    f"{call.function} called {call.service}.{call.operation} "
                    f"{dict(call.parameters)}, which the permission model cannot authorize: "
                    f"{error}"
                )
            ) from None
        for requests in groups:
            for decision in self._decide(requests):
                if decision.errors or decision.ignored:
                    raise self.unjudged(UnmappedCall(f"{call.function}: {decision.explain()}"))
                if not decision.allowed:
                    return refusal(call, role, decision)
        return None

    def _current_local(self) -> Local:
        with self._lock:
            if self._local_names != len(self.deployment.names):
                self._local_names = len(self.deployment.names)
                self._local = Local(self.model, self.deployment)
            return self._local

    def _role(self, function: str) -> Role:
        with self._lock:
            role = self._roles.get(function)
        if role is None:
            logical_id = self._current_local().logical_id("AWS::Lambda::Function", function)
            role = self.model.function_role(logical_id)
            with self._lock:
                self._roles[function] = role
        return role

    def _decide(self, requests: list[Request]) -> list[Decision]:
        keys = [_key(request) for request in requests]
        with self._lock:
            missing = [
                r for r, key in zip(requests, keys, strict=True) if key not in self._verdicts
            ]
        if missing:
            decided = decide(missing, self.simulator)
            with self._lock:
                self._verdicts.update((_key(d.request), d) for d in decided)
        with self._lock:
            return [self._verdicts[key] for key in keys]


def _key(request: Request) -> str:
    """Who, what, on what, under which policies, and of the context the names of its keys (the
    simulator refuses a key it does not know for the action) with the values of those the
    policies can read: in a condition or as a policy variable. A value no policy reads cannot
    change the decision, and leaving it out keeps the time and each item's keys, which every
    request carries, from making every request a new one."""
    policies = json.dumps([request.identity_policies, request.resource_policy], sort_keys=True)
    read = _read_keys(policies)
    return json.dumps(
        [
            request.principal,
            request.action,
            request.resource,
            request.account,
            sorted(request.context),
            {k: v for k, v in request.context.items() if k.lower() in read},
            policies,
        ],
        sort_keys=True,
    )


_POLICY_VARIABLE = re.compile(r"\$\{([^}]+)\}")


@functools.lru_cache(maxsize=256)
def _read_keys(policies: str) -> frozenset[str]:
    """Every context key (lower case, as IAM compares them) the policies read."""
    # A variable may carry a default: ${aws:PrincipalTag/team, 'none'}.
    read = {name.split(",", 1)[0].strip().lower() for name in _POLICY_VARIABLE.findall(policies)}
    identity, resource = json.loads(policies)
    for document in [*identity, resource]:
        statements = (document or {}).get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            for keys in statement.get("Condition", {}).values():
                read.update(key.lower() for key in keys)
    return frozenset(read)


_active: Enforcer | None = None
_active_lock = threading.Lock()


def active() -> Enforcer | None:
    """The started enforcer of this process, if any."""
    return _active


def _before_call(params: Mapping[str, Any], context: Mapping[str, Any], **_: Any) -> Any:
    enforcer, call = _active, context.get(call_log.CALL)
    if enforcer is None:
        return None
    roleless = context.get(call_log.ROLELESS)
    if roleless is not None and _function_name(roleless.function) in enforcer.deployment.functions:
        raise enforcer.unjudged(
            UnenforcedCall(
                f"{roleless.function} called {roleless.service}.{roleless.operation} marked "
                "with_its_role=False, which only a caller the template does not define may be: "
                "its role would not be enforced"
            )
        )
    if call is None:
        return None
    refused = enforcer.check(call)
    return None if refused is None else refused.response(params["url"])


def _function_name(name: str) -> str:
    """A function's name from its name, `name:qualifier` or ARN."""
    if name.startswith("arn:"):
        name = name.split(":function:", 1)[-1]
    return name.split(":", 1)[0]


_EVENT = "before-call"
if (_EVENT, _before_call) not in botocore.handlers.BUILTIN_HANDLERS:
    botocore.handlers.BUILTIN_HANDLERS.append((_EVENT, _before_call))
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register(_EVENT, _before_call)
