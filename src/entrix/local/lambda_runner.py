"""Run Lambda handlers in this process, each with its own function's environment.

moto runs Lambda code only in Docker, which this project cannot rely on. The one place where moto
runs a function is the private method `moto.awslambda.models.LambdaFunction._invoke_lambda(self,
event) -> (payload_json, errored, logs)`; `moto_lambdas_in_process()` replaces it so that every
invocation moto makes (the `Invoke` API, and the Lambda tasks of state machines it executes) calls
`invoke()` here, which imports the function's `Handler` (`package.module.function`) from the
installed `entrix` package and calls it. moto is pinned (5.2.5) and `tests/local` keeps a test on
this private API.

As in Lambda:
- the handler sees its function's `Environment` variables plus the runtime's own
  (`AWS_LAMBDA_FUNCTION_NAME`, `_HANDLER`, ...) and a context object;
- an exception becomes the payload `{"errorMessage", "errorType", "requestId", "stackTrace"}` with
  `errored=True`, and `errorType` is the exception's class name, so a state machine `Retry` or
  `Catch` on `"OrderStoreUnavailable"` fires for `raise OrderStoreUnavailable(...)`.

Environment variables are process-wide, but each invocation must see only its function's. The
runner therefore replaces `os.environ` (once, on first use) with a view that shows a thread
running a handler its function's environment (the process's variables plus the function's),
and every other thread the process's own, untouched: changing the real variables for each
invocation raced with moto's threads reading them (a variable removed while a state machine
thread iterated `os.environ` to create a boto3 client raised `KeyError` there). Handlers still
run one at a time, under one lock, as moto's backends are not made for concurrent writers.
Modules are imported once per process, on first use and inside that function's environment, like
a warm Lambda container kept for every function: a handler module that reads variables at import
time sees its own function's (each function has its own handler module), but a module shared by
two functions keeps what the first one imported it with. A handler that made moto invoke
another function synchronously would wait for this lock until its own deadline; none does, and
SNS's deliveries to Lambda, which moto makes inside `Publish`, are queued and made by a thread
of their own, as SNS invokes a function asynchronously: one at a time, in order, each waiting
for the invocations running (SNS would invoke side by side).

The function's Timeout is enforced as Lambda reports it. Each handler runs in a worker thread of
its own while the invoking thread waits, under the lock, until the deadline. The Init phase (the
handler module's import, when it is not imported yet) has 10 s of its own, as on an on-demand
function, and the Timeout counts from the handler's call; an Init longer than that goes on under
the Timeout, as Lambda's Init retried inside the invocation does (REPORT's `Init Duration` is
written for an Init within its 10 s). A handler still
running then is abandoned: the invocation reports what Lambda reports (the payload `{"errorType":
"Sandbox.Timedout", "errorMessage": "RequestId: ... Error: Task timed out after N.00 seconds"}`,
`Status: timeout` on the REPORT line), the lock is released, and the handler's module is dropped
from `sys.modules`, so the next invocation imports it again and its module-level code runs again,
as Lambda resets the execution environment after a timeout and initializes it again on the next
invocation. Every AWS call the abandoned handler, or a thread running in a copy of its context,
starts after the deadline is refused before it is sent (a botocore `before-call` hook raises
`HandlerTimedOut`, a BaseException, so that `except Exception` does not swallow it): past its
deadline a handler reaches nothing; a `ThreadPoolExecutor`'s tasks run in a copy of the
submitting thread's context (`entrix.local.call_log`), so the pool work of an abandoned handler
is refused too. `abandoned_handlers()` lists the abandoned threads still running: the test suite
fails a test that leaves one behind. A thread cannot be killed; a subprocess per function could
be, but would lose the in-process speed and moto's in-process backends. Raising an exception in
the worker (`PyThreadState_SetAsyncExc`) was tried and dropped: under coverage's tracer, a
pending one for a thread blocked in a C call made the other threads spin (a `join` never
returned). What differs from AWS:
- the abandoned handler's Python code runs on until it returns or makes its next AWS call (which
  raises); a call it had in flight at the deadline may still complete;
- a thread it started itself with `threading.Thread` (which passes no context) is not refused;
- an Init past its timeout leaves the module's import running: the next invocation's import
  waits for it (Lambda would run the Init again from the start);
- only the handler's own module is imported again: modules it shares with other functions
  (`entrix.aws`, `entrix.settings`, boto3) keep their state, where Lambda starts a new process.
The context's `get_remaining_time_in_millis()` counts down from the Timeout as in Lambda.

Usage in a test with `mock_aws` (the state machine's Lambda calls are then intercepted in process)::

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), \\
            moto_lambdas_in_process():
        ...create the function with Handler="entrix.handlers.process.handler", start an execution
"""

