"""`python -m bench --smoke`: every workload of `make bench` once, at its smallest, so that the
bench cannot break unnoticed (`make test` runs it: tests/bench/test_smoke.py).

Each part of the bench runs the code `make bench` runs, with one sample and the least work that
still takes every path: one cold request of each handler and of its baseline (no warm-up round,
one warm call), a few POSTs, a few orders through the pipeline, a few items swept, a
30-order Lambda B batch by each side, two small runs counted. The figures it
prints mean nothing and nothing about them is checked: a part fails when it raises (a handler
that fails or answers wrongly, a request refused, an order lost, a run that does not succeed)
and when a function of the template has no cold-request workload. Every part runs even after
one fails; the exit status is 1 when any failed.

The cold requests load the bundled assets, as `make bench` does from `make synth`'s cdk.out. So
that `make test` needs no `make synth`, the smoke synthesizes the service stack with its assets
bundled into .bench/smoke/cdk.out when that one is older than the sources (about 10-25 s), and
reuses it otherwise.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from bench import (
    api_latency,
    cold_start,
    enforcement,
    ingest_writes,
    lambda_b_latency,
    load,
    pipeline_profile,
    pipeline_scale,
    run_sends,
    ttl_sweep,
)
from bench.cold_workloads import OFF_THE_REQUEST_PATH, WORKLOADS
from bench.report import Row, render
from entrix.local.node import jsii_environment
from entrix.local.synth import STACK_NAME, TEMPLATE_FILE, cdk_context

ROOT = Path(__file__).resolve().parent.parent
SMOKE_CDK_OUT = ROOT / ".bench" / "smoke" / "cdk.out"
# What the bundled assets and the template are made from.
SOURCE_GLOBS = ("app.py", "cdk.json", "uv.lock", "infra/**/*.py", "src/**/*.py")
# The smallest sizes that still take every path of each part.
PIPELINE_RUN_ORDERS = 5  # one run of 5 pending orders
RANDOM_ORDERS = 10  # one random-mode run: some accepted, some rejected
INGEST_ORDERS = 30  # more than one BatchWriteItem of the baseline
LAMBDA_B_ORDERS = 30  # both outcomes, more than one PublishBatch of rejections
SENDS_SIZES = (10, 20)  # two runs, half rejected each


class SmokeFailed(RuntimeError):
    """A part of the bench could not run its workload."""


def _sources_mtime(root: Path) -> float:
    return max(
        (path.stat().st_mtime for pattern in SOURCE_GLOBS for path in root.glob(pattern)),
        default=0.0,
    )


def bundled_cdk_out(root: Path = ROOT, outdir: Path = SMOKE_CDK_OUT) -> Path:
    """A cloud assembly with the service stack's assets bundled, newer than every source:
    `outdir` as it is when fresh, else synthesized into it (the CDK app run as `cdk synth`
    runs it, bundling only the service stack). A lock serializes smoke runs started together."""
    outdir.mkdir(parents=True, exist_ok=True)
    template = outdir / TEMPLATE_FILE
    with (outdir.parent / "synth.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if template.is_file() and template.stat().st_mtime >= _sources_mtime(root):
            return outdir
        context = {**cdk_context(root), "aws:cdk:bundling-stacks": [STACK_NAME]}
        completed = subprocess.run(
            [sys.executable, "app.py"],
            cwd=root,
            env={
                **os.environ,
                "CDK_OUTDIR": str(outdir),
                "CDK_CONTEXT_JSON": json.dumps(context),
                **jsii_environment(),
            },
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0 or not template.is_file():
            raise SmokeFailed(
                f"`python app.py` failed (exit {completed.returncode}):\n"
                f"{completed.stdout[-4000:]}{completed.stderr[-4000:]}"
            )
        template.touch()
        _prune_assets(outdir)
    return outdir


def _prune_assets(outdir: Path) -> None:
    """Remove the asset folders of earlier syntheses that no template of `outdir` names."""
    named = "".join(path.read_text() for path in outdir.glob("*.template.json"))
    for folder in outdir.glob("asset.*"):
        if folder.is_dir() and folder.name.removeprefix("asset.") not in named:
            shutil.rmtree(folder)


def check_workloads(functions: Iterable[cold_start.LoadPath]) -> None:
    """Every function has a cold-request workload: `make bench` would leave one without it
    unmeasured (a row saying so), which the smoke takes as a failure."""
    missing = sorted(
        function.name
        for function in functions
        if function.name not in WORKLOADS and function.name not in OFF_THE_REQUEST_PATH
    )
    if missing:
        raise SmokeFailed(
            f"no cold-request workload for {', '.join(missing)}: add one to WORKLOADS in "
            "bench/cold_workloads.py"
        )


def cold_requests(cdk_out: Path, executables: list[str]) -> list[Row]:
    """One cold request (and one warm call) of every handler and of its baseline."""
    for executable in executables:
        interpreter = cold_start.Interpreter.of(executable)
        check_workloads(cold_start.functions_from_template(cdk_out, interpreter))
    return cold_start.rows(cdk_out, 1, 1, executables, warmup_rounds=0)


def explain_one(cdk_out: Path, executable: str) -> list[Row]:
    """`python -m bench.cold_start --explain` of one handler with a baseline (its import-time
    phases and profile, the probe's other mode)."""
    report = cold_start.explain(cdk_out, ["order_status"], 0, executable)
    if "## order_status (seed" not in report or "imports during the import" not in report:
        raise SmokeFailed(f"--explain printed no import phases:\n{report[:2000]}")
    return [Row("cold request", "--explain order_status", f"{len(report):,} characters")]


def profile_one(template_path: Path) -> list[Row]:
    """`python -m bench.pipeline_profile` of a run of a few orders."""
    stats = pipeline_profile.profile_run(template_path, PIPELINE_RUN_ORDERS)
    return [Row("pipeline", "profile of one run", f"{stats.total_calls:,} calls")]  # type: ignore[attr-defined]


def ingest_and_pipeline(template: Path) -> list[Row]:
    """The ingest rows, and the pipeline's with the ingest's write units in its cost rows."""
    ingest = ingest_writes.measure(template, INGEST_ORDERS, repeats=1)
    return ingest_writes.rows(ingest) + pipeline_scale.rows(
        template,
        repeats={PIPELINE_RUN_ORDERS: 1},
        random_orders=RANDOM_ORDERS,
        base_size=PIPELINE_RUN_ORDERS,
        ingest=ingest.cost_inputs(),
    )


def parts(cdk_out: Path, executables: list[str]) -> list[tuple[str, Callable[[], list[Row]]]]:
    """Every part of `make bench` (`bench/__main__.py`) at its smallest, then the tools."""
    template = cdk_out / TEMPLATE_FILE
    # The embedded endpoint of the cold requests comes first: the in-process parts leave moto's
    # backends holding the template's resources (each in-process system resets them first).
    return [
        ("cold requests", lambda: cold_requests(cdk_out, executables)),
        ("cold request --explain", lambda: explain_one(cdk_out, executables[0])),
        ("local API", lambda: api_latency.rows(1, warmup=0, clients=2, per_client=1)),
        ("TTL sweep", lambda: ttl_sweep.rows(template, items=10, repeats=1)),
        ("load", lambda: load.rows(orders=10, clients=2, batch_size=5)),
        ("ingest and pipeline", lambda: ingest_and_pipeline(template)),
        ("pipeline profile", lambda: profile_one(template)),
        (
            "lambda B latency",
            lambda: lambda_b_latency.rows(
                lambda_b_latency.measure(template, LAMBDA_B_ORDERS, repeats=1)
            ),
        ),
        ("run sends", lambda: run_sends.rows(*run_sends.measure(template, SENDS_SIZES))),
        ("enforcement", lambda: enforcement.rows(samples=1, orders=RANDOM_ORDERS, warmup=0)),
    ]


def run(
    named_parts: Iterable[tuple[str, Callable[[], list[Row]]]],
    out: Callable[[str], None] = print,
) -> list[str]:
    """Run every part, print their rows; the names of the parts that failed (each one's
    traceback printed)."""
    failed, rows = [], []
    for name, part in named_parts:
        started = time.perf_counter()
        try:
            rows += part()
        except Exception:  # noqa: BLE001 - any failure of a part fails the smoke, reported
            out(f"smoke: {name} FAILED\n{traceback.format_exc()}")
            failed.append(name)
        else:
            out(f"smoke: {name} ran ({time.perf_counter() - started:.1f} s)")
    out(render(rows))
    return failed


def main(cdk_out: Path | None, executables: list[str]) -> int:
    started = time.perf_counter()
    try:
        cdk_out = cdk_out or bundled_cdk_out()
    except SmokeFailed as error:
        print(f"smoke: synthesis FAILED\n{error}", file=sys.stderr)
        return 1
    print(f"smoke: {cdk_out} ({time.perf_counter() - started:.1f} s)", flush=True)
    failed = run(parts(cdk_out, executables), lambda text: print(text, flush=True))
    if failed:
        print(f"smoke: {len(failed)} part(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("smoke: every part of the bench ran once")
    return 0
