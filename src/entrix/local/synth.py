"""Find the synthesized service template, synthesizing it first when it is missing or stale.

`cdk.out/Entrix.template.json` (from `make synth` or `cdk synth`) is used when it is newer than
every CDK source. Otherwise the app is synthesized as the CDK CLI would run it (`python app.py`
with cdk.json's context) into `.entrix/cdk.out`, with asset bundling skipped: the local runtime
runs handlers from the installed package, and a separate folder keeps unbundled assets away from
the `cdk.out` that deployments upload.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

STACK_NAME = "Entrix"
TEMPLATE_FILE = f"{STACK_NAME}.template.json"
LOCAL_OUTDIR = Path(".entrix") / "cdk.out"
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


def fresh_template(root: Path) -> Path | None:
    """The newest existing template that is at least as new as the CDK sources."""
    newest = sources_mtime(root)
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


def synthesize(root: Path) -> Path:
    """Run the CDK app into `.entrix/cdk.out` with bundling skipped; returns the template."""
    outdir = root / LOCAL_OUTDIR
    outdir.mkdir(parents=True, exist_ok=True)
    context = {**cdk_context(root), "aws:cdk:bundling-stacks": []}
    environment = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(context),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
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


def ensure_template(root: Path) -> tuple[Path, bool]:
    """The template to run and whether it was synthesized just now.

    A lock file serializes processes started together (tests, two terminals): the second waits
    for the first one's synthesis and then finds a fresh template instead of reading a
    half-written one.
    """
    lock_path = root / LOCAL_OUTDIR.parent / "synth.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        existing = fresh_template(root)
        if existing is not None:
            return existing, False
        return synthesize(root), True