from __future__ import annotations

import contextlib
import contextvars
import decimal
import functools
import importlib
import io
import json
import logging
import math
import os
import queue
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import boto3
import botocore.handlers

from entrix.local import call_log

_INVOCATION_LOCK = threading.RLock()
_LOGGER = logging.getLogger(__name__)
# Lambda's errorType for an invocation past its function's timeout on current runtimes (python3.13
# included; docs/local-runtime.md, "Lambda timeouts"); Step Functions names the task's error by it.
TIMEOUT_ERROR_TYPE = "Sandbox.Timedout"
# Lambda's Init phase (the handler module's import) has 10 s of its own on an on-demand function;
# past that, Lambda initializes again inside the invocation, under the function's Timeout.
INIT_SECONDS = 10.0
# `log` is the list collecting a thread's output while it runs a handler, else None;
# `environ` the variables a thread sees inside `applied_environment()`, else None.
_invocation = threading.local()
# The running invocation's log records' destination, for the threads a handler starts with a copy
# of its context (Lambda B's calls): in Lambda every thread of the process logs to the function.
_invocation_sink: contextvars.ContextVar[_LogSink | None] = contextvars.ContextVar(
    "invocation_sink", default=None
)
# The invocation whose handler runs in this context: its worker thread, and the threads it starts
# with a copy of its context.
_current_run: contextvars.ContextVar[_Run | None] = contextvars.ContextVar(
    "current_run", default=None
)
# Where the deployer keeps a function's LoggingConfig on moto's function object (moto drops it);
# versions copy it with the function.
LOGGING_CONFIG_ATTRIBUTE = "entrix_logging_config"
# Lambda's JSON log lines carry these keys, then every attribute a handler added to its record.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",  # a record attribute from python 3.12
}


@dataclass(frozen=True)
class FunctionSpec:
    """What the runtime needs to know about a function to invoke it."""

    function_name: str
    handler: str
    environment: Mapping[str, str] = field(default_factory=dict)
    function_arn: str = ""
    region: str = "eu-west-1"
    memory_size: int = 128
    timeout: int = 3
    version: str = "$LATEST"
    runtime: str = "python3.13"
    # LoggingConfig: "Text" or "JSON", the application log level (JSON: INFO unless set), the
    # log group (Lambda's default: /aws/lambda/<function>).
    log_format: str = "Text"
    log_level: str = ""
    log_group: str = ""

    @property
    def log_group_name(self) -> str:
        return self.log_group or f"/aws/lambda/{self.function_name}"


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation, shaped as moto's `_invoke_lambda` returns it."""

    payload: str
    errored: bool
    logs: str = ""

    def as_moto_result(self) -> tuple[str, bool, str]:
        return self.payload, self.errored, self.logs

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class LambdaContext:
    """The attributes and method of the Python runtime's context object that handlers use."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    # `time.monotonic()` at the Timeout; infinite until the handler's clock starts (after Init).
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class _LambdaEncoder(json.JSONEncoder):
    """Encodes a handler's result like the Python runtime, which accepts Decimal numbers."""

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return int(o) if o == o.to_integral_value() else float(o)
        return super().default(o)


