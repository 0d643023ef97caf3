"""The bench's smoke run (bench/smoke.py): what makes it fail, and when it synthesizes.
(tests/bench/test_smoke.py runs it whole.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench import smoke
from bench.cold_start import LoadPath
from bench.report import Row


def test_every_part_runs_after_one_fails_and_the_failed_ones_are_named() -> None:
    ran: list[str] = []
    printed: list[str] = []

    def part(name: str, fails: bool = False) -> Any:
        def run() -> list[Row]:
            ran.append(name)
            if fails:
                raise RuntimeError(f"{name} broke")
            return [Row("section", f"{name} metric", "1")]

        return name, run

    failed = smoke.run([part("a"), part("b", fails=True), part("c")], printed.append)

    assert (ran, failed) == (["a", "b", "c"], ["b"])
    text = "\n".join(printed)
    assert "smoke: b FAILED" in text and "RuntimeError: b broke" in text
    assert "| section | a metric | 1 |" in text and "| section | c metric | 1 |" in text


def test_main_exits_1_when_a_part_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> list[Row]:
        raise KeyError("parameter_1")

    monkeypatch.setattr(smoke, "parts", lambda _cdk_out, _executables: [("cold", broken)])

    assert smoke.main(tmp_path, ["python"]) == 1
    assert "1 part(s) failed: cold" in capsys.readouterr().err


def test_main_exits_0_when_every_part_ran(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(smoke, "parts", lambda _cdk_out, _executables: [("cold", lambda: [])])

    assert smoke.main(tmp_path, ["python"]) == 0
    assert "every part of the bench ran once" in capsys.readouterr().out


def test_a_function_without_a_cold_request_workload_fails_the_smoke() -> None:
    functions = [
        LoadPath(name, f"entrix.handlers.{name}", "handler", ()) for name in ("ingest", "new_one")
    ]

    with pytest.raises(smoke.SmokeFailed, match="no cold-request workload for new_one"):
        smoke.check_workloads(functions)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src" / "entrix").mkdir(parents=True)
    (root / "app.py").write_text("")
    (root / "cdk.json").write_text(json.dumps({"context": {"entrix:region": "eu-west-1"}}))
    (root / "src" / "entrix" / "handler.py").write_text("")
    return root


def _age(path: Path, seconds: float) -> None:
    stamp = path.stat().st_mtime - seconds
    os.utime(path, (stamp, stamp))


def test_a_fresh_assembly_is_reused_without_synthesizing(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outdir = tmp_path / "cdk.out"
    outdir.mkdir()
    (outdir / "Entrix.template.json").write_text("{}")
    for source in [project / "app.py", project / "cdk.json", project / "src/entrix/handler.py"]:
        _age(source, 60)

    def no_synth(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("synthesized a fresh assembly")

    monkeypatch.setattr(subprocess, "run", no_synth)

    assert smoke.bundled_cdk_out(project, outdir) == outdir


def test_a_stale_assembly_is_synthesized_bundling_the_service_stack_and_old_assets_go(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outdir = tmp_path / "cdk.out"
    (outdir / "asset.old").mkdir(parents=True)
    (outdir / "Entrix.template.json").write_text("{}")
    _age(outdir / "Entrix.template.json", 60)  # older than a source: stale
    calls: list[dict[str, Any]] = []

    def synth(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        calls.append({"command": command, **options})
        (outdir / "asset.new").mkdir()
        (outdir / "Entrix.template.json").write_text('{"S3Key": "new.zip"}')
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", synth)

    assert smoke.bundled_cdk_out(project, outdir) == outdir
    (call,) = calls
    assert call["command"][1:] == ["app.py"] and call["cwd"] == project
    assert call["env"]["CDK_OUTDIR"] == str(outdir)
    context = json.loads(call["env"]["CDK_CONTEXT_JSON"])
    assert context["aws:cdk:bundling-stacks"] == ["Entrix"]
    assert context["entrix:region"] == "eu-west-1"
    assert sorted(path.name for path in outdir.glob("asset.*")) == ["asset.new"]


def test_a_failed_synthesis_fails_with_the_app_s_output(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def synth(command: list[str], **_options: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "uv not found")

    monkeypatch.setattr(subprocess, "run", synth)

    with pytest.raises(smoke.SmokeFailed, match="uv not found"):
        smoke.bundled_cdk_out(project, tmp_path / "cdk.out")
