"""Which AWS calls each Lambda function makes while the local runtime runs it.

The endpoint enforces no IAM policy, so a call a function's role does not allow still succeeds
locally. This log lets a test check every call a function really made against that function's
role in the template. `lambda_runner.invoke()` marks the thread running a handler with the
function's name (`running()`); a botocore hook notes every API call such a thread makes, while
some `recording()` block is open anywhere in the process. Work a handler hands to a
`concurrent.futures.ThreadPoolExecutor` (ingest's parallel puts) runs marked with the same
function: `submit` (and so `map`) carries the mark to the worker. Calls made outside handlers
(the runtime, moto's own threads, tests) are not noted.

The hook is botocore's `before-parameter-build` event, registered on every session: those made
from now on (through botocore's built-in handler list, which each new session copies) and
boto3's default session if it already exists. A client made earlier from another session is not
seen; the handlers make theirs at import, after the runtime has imported this module.

Each call of a marked thread is also kept in botocore's request context under `CALL`, where
the local runtime's enforcement (entrix.local.iam.enforcement) reads it to authorize the call;
a call marked `with_its_role=False` is kept under `ROLELESS` instead, where enforcement refuses
it loudly when it claims a deployed function's name.

Importing this module installs the hook. Lambda code never imports it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.handlers

# The request parameters that name the resource a call acts on.
RESOURCE_PARAMETERS = (
    "TableName",
    "IndexName",
    "Bucket",
    "Key",
    "Prefix",
    "TopicArn",
    "TargetArn",
    "SecretId",
    "QueueUrl",
    "FunctionName",
    "StateMachineArn",
    # What `entrix verify` names (tests/permissions/test_verify_calls.py).
    "StackName",
    "AlarmName",
    "AlarmNames",
    "AlarmNamePrefix",
    "stateMachineArn",
    "executionArn",
    "roleArn",
)
# Request parameters that AWS turns into condition keys of the request (s3:prefix,
# secretsmanager:VersionStage, dynamodb:ReturnValues and dynamodb:Select).
CONTEXT_PARAMETERS = (
    "Delimiter",
    "MaxKeys",
    "VersionStage",
    "VersionId",
    "ReturnValues",
    "Select",
    "ReturnConsumedCapacity",
    # Not condition keys: they change what AWS authorizes (iam.calls refuses them, unmapped).
    "ServerSideEncryption",
    "SSEKMSKeyId",
)
# A name in a DynamoDB expression: a placeholder (#n) or a plain name, not a value (:v).
_NAME = re.compile(r"(?<![:#\w.])(#?[A-Za-z_]\w*)")
# The words and functions of update and key expressions (in any case), not attribute names.
_EXPRESSION_WORDS = frozenset(
    {"SET", "REMOVE", "ADD", "DELETE", "IF_NOT_EXISTS", "LIST_APPEND", "AND", "OR", "NOT"}
)


# The key of a marked thread's `Call` in botocore's request context.
CALL = "entrix_call"
# The key instead when the thread's caller has no role of the template (`with_its_role=False`).
ROLELESS = "entrix_roleless_call"


@dataclass(frozen=True)
class Call:
    """One AWS API call a function made: e.g. ("Entrix-IntakeIngest...", "dynamodb",
    "PutItem", {"TableName": "Entrix-IntakeOrders...", "ReturnValues": "ALL_OLD",
    "conditional": True, "attributes": [...], "keys": [{...}]}): the parameters that name its
    resource and those its IAM condition keys are made of (of a put's item: its attribute
    names, and its string and number values, among which its key), not the rest of the data."""

    function: str
    service: str
    operation: str
    parameters: Mapping[str, Any]


_thread = threading.local()
_lock = threading.Lock()
_logs: list[list[Call]] = []


@contextlib.contextmanager
def running(function_name: str, *, with_its_role: bool = True) -> Iterator[None]:
    """Calls this thread makes inside the block are the function's. `with_its_role=False`
    marks a caller the template does not define (`entrix verify`, whose role is the delivery
    stack's): its calls are recorded but not handed to the local enforcement, which knows only
    the deployed template's functions. Enforcement refuses such a call under a deployed
    function's name (`UnenforcedCall`): it would skip that function's role."""
    outer = getattr(_thread, "function", None), getattr(_thread, "with_its_role", True)
    _thread.function, _thread.with_its_role = function_name, with_its_role
    try:
        yield
    finally:
        _thread.function, _thread.with_its_role = outer


@contextlib.contextmanager
def recording() -> Iterator[list[Call]]:
    """A list that receives every call a running function makes while the block is open."""
    calls: list[Call] = []
    with _lock:
        _logs.append(calls)
    try:
        yield calls
    finally:
        with _lock:
            _logs.remove(calls)


def withdraw(context: Mapping[str, Any]) -> None:
    """The call in this botocore request context was refused before it was sent (its handler is
    past its timeout): it leaves the recordings, which hold the calls made."""
    call = context.get(CALL) or context.get(ROLELESS)
    if call is None:
        return
    with _lock:
        for calls in _logs:
            for position, recorded in enumerate(calls):
                if recorded is call:
                    del calls[position]
                    break


def _note(params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    function = getattr(_thread, "function", None)
    if function is None:
        return
    parameters: dict[str, Any] = {
        k: params[k] for k in (*RESOURCE_PARAMETERS, *CONTEXT_PARAMETERS) if k in params
    }
    if "RequestItems" in params:  # BatchWriteItem, BatchGetItem: the tables (keys below)
        parameters["RequestItems"] = sorted(params["RequestItems"])
    if "ConditionExpression" in params:  # a conditional write: no other IAM action, but named
        parameters["conditional"] = True
    service = model.service_model.service_name
    if service == "dynamodb":
        parameters |= _dynamodb_access(params)
    call = Call(function, service, model.name, parameters)
    context[CALL if getattr(_thread, "with_its_role", True) else ROLELESS] = call
    with _lock:
        for calls in _logs:
            calls.append(call)


def _dynamodb_access(params: Mapping[str, Any]) -> dict[str, Any]:
    """What DynamoDB's condition keys are made of: the top-level attributes a call writes or
    projects ("attributes"), whether it projects ("projected"), and the key values it names
    ("keys": each key's or item's string and number values; the partition key's value of each
    is dynamodb:LeadingKeys)."""
    keys: list[dict[str, str]] = []
    attributes: set[str] = set()
    projected = False
    entries: list[Mapping[str, Any]] = [params]
    for wanted in params.get("RequestItems", {}).values():
        # BatchGetItem: {Keys, ProjectionExpression}; BatchWriteItem: [{PutRequest|DeleteRequest}]
        entries += wanted if isinstance(wanted, list) else [wanted]
    for entry in entries:
        names = entry.get("ExpressionAttributeNames", {})
        writes = [
            entry.get("PutRequest", {}).get("Item"),
            entry.get("DeleteRequest", {}).get("Key"),
        ]
        for typed in (entry.get("Key"), entry.get("Item"), *writes, *entry.get("Keys", [])):
            if typed:
                keys.append(_scalars(typed))
                attributes |= set(typed)
        attributes |= _names(entry.get("UpdateExpression", ""), names)
        if entry.get("ProjectionExpression"):
            projected = True
            attributes |= _names(entry["ProjectionExpression"], names)
        values = entry.get("ExpressionAttributeValues", {})
        for name, placeholder in re.findall(
            r"(#?[A-Za-z_]\w*)\s*=\s*(:\w+)", entry.get("KeyConditionExpression", "")
        ):
            keys.append(_scalars({names.get(name, name): values.get(placeholder, {})}))
    found: dict[str, Any] = {}
    if attributes:
        found["attributes"] = sorted(attributes)
    if keys:
        found["keys"] = keys
    if projected:
        found["projected"] = True
    return found


def _names(expression: str, names: Mapping[str, str]) -> set[str]:
    """The top-level attribute names an update or projection expression names."""
    return {
        names.get(name, name)
        for name in _NAME.findall(expression)
        if name.upper() not in _EXPRESSION_WORDS
    }


def _scalars(typed: Mapping[str, Any]) -> dict[str, str]:
    """An item's or key's string and number values, by name."""
    return {
        name: str(next(iter(value.values())))
        for name, value in typed.items()
        if isinstance(value, dict) and next(iter(value), None) in ("S", "N")
    }


# The original, also when this module is imported again (the patched one keeps it as __wrapped__).
_submit: Callable[..., Future[Any]] = getattr(
    ThreadPoolExecutor.submit, "__wrapped__", ThreadPoolExecutor.submit
)


@functools.wraps(_submit)
def _submit_marked(
    self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Future[Any]:
    """`ThreadPoolExecutor.submit`, the worker running `fn` as the submitting thread's function,
    in a copy of its context: the invocation it serves goes with it (its log destination, and
    `lambda_runner`'s refusal of every AWS call once that invocation is past its timeout)."""
    function = getattr(_thread, "function", None)
    if function is None:
        return _submit(self, fn, *args, **kwargs)
    with_its_role = getattr(_thread, "with_its_role", True)

    def marked(*args: Any, **kwargs: Any) -> Any:
        with running(function, with_its_role=with_its_role):
            return fn(*args, **kwargs)

    return _submit(self, contextvars.copy_context().run, marked, *args, **kwargs)


ThreadPoolExecutor.submit = _submit_marked  # type: ignore[method-assign, assignment]

_EVENT = "before-parameter-build"
if (_EVENT, _note) not in botocore.handlers.BUILTIN_HANDLERS:
    botocore.handlers.BUILTIN_HANDLERS.append((_EVENT, _note))
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register(_EVENT, _note)
