"""Cold requests: what a caller pays when a request meets a cold Lambda, against the seed's.

Auction orders arrive a few times a day, so most requests meet a cold function. One sample is
one fresh interpreter (`bench/cold_probe.py`) whose sys.path is what Lambda gives the function:
its asset from the synthesized template (cdk.out), its layers (their packages linked from the
interpreter's own site-packages under the same names, since the layers hold arm64 builds), the
runtime's boto3 (linked the same way) and the standard library, nothing else. It imports the
handler (the import column), calls it once with a realistic event against the embedded AWS
endpoint (import + that call = the cold request, the headline), then calls it again with fresh
events (the warm p50). Work deferred from the import to the first call (a lazy boto3 import, a
secret fetch, a client made on first use) is therefore counted where the caller pays it.

A function with the AWS Parameters and Secrets Lambda Extension's layer (the authorizer) reads
its secret as in Lambda, over loopback from the extension: here the local runtime's
(`entrix.local.secrets_extension`, in the bench's process, reading from the embedded endpoint),
with the port and token in the sample's environment. The seed's functions had no extension and
get the environment without its variables. What the bench cannot see is the extension's own
start, which Lambda runs in the Init phase next to the runtime's (docs/cold-start.md).

Each handler is sampled alternately with its baseline, the seed's handler (or a seed-style one
where the seed had none in this shape, `bench/seed/`) doing the same work with the same events
against the same endpoint, so that a change in the machine's load moves both alike. Bytecode is
cached under .bench (`-X pycache_prefix`), nothing is written next to the sources, and the first
round of samples, which compiles it, is discarded.

Run alone: `python -m bench.cold_start [--quick] [--python .venv313/bin/python] [--explain NAME]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.cold_probe import PHASE_MARKER, RESULT_MARKER
from bench.cold_workloads import (
    HANDLER_PREFIX,
    OFF_THE_REQUEST_PATH,
    LocalAws,
    Workload,
    embedded_aws,
    workloads_of,
)
from bench.report import Row, ratio, render
from entrix.local.secrets_extension import SESSION_TOKEN_VARIABLE, is_extension_layer

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / ".bench"
PROBE = Path(__file__).resolve().with_name("cold_probe.py")
SEED_DIR = Path(__file__).resolve().with_name("seed")
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")
# What the Parameters and Secrets Extension brings to a function's environment: its settings (set
# by CDK) and, locally, the session token it checks. The seed's functions had no extension.
EXTENSION_VARIABLES = ("PARAMETERS_SECRETS_EXTENSION_", "SECRETS_MANAGER_", "SSM_PARAMETER_STORE_")
OURS, SEED = "ours", "seed"


@dataclass(frozen=True)
class Baseline:
    """What a handler's cold request is compared with, and the goals on the ratios."""

    module: str  # in bench/seed/
    label: str
    layers: tuple[str, ...] = ()  # packages of the seed's layers
    cold_goal: float | None = None
    warm_goal: float | None = None


BASELINES = {
    "authorizer": Baseline("auth_lambda", "seed auth_lambda", ("jwt",), 0.5, 0.05),
    "ingest": Baseline("post_lambda", "seed post_lambda", (), 0.8),
    "order_status": Baseline("status_lambda", "seed-style, boto3 resource", (), 1.0),
    "results": Baseline("lambda_a", "seed-style Lambda A, boto3 resources", (), 1.0),
    "process": Baseline("lambda_b", "seed-style Lambda B, boto3 resources", (), 1.0),
}