class _RoutedOutput(io.TextIOBase):
    """Stands in for sys.stdout or sys.stderr: a thread running a handler writes to its
    invocation's log, any other thread to the console.

    Loggers that keep a reference to the stream (Powertools binds sys.stdout when created) are
    routed too, as the decision is taken on each write.
    """

    def __init__(self, console: TextIO) -> None:
        self.console = console

    def write(self, text: str) -> int:
        log = getattr(_invocation, "log", None)
        if log is None:
            return self.console.write(text)
        log.append(text)
        return len(text)

    def flush(self) -> None:
        self.console.flush()

    def isatty(self) -> bool:
        return self.console.isatty()

    def fileno(self) -> int:
        return self.console.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.console.encoding


class _LambdaLogHandler(logging.Handler):
    """The root log handler the Lambda Python runtime installs: a record logged by a running
    handler goes to its invocation's log as `[LEVEL]\ttime\trequestId\tmessage`; a record
    logged outside any invocation goes to the console, as Python's last-resort handler would."""

    def __init__(self, console: TextIO) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        sink = getattr(_invocation, "sink", None) or _invocation_sink.get()
        if sink is None:
            if record.levelno >= logging.WARNING:
                self.console.write(self.format(record) + "\n")
            return
        if sink.log_format == "JSON":
            sink.lines.append(json.dumps(lambda_json(record, sink.request_id), default=str) + "\n")
            return
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        moment = _timestamp(record)
        sink.lines.append(f"[{record.levelname}]\t{moment}\t{sink.request_id}\t{text}\n")


@dataclass(frozen=True)
class _LogSink:
    """Where one invocation's log records go, and in which of Lambda's formats."""

    lines: list[str]
    request_id: str
    log_format: str


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{moment[:-3]}Z"


def lambda_json(record: logging.LogRecord, request_id: str) -> dict[str, Any]:
    """The object Lambda's Python runtime writes for `record` when the function's log format is
    JSON: timestamp, level, message, logger, requestId, then every attribute the handler added
    (`extra=`), and the exception's type, message and stack when there is one."""
    line: dict[str, Any] = {
        "timestamp": _timestamp(record),
        "level": record.levelname,
        "message": record.getMessage(),
        "logger": record.name,
        "requestId": request_id,
    }
    line.update({k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES})
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        line["errorType"] = type(error).__name__
        line["errorMessage"] = str(error)
        line["stackTrace"] = traceback.format_tb(error.__traceback__)
    return line


@contextlib.contextmanager
def handler_output_captured() -> Iterator[None]:
    """While the block runs, what handlers print or log goes to their invocation's logs (and
    so to CloudWatch Logs when moto invokes them), not to this process's stdout and stderr."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _RoutedOutput(sys.stdout), _RoutedOutput(sys.stderr)
    log_handler = _LambdaLogHandler(saved[1])
    logging.getLogger().addHandler(log_handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(log_handler)
        sys.stdout, sys.stderr = saved


def load_handler(handler: str) -> Callable[[Any, Any], Any]:
    """The callable named by a Lambda `Handler` setting such as `entrix.handlers.ingest.handler`."""
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {handler!r} is not of the form module.function")
    function = getattr(importlib.import_module(module_name), function_name)
    if not callable(function):
        raise TypeError(f"handler {handler!r} is not callable")
    return function


def runtime_environment(spec: FunctionSpec) -> dict[str, str]:
    """The variables Lambda sets for this function, its own `Environment` taking precedence."""
    variables = {
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group_name,
        "AWS_LAMBDA_LOG_FORMAT": spec.log_format,
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
    }
    if spec.log_level:
        variables["AWS_LAMBDA_LOG_LEVEL"] = spec.log_level
    variables.update({k: str(v) for k, v in spec.environment.items()})
    return variables


class _ThreadEnvironment(MutableMapping[str, str]):
    """Stands in for `os.environ`: inside `applied_environment()` a thread reads and writes its
    own copy of the variables; any other thread reads and writes the process's."""

    def __init__(self, process: MutableMapping[str, str]) -> None:
        self.process = process

    def _visible(self) -> MutableMapping[str, str]:
        own: MutableMapping[str, str] | None = getattr(_invocation, "environ", None)
        return self.process if own is None else own

    def __getitem__(self, name: str) -> str:
        return self._visible()[name]

    def __setitem__(self, name: str, value: str) -> None:
        self._visible()[name] = value

    def __delitem__(self, name: str) -> None:
        del self._visible()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._visible()))

    def __len__(self) -> int:
        return len(self._visible())

    def copy(self) -> dict[str, str]:
        return dict(self._visible())

    def __repr__(self) -> str:
        return f"environ({dict(self._visible())!r})"


