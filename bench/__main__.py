"""`make bench`: every benchmark in one run, printed as one table of ratios against baselines.

Run with `make bench` (or `.venv/bin/python -m bench`). The service template must be
synthesized with bundling (`make synth`), since the cold-start rows load the real assets.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench import api_latency, cold_start
from bench.local_system import running_system
from bench.report import Row, ratio, render

LAMBDA_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "ORDERS_TABLE_NAME": "orders",
    "JWT_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jwt",
    "RESULTS_BUCKET_NAME": "results",
    "ALERT_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alerts",
}
# Handler -> (seed module it replaces, goal as a ratio of the seed's import time).
SEED_OF = {
    "authorizer": ("auth_lambda", 0.5),
    "ingest": ("post_lambda", 1.2),
    "order_status": ("post_lambda", None),
    "results": ("post_lambda", None),
    "process": ("post_lambda", None),
}


def cold_start_rows(cdk_out: Path, runs: int) -> list[Row]:
    seeds = {
        name: cold_start.median(cold_start.import_ms(path, runs, LAMBDA_ENVIRONMENT))
        for name, path in cold_start.seed_load_paths().items()
    }
    rows = [
        Row("cold start", f"seed {name} import", f"{ms:.0f} ms", "", "1.00x", "baseline")
        for name, ms in seeds.items()
    ]
    for function in cold_start.functions_from_template(cdk_out):
        ms = cold_start.median(cold_start.import_ms(function, runs, LAMBDA_ENVIRONMENT))
        seed_name, goal = SEED_OF.get(function.name, ("post_lambda", None))
        rows.append(
            Row(
                "cold start",
                f"{function.name} import (asset + layers + runtime boto3)",
                f"{ms:.0f} ms",
                f"{seeds[seed_name]:.0f} ms ({seed_name})",
                ratio(ms, seeds[seed_name]),
                f"<= {goal}x" if goal else "",
            )
        )
    return rows


def local_api_rows(samples: int) -> list[Row]:
    with running_system() as system:
        figures = api_latency.measure(system.api_url, system.aws_endpoint, system.token(), samples)
        startup = system.startup_seconds
    return [
        Row("local", "entrix local: spawn to serving", f"{startup:.1f} s", "", "", "<= 30 s"),
        Row(
            "local API",
            "POST /orders (10 orders) p50",
            f"{figures.post_p50_ms:.1f} ms",
            f"{figures.raw_p50_ms:.1f} ms (raw BatchWriteItem of 10)",
            ratio(figures.post_p50_ms, figures.raw_p50_ms),
            "<= 3x",
        ),
        Row(
            "local API",
            "POST /orders (10 orders) p99",
            f"{figures.post_p99_ms:.1f} ms",
            f"{figures.raw_p99_ms:.1f} ms (raw BatchWriteItem of 10)",
            ratio(figures.post_p99_ms, figures.raw_p99_ms),
            "reported",
        ),
        Row(
            "local API",
            f"{figures.concurrent_clients} concurrent clients, {figures.concurrent_requests} POSTs",
            f"{figures.concurrent_requests_per_second:.0f} req/s, "
            f"{figures.concurrent_errors} errors",
            "",
            "",
            "0 errors",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per import figure")
    parser.add_argument("--samples", type=int, default=300, help="requests per latency figure")
    args = parser.parse_args(argv)
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if not (args.cdk_out / "Entrix.template.json").is_file():
        print(f"no {args.cdk_out}/Entrix.template.json: run `make synth` first", file=sys.stderr)
        return 1
    rows = cold_start_rows(args.cdk_out, args.runs)
    rows += local_api_rows(args.samples)
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
