"""Find the synthesized service template, synthesizing it first when it is missing or stale.

`cdk.out/Entrix.template.json` (from `make synth` or `cdk synth`) is used when it is newer than
every CDK source. Otherwise the app is synthesized as the CDK CLI would run it (`python app.py`
with cdk.json's context) into `.entrix/cdk.out`, with asset bundling skipped: the local runtime
runs handlers from the installed package, and a separate folder keeps unbundled assets away from
the `cdk.out` that deployments upload.

ENTRIX_LOCAL_CONTEXT, a JSON object, adds context on top of cdk.json's, as `cdk synth -c` would
(`ENTRIX_LOCAL_CONTEXT='{"entrix:jwt_key_source": "jwks", ...}' entrix local`). Such a template
is synthesized into a folder of its own, named after that context, so switching between
contexts never runs a template made with another one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from entrix.local.node import jsii_environment

STACK_NAME = "Entrix"
TEMPLATE_FILE = f"{STACK_NAME}.template.json"
LOCAL_OUTDIR = Path(".entrix") / "cdk.out"
LOCAL_CONTEXT_VARIABLE = "ENTRIX_LOCAL_CONTEXT"
# What the template is made from: a change in any of these makes the template stale.
# What the template is made from: the CDK app, and the modules of entrix it imports.
SOURCE_GLOBS = (
    "app.py",
    "cdk.json",
    "infra/**/*.py",
    "src/entrix/settings.py",
    "src/entrix/auction/*.py",
)


class SynthError(Exception):
    """The template could not be produced; the message holds CDK's own output."""


def project_root(start: Path | None = None) -> Path:
    """The checkout holding cdk.json: the current folder or one above it, else this package's."""
    for folder in [(start or Path.cwd()).resolve(), *(start or Path.cwd()).resolve().parents]:
        if (folder / "cdk.json").is_file() and (folder / "app.py").is_file():
            return folder
    package_checkout = Path(__file__).resolve().parents[3]
    if (package_checkout / "cdk.json").is_file():
        return package_checkout
    raise SynthError("no cdk.json here or above: run `entrix local` inside the project checkout")


def sources_mtime(root: Path) -> float:
    return max(
        (path.stat().st_mtime for pattern in SOURCE_GLOBS for path in root.glob(pattern)),
        default=0.0,
    )


def local_context(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """The context ENTRIX_LOCAL_CONTEXT adds (none when it is unset or empty)."""
    raw = environ.get(LOCAL_CONTEXT_VARIABLE, "").strip()
    if not raw:
        return {}
    try:
        context = json.loads(raw)
    except json.JSONDecodeError as error:
        raise SynthError(f"{LOCAL_CONTEXT_VARIABLE} is not JSON: {error}") from None
    if not isinstance(context, dict):
        raise SynthError(f"{LOCAL_CONTEXT_VARIABLE} must be a JSON object of context values")
    return context


def local_outdir(extra_context: Mapping[str, object]) -> Path:
    """`.entrix/cdk.out`, or for added context a folder named after it."""
    if not extra_context:
        return LOCAL_OUTDIR
    digest = hashlib.sha256(json.dumps(extra_context, sort_keys=True).encode()).hexdigest()
    return LOCAL_OUTDIR.with_name(f"cdk.out-{digest[:12]}")


def fresh_template(root: Path, extra_context: Mapping[str, object] | None = None) -> Path | None:
    """The newest existing template that is at least as new as the CDK sources (with added
    context, only the one synthesized with it)."""
    newest = sources_mtime(root)
    if extra_context:
        candidates = [root / local_outdir(extra_context) / TEMPLATE_FILE]
    else:
        candidates = [root / "cdk.out" / TEMPLATE_FILE, root / LOCAL_OUTDIR / TEMPLATE_FILE]
    fresh = [path for path in candidates if path.is_file() and path.stat().st_mtime >= newest]
    return max(fresh, key=lambda path: path.stat().st_mtime) if fresh else None


def cdk_context(root: Path) -> dict[str, object]:
    """The context the CDK CLI would pass: cdk.json's, then cdk.context.json's."""
    context: dict[str, object] = {}
    cdk_json = json.loads((root / "cdk.json").read_text(encoding="utf-8"))
    context.update(cdk_json.get("context", {}))
    cached = root / "cdk.context.json"
    if cached.is_file():
        context.update(json.loads(cached.read_text(encoding="utf-8")))
    return context


def synthesize(root: Path, extra_context: Mapping[str, object] | None = None) -> Path:
    """Run the CDK app into `local_outdir` with bundling skipped; returns the template."""
    outdir = root / local_outdir(extra_context or {})
    outdir.mkdir(parents=True, exist_ok=True)
    context = {**cdk_context(root), **(extra_context or {}), "aws:cdk:bundling-stacks": []}
    environment = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(context),
        **jsii_environment(),
    }
    completed = subprocess.run(
        [sys.executable, "app.py"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    template = outdir / TEMPLATE_FILE
    if completed.returncode != 0 or not template.is_file():
        raise SynthError(
            f"`python app.py` failed (exit {completed.returncode}):\n"
            f"{completed.stdout[-4000:]}{completed.stderr[-4000:]}"
        )
    template.touch()
    return template


def ensure_template(
    root: Path, extra_context: Mapping[str, object] | None = None
) -> tuple[Path, bool]:
    """The template to run (with `extra_context`, default ENTRIX_LOCAL_CONTEXT's) and whether it
    was synthesized just now.

    A lock file serializes processes started together (tests, two terminals): the second waits
    for the first one's synthesis and then finds a fresh template instead of reading a
    half-written one.
    """
    lock_path = root / LOCAL_OUTDIR.parent / "synth.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        context = local_context() if extra_context is None else dict(extra_context)
        existing = fresh_template(root, context)
        if existing is not None:
            return existing, False
        return synthesize(root, context), True


def stack_region(template_path: Path, stack_name: str, default: str = "eu-west-1") -> str:
    """The region the stack is synthesized for, from the cloud assembly's manifest."""
    manifest = template_path.parent / "manifest.json"
    if manifest.is_file():
        artifact = json.loads(manifest.read_text(encoding="utf-8"))["artifacts"].get(stack_name)
        environment = (artifact or {}).get("environment", "")  # aws://account/region
        region = environment.rsplit("/", 1)[-1]
        if region and region != "unknown-region":
            return region
    return default