@dataclass(frozen=True)
class Interpreter:
    """A Python to run samples with, and where its packages are."""

    executable: str
    version: str  # "3.13"
    site_packages: Path
    scratch_root: Path = SCRATCH  # links to packages, bytecode cache

    @classmethod
    def of(cls, executable: str) -> Interpreter:
        code = "import json, sys, sysconfig; print(json.dumps(['%d.%d' % sys.version_info[:2], "
        code += "sysconfig.get_paths()['purelib']]))"
        answer = subprocess.run(
            [executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        version, purelib = json.loads(answer)
        return cls(executable, version, Path(purelib))

    @property
    def scratch(self) -> Path:
        return self.scratch_root / f"python{self.version}"


@dataclass(frozen=True)
class LoadPath:
    """What one function has on sys.path when Lambda imports its handler module."""

    name: str
    module: str
    function: str
    paths: tuple[str, ...]

    @property
    def handler(self) -> str:
        return f"{self.module}.{self.function}"


def _link_packages(names: Iterable[str], source: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = into / name
        if (source / name).exists() and not target.is_symlink():
            target.symlink_to(source / name)
    return into


def runtime_path(interpreter: Interpreter) -> Path:
    """The boto3 the python3.13 Lambda runtime provides."""
    return _link_packages(
        RUNTIME_PACKAGES, interpreter.site_packages, interpreter.scratch / "runtime"
    )


def _extra_layer(workload: Workload, interpreter: Interpreter) -> Path:
    """The packages a workload's variant adds to the function's layers (globs resolved in the
    interpreter's site-packages, as its own extension modules are named)."""
    names = sorted(
        path.name
        for pattern in workload.layer_packages
        for path in interpreter.site_packages.glob(pattern)
    )
    into = interpreter.scratch / "layers" / f"variant-{workload.name}"
    return _link_packages(names, interpreter.site_packages, into)


def _layer_shim(layer_dir: Path, interpreter: Interpreter) -> Path:
    packages = sorted(
        entry.name
        for entry in (layer_dir / "python").iterdir()
        if not entry.name.endswith((".dist-info", ".egg-info"))
        and entry.name not in ("bin", "__pycache__")
    )
    into = interpreter.scratch / "layers" / layer_dir.name
    return _link_packages(packages, interpreter.site_packages, into)


def functions_from_template(
    cdk_out: Path, interpreter: Interpreter, stack: str = "Entrix"
) -> list[LoadPath]:
    """Each Lambda function of the stack with its asset and layers, from the template."""
    template = json.loads((cdk_out / f"{stack}.template.json").read_text())
    resources = template["Resources"]

    def asset_dir(logical_id: str) -> Path:
        props = resources[logical_id]["Properties"]
        s3_key = (props.get("Code") or props["Content"])["S3Key"]
        return cdk_out / f"asset.{s3_key.removesuffix('.zip')}"

    load_paths = []
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function" or "Handler" not in resource["Properties"]:
            continue
        props = resource["Properties"]
        module, function = props["Handler"].rsplit(".", 1)
        if not module.startswith(HANDLER_PREFIX):
            continue
        # The extension's layer (an ARN) is no Python code: the samples reach it over loopback.
        layers = [
            _layer_shim(asset_dir(layer["Ref"]), interpreter)
            for layer in props.get("Layers", [])
            if not is_extension_layer(layer)
        ]
        paths = (str(asset_dir(logical_id)), *map(str, layers), str(runtime_path(interpreter)))
        load_paths.append(LoadPath(module.removeprefix(HANDLER_PREFIX), module, function, paths))
    return sorted(load_paths, key=lambda path: path.name)


def without_extension(environment: dict[str, str]) -> dict[str, str]:
    """The environment less the extension's variables: the seed's, which had no extension."""
    return {
        name: value
        for name, value in environment.items()
        if name != SESSION_TOKEN_VARIABLE and not name.startswith(EXTENSION_VARIABLES)
    }


def seed_load_path(baseline: Baseline, interpreter: Interpreter) -> LoadPath:
    """The seed's function: its code folder, its layer (PyJWT alone for auth_lambda), boto3."""
    layers = []
    if baseline.layers:
        into = interpreter.scratch / "layers" / f"seed-{baseline.module}"
        layers.append(str(_link_packages(baseline.layers, interpreter.site_packages, into)))
    paths = (str(SEED_DIR), *layers, str(runtime_path(interpreter)))
    return LoadPath(baseline.module, baseline.module, "lambda_handler", paths)


@dataclass(frozen=True)
class Sample:
    """One fresh interpreter: the handler's import, then each invocation, in milliseconds."""

    import_ms: float
    call_ms: tuple[float, ...]

    @property
    def cold_ms(self) -> float:
        return self.import_ms + self.call_ms[0]

    @property
    def warm_ms(self) -> tuple[float, ...]:
        return self.call_ms[1:]


@dataclass(frozen=True)
class Figures:
    """Medians over samples: import, cold request, warm invocation (over every warm call)."""

    import_ms: float
    cold_ms: float
    warm_p50_ms: float
    samples: int
    warm_calls: int
    cold_range: tuple[float, float] = (0.0, 0.0)  # fastest and slowest cold request

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Figures:
        if not samples:
            raise ValueError("no samples")
        warm = [ms for sample in samples for ms in sample.warm_ms]
        return cls(
            import_ms=statistics.median(s.import_ms for s in samples),
            cold_ms=statistics.median(s.cold_ms for s in samples),
            warm_p50_ms=statistics.median(warm) if warm else float("nan"),
            samples=len(samples),
            warm_calls=len(warm),
            cold_range=(min(s.cold_ms for s in samples), max(s.cold_ms for s in samples)),
        )


def sampling_order(runs: int, warmup_rounds: int = 1) -> list[tuple[int, str]]:
    """(round, side) in the order to sample: one sample per side a round, the first round(s)
    numbered below zero (warm-up, discarded); which side goes first alternates by round, so
    neither always runs right after the other."""
    order = []
    for number in range(-warmup_rounds, runs):
        sides = (SEED, OURS) if number % 2 == 0 else (OURS, SEED)
        order += [(number, side) for side in sides]
    return order


@dataclass
class Comparison:
    ours: list[Sample] = field(default_factory=list)
    seed: list[Sample] = field(default_factory=list)


def compare(
    measure: Callable[[str, int], Sample], runs: int, warmup_rounds: int = 1, with_seed: bool = True
) -> Comparison:
    """Samples of both sides in `sampling_order`, warm-up rounds left out; `measure(side,
    round)` takes one. Without a seed, only our side is sampled."""
    comparison = Comparison()
    for number, side in sampling_order(runs, warmup_rounds):
        if side == SEED and not with_seed:
            continue
        sample = measure(side, number)
        if number >= 0:
            (comparison.ours if side == OURS else comparison.seed).append(sample)
    return comparison


class SampleFailed(RuntimeError):
    """A sample's handler failed or answered wrongly: its timing would measure nothing real."""


@dataclass(frozen=True)
class Probe:
    """Runs samples of one function (ours or its baseline) with one interpreter."""

    interpreter: Interpreter
    load_path: LoadPath
    environment: dict[str, str]
    function_name: str
    memory_mb: int
    timeout_seconds: int

    def command(self, *flags: str) -> list[str]:
        prefix = self.interpreter.scratch / "pycache"
        return [
            self.interpreter.executable,
            "-I",
            "-S",
            "-X",
            f"pycache_prefix={prefix}",
            *flags,
            str(PROBE),
        ]

    def run(
        self, events: list[dict[str, Any]], *flags: str, **options: bool
    ) -> tuple[dict[str, Any], str]:
        """The probe's result and its stderr."""
        spec = {
            "paths": list(self.load_path.paths),
            "module": self.load_path.module,
            "function": self.load_path.function,
            "function_name": self.function_name,
            "memory_mb": self.memory_mb,
            "timeout_seconds": self.timeout_seconds,
            "request_id": str(uuid.uuid4()),
            "events": events,
            **options,
        }
        completed = subprocess.run(
            self.command(*flags),
            input=json.dumps(spec),
            env=self.environment,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
        if completed.returncode != 0 or not lines:
            raise SampleFailed(
                f"{self.load_path.handler} exited {completed.returncode}:\n{completed.stderr}"
            )
        return json.loads(lines[-1].removeprefix(RESULT_MARKER)), completed.stderr

    def sample(self, events: list[dict[str, Any]], check: Callable[[Any], str | None]) -> Sample:
        result, _ = self.run(events)
        for position, call in enumerate(result["calls"]):
            problem = call["error"] or check(call["reply"])
            if problem:
                raise SampleFailed(f"{self.load_path.handler}, call {position + 1}: {problem}")
        return Sample(result["import_ms"], tuple(call["ms"] for call in result["calls"]))


def probes(
    aws: LocalAws, function: LoadPath, workload: Workload, interpreter: Interpreter
) -> dict[str, Probe]:
    """Our function's probe and, when it has a baseline, the seed's, both with the function's
    environment (the seed's handlers read the same variables), the seed's without the
    extension's."""
    spec = aws.function(function.handler)
    environment = aws.environment(spec, workload.environment)
    if workload.layer_packages:
        # One more layer, before the runtime's boto3 (the last entry), as Lambda orders them.
        extra = str(_extra_layer(workload, interpreter))
        function = replace(function, paths=(*function.paths[:-1], extra, function.paths[-1]))

    def probe(load_path: LoadPath, variables: dict[str, str]) -> Probe:
        return Probe(
            interpreter, load_path, variables, spec.function_name, spec.memory_size, spec.timeout
        )

    found = {OURS: probe(function, environment)}
    baseline = BASELINES.get(function.name)
    if baseline is not None:
        found[SEED] = probe(seed_load_path(baseline, interpreter), without_extension(environment))
    return found


def measure_function(
    aws: LocalAws,
    function: LoadPath,
    workload: Workload,
    interpreter: Interpreter,
    runs: int,
    warm_calls: int,
    warmup_rounds: int = 1,
) -> Comparison:
    workload.setup(aws)
    sides = probes(aws, function, workload, interpreter)

    def measure(side: str, number: int) -> Sample:
        events = (workload.events if side == OURS else workload.seed_events)(
            aws, 1 + warm_calls, f"{side}-{number}-{uuid.uuid4().hex[:8]}"
        )
        return sides[side].sample(events, workload.check)

    return compare(measure, runs, warmup_rounds, with_seed=SEED in sides)


def goal_text(value: float, baseline: float, goal: float | None) -> str:
    """`<= 0.50x: met` / `NOT met`, or `reported` when there is no goal."""
    if goal is None or not baseline:
        return "reported"
    return f"<= {goal:.2f}x: {'met' if value / baseline <= goal else 'NOT met'}"


def _number(value: float) -> str:
    """Three significant digits, none after the point from 100 up."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _ms(value: float) -> str:
    return f"{_number(value)} ms"


def _spread(figures: Figures) -> str:
    low, high = figures.cold_range
    return f"{_ms(figures.cold_ms)} ({_number(low)}-{_number(high)})"


def handler_rows(
    section: str,
    name: str,
    description: str,
    ours: Figures,
    seed: Figures | None,
    baseline: Baseline | None,
) -> list[Row]:
    """Three rows a handler: the cold request (headline, with the samples' range), its import,
    the warm p50."""
    cold = f"{name}: cold request = import + first invocation ({description}), "
    cold += f"median of {ours.samples}"
    metrics = (
        (cold, "cold_ms", baseline.cold_goal if baseline else None),
        (f"  {name}: of which import", "import_ms", None),
        (
            f"  {name}: warm invocation p50 ({ours.warm_calls} calls)",
            "warm_p50_ms",
            baseline.warm_goal if baseline else None,
        ),
    )
    rows = []
    for metric, attribute, goal in metrics:
        value = getattr(ours, attribute)
        shown = _spread(ours) if attribute == "cold_ms" else _ms(value)
        if seed is None or baseline is None:
            rows.append(Row(section, metric, shown, "no seed counterpart", "", "reported"))
            continue
        base = getattr(seed, attribute)
        base_shown = (
            f"{_spread(seed)}, {baseline.label}, alternating"
            if attribute == "cold_ms"
            else _ms(base)
        )
        rows.append(
            Row(
                section,
                metric,
                shown,
                base_shown,
                ratio(value, base),
                goal_text(value, base, goal),
            )
        )
    return rows


def rows(
    cdk_out: Path,
    runs: int,
    warm_calls: int,
    executables: Sequence[str] = (sys.executable,),
    only: Sequence[str] = (),
    warmup_rounds: int = 1,
) -> list[Row]:
    """The cold-request rows of every handler, for each interpreter (`warmup_rounds` of
    samples first, discarded: they fill the bytecode cache)."""
    found: list[Row] = []
    interpreters = [Interpreter.of(executable) for executable in executables]
    with embedded_aws(cdk_out) as aws:
        for interpreter in interpreters:
            section = f"cold request (python {interpreter.version})"
            for function in functions_from_template(cdk_out, interpreter):
                workloads = workloads_of(function.name)
                if function.name in OFF_THE_REQUEST_PATH:
                    reason = OFF_THE_REQUEST_PATH[function.name]
                    found.append(
                        Row(section, f"{function.name}: not measured ({reason})", "", "", "", "")
                    )
                    continue
                if not workloads:
                    found.append(
                        Row(section, f"{function.name}: no workload defined", "", "", "", "")
                    )
                    continue
                for workload in workloads:
                    if only and workload.name not in only:
                        continue
                    comparison = measure_function(
                        aws, function, workload, interpreter, runs, warm_calls, warmup_rounds
                    )
                    seed = Figures.of(comparison.seed) if comparison.seed else None
                    found += handler_rows(
                        section,
                        workload.name,
                        workload.description,
                        Figures.of(comparison.ours),
                        seed,
                        BASELINES.get(function.name),
                    )
    return found


@dataclass(frozen=True)
class ImportLine:
    """One line of `-X importtime`: a module, its depth in the import tree, its times (us)."""

    depth: int
    module: str
    self_us: int
    cumulative_us: int


def import_lines(stderr: str) -> dict[str, list[ImportLine]]:
    """`-X importtime` lines of a probe's stderr, by the probe's phase they were printed in."""
    phases: dict[str, list[ImportLine]] = {}
    phase = "before"
    for line in stderr.splitlines():
        if line.startswith(PHASE_MARKER):
            phase = line.removeprefix(PHASE_MARKER)
            continue
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        if not self_us.strip().isdigit():
            continue  # the header line
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        phases.setdefault(phase, []).append(
            ImportLine(depth, name.strip(), int(self_us), int(cumulative_us))
        )
    return phases


def import_summary(lines: list[ImportLine], depth: int = 2, top: int = 12) -> list[str]:
    """The phase's total and its costliest imports down to `depth`, heaviest first."""
    total = sum(line.cumulative_us for line in lines if line.depth == 0)
    shown = sorted(
        (line for line in lines if line.depth <= depth), key=lambda line: -line.cumulative_us
    )
    summary = [f"{total / 1000:.1f} ms of imports"]
    summary += [
        f"{'  ' * line.depth}{line.module}: {line.cumulative_us / 1000:.1f} ms"
        for line in shown[:top]
    ]
    return summary


def profile_text(stderr: str) -> str:
    """The cProfile tables a probe printed at its end."""
    text, phase = [], ""
    for line in stderr.splitlines():
        if line.startswith(PHASE_MARKER):
            phase = line.removeprefix(PHASE_MARKER)
        elif phase == "done" and line.strip() and not line.startswith("import time:"):
            text.append(line)
    return "\n".join(text)


def explain(cdk_out: Path, names: Sequence[str], warm_calls: int, executable: str) -> str:
    """Where one cold request of each named handler spends its time: imports by phase
    (`-X importtime`) and a cProfile of the first invocation; after one untimed sample that
    fills the bytecode cache."""
    interpreter = Interpreter.of(executable)
    report = []
    with embedded_aws(cdk_out) as aws:
        for function in functions_from_template(cdk_out, interpreter):
            for workload in workloads_of(function.name):
                if workload.name in names:
                    report += _explained(aws, function, workload, interpreter, warm_calls)
    return "\n\n".join(report)


def _explained(
    aws: LocalAws, function: LoadPath, workload: Workload, interpreter: Interpreter, warm_calls: int
) -> list[str]:
    report = []
    workload.setup(aws)
    for side, probe in probes(aws, function, workload, interpreter).items():
        make_events = workload.events if side == OURS else workload.seed_events
        events = make_events(aws, 1 + warm_calls, f"explain-{uuid.uuid4().hex[:8]}")
        sample = probe.sample(events, workload.check)
        events = make_events(aws, 1 + warm_calls, f"explain-{uuid.uuid4().hex[:8]}")
        _, stderr = probe.run(events, "-X", "importtime", phases=True, profile=True)
        report.append(
            f"## {workload.name} ({side}: {probe.load_path.handler}), python "
            f"{interpreter.version}: import {sample.import_ms:.0f} ms + first call "
            f"{sample.call_ms[0]:.0f} ms (untimed-run figures)"
        )
        phases = import_lines(stderr)
        for phase in ("import", "first call"):
            lines = import_summary(phases.get(phase, []))
            report.append(f"imports during the {phase}: " + "\n    ".join(lines))
        report.append(profile_text(stderr))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__)
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--runs", type=int, default=15, help="samples per side and handler")
    parser.add_argument("--warm-calls", type=int, default=10, help="warm invocations a sample")
    parser.add_argument("--quick", action="store_true", help="3 runs of 3 warm calls")
    parser.add_argument(
        "--python",
        action="append",
        help="interpreter to sample with (repeatable; default: this one)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="handler name, or a variant's (authorizer-jwks); repeatable",
    )
    parser.add_argument(
        "--explain", action="append", default=[], help="print where NAME's cold request goes"
    )
    args = parser.parse_args(argv)
    if not (args.cdk_out / "Entrix.template.json").is_file():
        print(f"no {args.cdk_out}/Entrix.template.json: run `make synth` first", file=sys.stderr)
        return 1
    runs, warm_calls = (3, 3) if args.quick else (args.runs, args.warm_calls)
    executables = args.python or [sys.executable]
    if args.explain:
        print(explain(args.cdk_out, args.explain, warm_calls, executables[0]))
        return 0
    print(render(rows(args.cdk_out, runs, warm_calls, executables, args.only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
