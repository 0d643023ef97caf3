"""`make bench`: every benchmark in one run, printed as one table of ratios against baselines.

Run with `make bench` (or `.venv/bin/python -m bench`). The service template must be
synthesized with bundling (`make synth`), since the cold-start rows load the real assets.
`--smoke` runs every workload once at its smallest instead (bench/smoke.py; `make test` runs it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench import (
    api_latency,
    cold_start,
    enforcement,
    ingest_writes,
    lambda_b_latency,
    load,
    pipeline_scale,
    run_sends,
    smoke,
    ttl_sweep,
)
from bench.report import render
from entrix.local.node import jsii_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--cdk-out",
        type=Path,
        help="the synthesized app, assets bundled (default: cdk.out; with --smoke, its own)",
    )
    parser.add_argument(
        "--runs", type=int, default=15, help="cold-request samples per handler and side"
    )
    parser.add_argument(
        "--warm-calls", type=int, default=10, help="warm invocations per cold-request sample"
    )
    parser.add_argument(
        "--python",
        action="append",
        help="interpreter for the cold-request samples (repeatable; default: this one)",
    )
    parser.add_argument("--samples", type=int, default=300, help="requests per latency figure")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="every workload once, one sample, smallest sizes; exit 1 if any fails",
    )
    args = parser.parse_args(argv)
    os.environ.update(jsii_environment())
    if args.smoke:
        return smoke.main(args.cdk_out, args.python or [sys.executable])
    args.cdk_out = args.cdk_out or Path("cdk.out")
    template_path = args.cdk_out / "Entrix.template.json"
    if not template_path.is_file():
        print(f"no {template_path}: run `make synth` first", file=sys.stderr)
        return 1
    rows = cold_start.rows(
        args.cdk_out, args.runs, args.warm_calls, args.python or [sys.executable]
    )
    rows += api_latency.rows(args.samples)
    rows += ttl_sweep.rows(template_path)
    rows += load.rows()
    ingest = ingest_writes.measure(template_path)
    rows += ingest_writes.rows(ingest)
    rows += pipeline_scale.rows(template_path, ingest=ingest.cost_inputs())
    rows += lambda_b_latency.rows(lambda_b_latency.measure(template_path))
    rows += run_sends.rows(*run_sends.measure(template_path))
    rows += enforcement.rows(args.samples)
    print(render(rows))
    print(pipeline_scale.NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