@contextlib.contextmanager
def applied_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """For the duration, this thread sees the variables it saw plus `variables` in `os.environ`;
    other threads see no change."""
    if not isinstance(os.environ, _ThreadEnvironment):
        # Rebinding, not clearing, is the point: the process keeps its variables behind the view.
        os.environ = _ThreadEnvironment(os.environ)  # type: ignore[assignment]  # noqa: B003
    outer = getattr(_invocation, "environ", None)
    _invocation.environ = {**os.environ, **variables}
    try:
        yield
    finally:
        _invocation.environ = outer


class HandlerTimedOut(BaseException):
    """Raised by every AWS call a handler starts after its function's deadline: a BaseException,
    so that the handler's `except Exception` does not swallow it."""


@dataclass
class _Run:
    """One invocation's handler call, made in its worker thread; `outcome` is set when the
    handler returned or raised before the invoking thread abandoned it (`stopped`)."""

    spec: FunctionSpec
    event: Any
    context: LambdaContext
    environment: Mapping[str, str]
    captured: list[str]
    outcome: Invocation | None = None
    stopped: bool = False
    # When the handler's clock started (after the Init phase), and how long a cold Init took.
    started: float = math.inf
    init_milliseconds: float | None = None
    initialized: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> None:
        """The worker thread's body, in a copy of the invoking thread's context."""
        request_id = self.context.aws_request_id
        sink = _LogSink(self.captured, request_id, self.spec.log_format)
        _current_run.set(self)
        _invocation_sink.set(sink)
        _invocation.log, _invocation.sink = self.captured, sink
        try:
            with applied_environment(self.environment), call_log.running(self.spec.function_name):
                try:
                    handler = self._initialize()
                    result = handler(self.event, self.context)
                    outcome = _result(request_id, result)
                except HandlerTimedOut:
                    raise
                except BaseException as error:  # noqa: BLE001 - Lambda reports each as a payload
                    outcome = _error(request_id, type(error).__name__, str(error), error)
                with self.lock:
                    if not self.stopped:
                        self.outcome = outcome
        except HandlerTimedOut:
            pass  # the invoking thread has reported the timeout; this thread ends here

    def _initialize(self) -> Callable[[Any, Any], Any]:
        """The Init phase: the handler's module imported (if it is not already, or its function
        timed out since), then the function's clock started."""
        module = self.spec.handler.rpartition(".")[0]
        with _abandoned_lock:
            if module in _reset_modules:
                # An import abandoned in flight may have put it back after `finish()` dropped it.
                _reset_modules.discard(module)
                sys.modules.pop(module, None)
        cold = module not in sys.modules
        began = time.monotonic()
        try:
            return load_handler(self.spec.handler)
        finally:
            with self.lock:
                if cold and self.started == math.inf:
                    self.init_milliseconds = (time.monotonic() - began) * 1000
                self.start_clock()
            self.initialized.set()

    def start_clock(self) -> None:
        """Start the Timeout's count, once (call under `lock`)."""
        if self.started == math.inf:
            self.started = time.monotonic()
            self.context.deadline = self.started + self.spec.timeout

    def finish(self) -> Invocation | None:
        """The handler's outcome; None when it was still running, and is now abandoned (its
        later AWS calls raise `HandlerTimedOut`)."""
        with self.lock:
            if self.outcome is not None:
                return self.outcome
            self.stopped = True
        # Lambda resets the execution environment: the next invocation runs the module again.
        module = self.spec.handler.rpartition(".")[0]
        with _abandoned_lock:
            if not self.initialized.is_set():  # its import, still running, may put it back
                _reset_modules.add(module)
            sys.modules.pop(module, None)
        return None


