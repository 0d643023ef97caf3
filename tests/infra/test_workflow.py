"""The GitHub Actions workflow is valid against the published schema and runs the real gates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
MAKEFILE = ROOT / "Makefile"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    """The builtin schema ships inside check-jsonschema, so this needs no network."""
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    # YAML 1.2 (as GitHub reads it): the `on` key stays a string instead of becoming True.
    loaded: dict[str, Any] = YAML(typ="safe").load(WORKFLOW.read_text())
    return loaded


def test_workflow_matches_github_schema() -> None:
    result = _check(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "run-on:"))
    assert _check(broken).returncode != 0


def test_runs_on_push_and_pull_request_to_main(workflow: dict[str, Any]) -> None:
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["on"]["pull_request"]["branches"] == ["main"]


def test_the_job_token_can_only_read_the_repository(workflow: dict[str, Any]) -> None:
    # CI builds untrusted pull requests; it never needs to write or to reach AWS.
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert "permissions" not in job
    assert "secrets" not in WORKFLOW.read_text()


def test_steps_set_up_toolchains_with_cache_then_test_synth_and_upload(
    workflow: dict[str, Any],
) -> None:
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    uses = {step["uses"].split("@")[0]: step.get("with", {}) for step in steps if "uses" in step}
    # 3.11 last: the default interpreter; 3.13 for the unit tests on Lambda's runtime.
    assert uses["actions/setup-python"]["python-version"].split() == ["3.13", "3.11"]
    assert uses["actions/setup-python"]["cache"]
    assert uses["actions/setup-node"]["node-version-file"] == ".node-version"
    assert uses["actions/setup-node"]["cache"] == "npm"
    assert uses["actions/upload-artifact"]["path"] == "cdk.out"

    commands = [step["run"] for step in steps if "run" in step]
    assert commands == ["make test", "make synth"], "make test lints first: lint runs once"
    upload_at = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/upl"))
    synth_at = next(i for i, s in enumerate(steps) if s.get("run") == "make synth")
    assert upload_at > synth_at


def test_every_make_command_is_a_makefile_target(workflow: dict[str, Any]) -> None:
    targets = {line.split(":", 1)[0] for line in MAKEFILE.read_text().splitlines() if ":" in line}
    (job,) = workflow["jobs"].values()
    for step in job["steps"]:
        if "run" in step:
            make, target = step["run"].split()
            assert make == "make" and target in targets
