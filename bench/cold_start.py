"""Import cost of each Lambda handler as Lambda loads it, against the seed's equivalents.

Lambda puts the function's asset first on sys.path, then its layers (/opt/python), then the
runtime's boto3. We rebuild that path from the synthesized template (cdk.out) in a scratch
folder and time the handler's import in fresh `python -S` processes, so nothing from the
development venv leaks in. Layers are built for arm64 / python3.13, so their packages are
linked from this machine's venv under the same names (same pinned versions).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / ".bench"
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
STDLIB_PATHS = [p for p in sys.path if p and "site-packages" not in p and not p.endswith(".zip")]

_TIMER = """
import sys, time
sys.path[:0] = {paths!r}
start = time.perf_counter()
__import__({module!r})
print((time.perf_counter() - start) * 1000)
"""


@dataclass(frozen=True)
class LoadPath:
    """What one function has on sys.path when Lambda imports its handler module."""

    name: str
    module: str
    paths: tuple[str, ...]


def _link_packages(names: list[str], into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = SITE_PACKAGES / name
        target = into / name
        if source.exists() and not target.exists():
            target.symlink_to(source)
    return into


def runtime_path() -> Path:
    """The boto3 the python3.13 Lambda runtime provides."""
    return _link_packages(list(RUNTIME_PACKAGES), SCRATCH / "runtime")


def _layer_shim(layer_dir: Path) -> Path:
    packages = sorted(
        entry.name
        for entry in (layer_dir / "python").iterdir()
        if not entry.name.endswith((".dist-info", ".egg-info")) and entry.name != "bin"
    )
    return _link_packages(packages, SCRATCH / "layers" / layer_dir.name)


def functions_from_template(cdk_out: Path, stack: str = "Entrix") -> list[LoadPath]:
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
        module = props["Handler"].rsplit(".", 1)[0]
        if not module.startswith("entrix."):
            continue
        layers = [_layer_shim(asset_dir(layer["Ref"])) for layer in props.get("Layers", [])]
        paths = (str(asset_dir(logical_id)), *map(str, layers), str(runtime_path()))
        load_paths.append(LoadPath(module.rsplit(".", 1)[1], module, paths))
    return sorted(load_paths, key=lambda path: path.name)


def seed_load_paths() -> dict[str, LoadPath]:
    """The seed's post_lambda and auth lambda (its PyJWT layer holds PyJWT only)."""
    seed_dir = str(ROOT / "bench")
    jwt_layer = str(_link_packages(["jwt"], SCRATCH / "layers" / "seed-pyjwt"))
    runtime = str(runtime_path())
    return {
        "post_lambda": LoadPath("post_lambda", "seed.post_lambda", (seed_dir, runtime)),
        "auth_lambda": LoadPath("auth_lambda", "seed.auth_lambda", (seed_dir, jwt_layer, runtime)),
    }


def import_ms(load_path: LoadPath, runs: int, environment: dict[str, str]) -> list[float]:
    """Milliseconds to import the module in `runs` fresh interpreters (no site-packages)."""
    code = _TIMER.format(paths=[*load_path.paths, *STDLIB_PATHS], module=load_path.module)
    env = {"PATH": os.environ.get("PATH", ""), **environment}
    samples = []
    for _ in range(runs):
        completed = subprocess.run(
            [sys.executable, "-S", "-E", "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"importing {load_path.module} failed:\n{completed.stderr}")
        samples.append(float(completed.stdout.strip()))
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)