# The worker threads of timed-out invocations, for `abandoned_handlers()`; the handler modules
# the next invocation imports anew.
_abandoned: list[threading.Thread] = []
_reset_modules: set[str] = set()
_abandoned_lock = threading.Lock()


def abandoned_handlers() -> list[threading.Thread]:
    """The threads of handlers abandoned at their timeout that are still running (their Python
    code runs on until it returns or makes an AWS call): a test suite checks none outlives its
    test."""
    with _abandoned_lock:
        _abandoned[:] = [thread for thread in _abandoned if thread.is_alive()]
        return list(_abandoned)


def forget_abandoned(threads: list[threading.Thread]) -> None:
    """Stop listing these threads (already reported) in `abandoned_handlers()`."""
    with _abandoned_lock:
        _abandoned[:] = [thread for thread in _abandoned if thread not in threads]


def invoke(spec: FunctionSpec, event: Any) -> Invocation:
    """Call the function's handler with `event`, as the Lambda Python runtime would, and stop it
    at the function's timeout (see the module's docstring).

    `logs` holds what the handler printed or logged through an output installed by
    `handler_output_captured()`, between Lambda's START and END/REPORT lines.
    """
    request_id = str(uuid.uuid4())
    # Lambda runs concurrent invocations side by side; here they take turns, and the turn's wait
    # counts neither against the timeout nor in the reported duration.
    with _INVOCATION_LOCK:
        context = LambdaContext(
            function_name=spec.function_name,
            function_version=spec.version,
            invoked_function_arn=spec.function_arn,
            memory_limit_in_mb=spec.memory_size,
            aws_request_id=request_id,
            log_group_name=spec.log_group_name,
            log_stream_name=f"local/[{spec.version}]{request_id.replace('-', '')}",
            deadline=math.inf,
        )
        captured: list[str] = [f"START RequestId: {request_id} Version: {spec.version}\n"]
        # The invoking thread's variables plus the function's, as the worker's own view.
        run = _Run(spec, event, context, {**os.environ, **runtime_environment(spec)}, captured)
        worker = threading.Thread(
            target=contextvars.copy_context().run,
            args=(run,),
            name=f"{spec.function_name} {request_id}",
            daemon=True,
        )
        root = logging.getLogger()
        root_level = root.level
        if spec.log_level:
            root.setLevel(spec.log_level)
        try:
            worker.start()
            if not run.initialized.wait(INIT_SECONDS):
                with run.lock:  # the Init goes on inside the invocation, under its Timeout
                    run.start_clock()
            worker.join(max(0.0, context.deadline - time.monotonic()))
            outcome = run.finish()
        finally:
            root.setLevel(root_level)
    milliseconds = (time.monotonic() - run.started) * 1000
    status = ""
    if outcome is None:
        with _abandoned_lock:
            _abandoned.append(worker)
        outcome = _timed_out(request_id, spec.timeout)
        milliseconds, status = spec.timeout * 1000.0, "\tStatus: timeout"
    init = ""
    if run.init_milliseconds is not None:
        init = f"\tInit Duration: {run.init_milliseconds:.2f} ms"
    if outcome.errored:
        captured.append(outcome.logs)
    captured.append(f"END RequestId: {request_id}\n")
    captured.append(
        f"REPORT RequestId: {request_id}\tDuration: {milliseconds:.2f} ms\t"
        f"Memory Size: {spec.memory_size} MB{init}{status}\n"
    )
    return Invocation(outcome.payload, outcome.errored, "".join(captured))


def _stopped_system(spec: FunctionSpec) -> Invocation:
    """The answer to an invocation asked for while the local system stops (not an AWS error:
    nothing of the kind happens there)."""
    message = f"{spec.function_name} not invoked: the local system is stopping"
    payload = {"errorType": "LocalSystemStopping", "errorMessage": message}
    return Invocation(json.dumps(payload), errored=True, logs=message + "\n")


