"""`python -m bench.sdk_layer`: what shipping the SDK in a layer costs a cold request.

For each function that has the SDK layer and makes clients, fresh interpreters import the
handler module and make its first DynamoDB client, alternating between botocore from the layer's
own files (as deployed: the layer precedes the runtime on the import path) and botocore from the
runtime's path (as before the layer). The rest of the load path is the cold-request bench's
(`bench.cold_start`). Needs `make synth` (the bundled layer) and python3.13, Lambda's runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.cold_start import Interpreter, functions_from_template, runtime_path
from infra.constructs.lambda_code import SDK_LAYER_ID

_CODE = (
    "import time\n"
    "started = time.perf_counter()\n"
    "import {module}\n"
    "from entrix.aws.clients import client\n"
    "client('dynamodb')\n"
    "print(time.perf_counter() - started)\n"
)


def sdk_layer_dir(cdk_out: Path, stack: str = "Entrix") -> Path:
    """The bundled SDK layer's `python` folder."""
    resources = json.loads((cdk_out / f"{stack}.template.json").read_text())["Resources"]
    (key,) = [
        resource["Properties"]["Content"]["S3Key"]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::LayerVersion" and logical_id.startswith(SDK_LAYER_ID)
    ]
    return cdk_out / f"asset.{key.removesuffix('.zip')}" / "python"


def sample(interpreter: Interpreter, paths: list[str], module: str) -> float:
    """Seconds of one fresh interpreter's import of `module` plus its first client."""
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [
            interpreter.executable,
            "-I",
            "-S",
            "-c",
            f"import sys; sys.path[:0] = {paths!r}\n" + _CODE.format(module=module),
        ],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    return float(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sdk_layer", description=__doc__)
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"))
    parser.add_argument("--python", default=".venv313/bin/python")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    interpreter = Interpreter.of(args.python)
    layer = str(sdk_layer_dir(args.cdk_out))
    runtime = str(runtime_path(interpreter))
    for function in functions_from_template(args.cdk_out, interpreter):
        without_sdk = [p for p in function.paths if p != runtime]
        # The function's layers as the cold-request bench links them hold the SDK's packages
        # from this interpreter: take the layer's own files instead, and compare with none.
        if not any(Path(p, "botocore").exists() for p in without_sdk):
            continue
        # The authorizer imports boto3 only without the secrets extension, never in Lambda.
        if not Path(function.paths[0], "entrix", "aws", "clients.py").exists():
            continue
        base = [p for p in without_sdk if not Path(p, "botocore").exists()]
        sides = {"layer": [*base, layer, runtime], "runtime": [*base, runtime]}
        seconds: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(args.runs):
            for side, paths in sides.items():
                seconds[side].append(sample(interpreter, paths, function.module))
        layer_ms, runtime_ms = (statistics.median(seconds[s]) * 1000 for s in sides)
        print(
            f"{function.name}: import + first client, median of {args.runs}: "
            f"SDK layer {layer_ms:.0f} ms, runtime's {runtime_ms:.0f} ms, "
            f"{layer_ms / runtime_ms:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
