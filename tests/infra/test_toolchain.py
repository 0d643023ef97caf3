"""Every node the project starts is the one package.json pins, a Node jsii supports: in make's
recipes (the CDK CLI, `python app.py`, pytest), under this pytest process's jsii, and the one
`project_node()` gives the policy simulator and `entrix local`'s synth."""

import json
import os
import subprocess
import sys
from pathlib import Path

import aws_cdk
import pytest

from entrix.local.node import PROJECT_NODE, project_node

# The pinned builds are Linux's (the npm registry has no current macOS one), and /proc is read.
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the pinned Node is Linux's")

ROOT = Path(__file__).resolve().parents[2]
# jsii's support policy (the banner names the releases it supports): 22 and 24.
SUPPORTED_MAJORS = {22, 24}
PINNED = (ROOT / ".node-version").read_text().strip()
# jsii's banner for an end-of-life or untested Node is framed in these.
BANNER = "!!!!!!!!!!"


def _version(node: str) -> str:
    return subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _children() -> set[int]:
    """The processes this one started (the parent pid is the 2nd field after the name)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended while listed
            continue
        if int(fields[1]) == os.getpid():
            children.add(int(stat.parent.name))
    return children


def _make(recipe: str) -> subprocess.CompletedProcess[str]:
    """Runs `recipe` as a make target of the project's Makefile would, with neither jsii variable
    this pytest process carries (nor the caller's PATH order) deciding which node it finds."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JSII_")}
    environment["PATH"] = f"/usr/bin:/bin:{environment['PATH']}"
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "--eval", f"_probe:\n\t@{recipe}", "_probe"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_pinned_node_is_installed_and_supported() -> None:
    assert PROJECT_NODE.is_file(), "make install puts package.json's node in node_modules/.bin"
    package = json.loads((ROOT / "package.json").read_text())
    assert set(package["optionalDependencies"].values()) == {PINNED}
    assert _version(project_node()) == f"v{PINNED}"
    assert int(PINNED.split(".")[0]) in SUPPORTED_MAJORS


def test_jsii_in_this_process_runs_on_the_projects_node() -> None:
    assert aws_cdk.App  # the import above started jsii's node
    executables = {os.path.realpath(f"/proc/{pid}/exe") for pid in _children()}
    assert os.path.realpath(PROJECT_NODE) in executables


def test_every_make_recipe_finds_the_projects_node_before_the_machines() -> None:
    found = _make("command -v node")
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == PROJECT_NODE


def test_the_cdk_app_under_make_prints_no_end_of_life_banner() -> None:
    imported = _make(f"{sys.executable} -c 'import aws_cdk'")
    assert imported.returncode == 0, imported.stderr
    assert BANNER not in imported.stderr, imported.stderr
    cli = _make("$(CDK) --version")
    assert cli.returncode == 0, cli.stderr
    assert (
        cli.stdout.split()[0]
        == json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    )
    assert BANNER not in cli.stderr and "end-of-life" not in cli.stderr.lower(), cli.stderr