def _timed_out(request_id: str, timeout: int) -> Invocation:
    """What Lambda answers for an invocation past its function's timeout."""
    message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
    payload = {"errorType": TIMEOUT_ERROR_TYPE, "errorMessage": message}
    return Invocation(json.dumps(payload), errored=True, logs=message + "\n")


def _refuse_after_deadline(context: Mapping[str, Any], **_: Any) -> None:
    """botocore `before-call` hook: a stopped handler starts no AWS call (and the call, never
    made, leaves the call log's recordings)."""
    run = _current_run.get()
    if run is not None and run.stopped:
        call_log.withdraw(context)
        raise HandlerTimedOut(f"{run.spec.function_name} is past its timeout")


def _result(request_id: str, result: Any) -> Invocation:
    try:
        return Invocation(json.dumps(result, cls=_LambdaEncoder), errored=False)
    except (TypeError, ValueError) as error:
        message = f"Unable to marshal response: {error}"
        return _error(request_id, "Runtime.MarshalError", message, error)


def _error(request_id: str, error_type: str, message: str, error: BaseException) -> Invocation:
    stack = traceback.format_tb(error.__traceback__)
    payload = {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack,
    }
    logs = f"[ERROR] {error_type}: {message}\n" + "".join(traceback.format_exception(error))
    return Invocation(json.dumps(payload), errored=True, logs=logs)


def spec_of(moto_function: Any) -> FunctionSpec:
    """The `FunctionSpec` of a `moto.awslambda.models.LambdaFunction`."""
    return FunctionSpec(
        function_name=moto_function.function_name,
        handler=moto_function.handler,
        environment=dict(moto_function.environment_vars or {}),
        function_arn=moto_function.function_arn,
        region=moto_function.region,
        memory_size=int(moto_function.memory_size),
        timeout=int(moto_function.timeout),
        version=str(moto_function.version),
        runtime=moto_function.run_time or "python3.13",
        **logging_fields(getattr(moto_function, LOGGING_CONFIG_ATTRIBUTE, {})),
    )


def logging_fields(config: Mapping[str, Any]) -> dict[str, str]:
    """FunctionSpec's log fields from a function's LoggingConfig, with Lambda's defaults: Text,
    or JSON with the application log level INFO unless one is set."""
    log_format = str(config.get("LogFormat", "Text"))
    level = str(config.get("ApplicationLogLevel", "INFO")) if log_format == "JSON" else ""
    return {"log_format": log_format, "log_level": level, "log_group": config.get("LogGroup", "")}


def invoke_moto_function(moto_function: Any, event: Any) -> Invocation:
    """Invoke a function moto holds, and save its logs in moto's CloudWatch Logs (its
    LoggingConfig's group, else `/aws/lambda/<name>`), as Lambda does.

    The logs are saved under the invocation lock too: moto creates a missing log group with an
    unlocked check-then-set, so two first invocations at once could each create it, and the
    stream of the one replaced would be gone when its events arrive."""
    with _INVOCATION_LOCK:
        spec = spec_of(moto_function)
        if _stopping.is_set():
            return _stopped_system(spec)
        invocation = invoke(spec, event)
        moto_function.logs_group_name = spec.log_group_name
        moto_function.logs_backend.ensure_log_group(moto_function.logs_group_name)
        moto_function.save_logs(invocation.logs)
    return invocation


def _moto_invoke(moto_function: Any, event: Any = None) -> tuple[str, bool, str]:
    """Replacement for `LambdaFunction._invoke_lambda`: the event arrives parsed or as text."""
    if event is None:
        event = {}
    elif isinstance(event, str | bytes):
        event = json.loads(event or "{}")
    return invoke_moto_function(moto_function, event).as_moto_result()


