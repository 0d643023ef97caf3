"""One sample of the cold-request bench, run in a fresh interpreter by `bench.cold_start`.

Started as `python -I -S -X pycache_prefix=... bench/cold_probe.py` with the sample's spec as
JSON on stdin: until the spec's paths are put in front of sys.path only the standard library is
importable, so the handler module loads as Lambda loads it. Then: import it (timed), call it
once with the first event (the cold request's invocation, timed) and once with each further
event (warm invocations, timed). The last line on stdout is RESULT_MARKER and the JSON result;
anything the handler prints (EMF metrics, logs) comes before it.

This file runs with the function's sys.path, not the bench's, so it imports only the standard
library, and before the handler only what Lambda's runtime has loaded by then too (json,
logging). For `--explain`: with `"phases": true` it writes a marker line to stderr before each
phase, so that `-X importtime` output can be split by phase (the import, the first call); with
`"profile": true` it prints cProfile tables of both to stderr at the end.
"""

from __future__ import annotations

import json
import logging
import sys
import time

# typing stays unloaded at run time (the handler's own import of it is part of what is timed);
# type checkers read this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

RESULT_MARKER = "cold-probe-result "
PHASE_MARKER = "cold-probe-phase "


class LambdaContext:
    """The attributes of the context object Lambda passes that handlers may read."""

    def __init__(
        self, function_name: str, memory_mb: int, timeout_seconds: int, request_id: str
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id
        self.invoked_function_arn = f"arn:aws:lambda:local:123456789012:function:{function_name}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _phase(name: str, enabled: bool) -> None:
    if enabled:
        print(PHASE_MARKER + name, file=sys.stderr, flush=True)


class Profiles:
    """cProfile profiles of named stretches, printed to stderr at the end; when not enabled,
    nothing (cProfile is imported only when enabled: it loads modules of its own)."""

    def __init__(self, enabled: bool) -> None:
        self._profiles: list[tuple[str, Any]] = []
        self._profile_class: Any = None
        if enabled:
            import cProfile

            self._profile_class = cProfile.Profile

    def start(self, name: str) -> None:
        if self._profile_class is not None:
            profile = self._profile_class()
            self._profiles.append((name, profile))
            profile.enable()

    def stop(self) -> None:
        if self._profiles:
            self._profiles[-1][1].disable()

    def print(self) -> None:
        import pstats

        for name, profile in self._profiles:
            print(f"profile of the {name}:", file=sys.stderr)
            pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(25)


def main() -> None:
    spec = json.load(sys.stdin)
    sys.path[:0] = spec["paths"]
    # The runtime logs INFO and up to stdout before it loads the handler (LogFormat JSON,
    # ApplicationLogLevel INFO in the template); a plain format costs about the same.
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    phases = bool(spec.get("phases"))
    context = LambdaContext(
        spec["function_name"], spec["memory_mb"], spec["timeout_seconds"], spec["request_id"]
    )
    _phase("profiler", phases)
    profiles = Profiles(bool(spec.get("profile")))

    _phase("import", phases)
    profiles.start("import")
    started = time.perf_counter()
    module = __import__(spec["module"], fromlist=["__name__"])
    import_ms = (time.perf_counter() - started) * 1000
    profiles.stop()
    handler = getattr(module, spec["function"])

    calls = []
    for position, event in enumerate(spec["events"]):
        _phase("first call" if position == 0 else "warm calls", phases and position <= 1)
        if position == 0:
            profiles.start("first call")
        started = time.perf_counter()
        error = None
        try:
            reply = handler(event, context)
        except Exception as raised:  # noqa: BLE001 - reported to the bench, which fails the sample
            reply, error = None, f"{type(raised).__name__}: {raised}"
        calls.append({"ms": (time.perf_counter() - started) * 1000, "reply": reply, "error": error})
        if position == 0:
            profiles.stop()
    _phase("done", phases)
    profiles.print()
    print(RESULT_MARKER + json.dumps({"import_ms": import_ms, "calls": calls}, default=str))


if __name__ == "__main__":
    main()