class _AsyncDeliveries:
    """SNS invokes a subscribed function asynchronously: `Publish` returns at once and Lambda
    runs the function later. moto invokes it inside `Publish`, in the caller's thread, so a
    handler publishing to a topic the Slack forwarder subscribes to would wait for the invocation
    lock its own invocation holds, until its timeout. Here each delivery is queued, and one
    thread of the runtime's own makes them in order. Closed (by a stopping system), it drops
    what it is given: nothing runs after enforcement has stopped."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
        self._pending = 0
        self._open = True
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        with self._changed:
            self._open = True

    def put(self, delivery: Callable[[], Any]) -> None:
        with self._changed:
            if not self._open:
                _LOGGER.warning("SNS delivery to Lambda dropped: the local system is stopping")
                return
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._deliver, name="SNS deliveries to Lambda", daemon=True
                )
                self._thread.start()
            self._queue.put(delivery)

    def _deliver(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                delivery()
            except Exception:  # SNS logs a failed delivery; the others go on
                _LOGGER.exception("SNS could not deliver to Lambda")
            finally:
                with self._changed:
                    self._pending -= 1
                    self._changed.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until every queued delivery is made; False if some are left at `timeout`."""
        with self._changed:
            return self._changed.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float) -> bool:
        """Drain, then drop whatever is still queued or comes later; False if some were."""
        drained = self.drain(timeout)
        with self._changed:
            self._open = False
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
                self._pending -= 1
        return drained


_deliveries = _AsyncDeliveries()
# How long a stop waits for deliveries still queued: a function's Timeout is at most 900 s, ours
# are far shorter.
DRAIN_SECONDS = 120.0
# Set while a local system stops: no invocation starts (see `SnsDeliveriesDrain`).
_stopping = threading.Event()


def wait_for_sns_deliveries(timeout: float = DRAIN_SECONDS) -> bool:
    """Wait until SNS has delivered every message published so far to its Lambda subscribers;
    False if some are still queued at `timeout`."""
    return _deliveries.drain(timeout)


class SnsDeliveriesDrain:
    """The part of a local system that stops after everything that publishes and before its
    enforcement: the messages published reach their subscribers, then no invocation starts
    (a state machine still running, an API request in flight get a function error), and the
    one running ends (or times out) before `stop()` returns."""

    def stop(self) -> None:
        drained = _deliveries.close(DRAIN_SECONDS)
        _stopping.set()
        with _INVOCATION_LOCK:
            pass  # the invocation running, if any, has ended
        if not drained:
            raise RuntimeError(f"SNS deliveries to Lambda still queued after {DRAIN_SECONDS} s")


@contextlib.contextmanager
def moto_lambdas_in_process() -> Iterator[None]:
    """Make moto run every Lambda invocation through `invoke()` while the block runs, and SNS
    deliver to Lambda asynchronously (the deliveries still queued are made before it ends)."""
    from moto.awslambda.models import LambdaBackend, LambdaFunction

    original = LambdaFunction._invoke_lambda
    send_now = LambdaBackend.send_sns_message

    def send_later(backend: Any, *args: Any, **kwargs: Any) -> None:
        _deliveries.put(functools.partial(send_now, backend, *args, **kwargs))

    LambdaFunction._invoke_lambda = _moto_invoke  # type: ignore[method-assign,assignment]
    LambdaBackend.send_sns_message = send_later  # type: ignore[method-assign,assignment]
    _stopping.clear()
    _deliveries.open()
    try:
        yield
    finally:
        if not _deliveries.close(DRAIN_SECONDS):
            _LOGGER.warning("SNS deliveries to Lambda still queued were dropped")
        LambdaBackend.send_sns_message = send_now  # type: ignore[method-assign]
        LambdaFunction._invoke_lambda = original  # type: ignore[method-assign]


# Every session made from now on copies botocore's built-in handlers; boto3's default one may
# exist already. Clients made earlier from another session are not guarded (handlers make theirs
# at import, after the runtime has imported this module).
_GUARD_EVENT = "before-call"
if (_GUARD_EVENT, _refuse_after_deadline) not in botocore.handlers.BUILTIN_HANDLERS:
    botocore.handlers.BUILTIN_HANDLERS.append((_GUARD_EVENT, _refuse_after_deadline))
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register(_GUARD_EVENT, _refuse_after_deadline)
