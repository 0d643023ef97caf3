"""Docker-free bundling: each function's asset holds its handler's import closure and nothing
else, and the layers hold exactly the versions pinned in uv.lock."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import DockerImage

from infra.bundling import (
    LAMBDA_PLATFORM,
    LAMBDA_PYTHON_VARIABLE,
    LAMBDA_PYTHON_VERSION,
    LOCK_FILE,
    SRC_DIR,
    BytecodeCompiler,
    LayerBundler,
    ModuleBundler,
    find_bytecode_compiler,
    imported_modules,
    locked_closure,
    module_closure,
)
from infra.constructs.lambda_code import ARCHITECTURE, RUNTIME

IMAGE = DockerImage.from_registry("unused")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def relative(files: list[Path], root: Path = SRC_DIR) -> set[str]:
    return {str(path.relative_to(root)) for path in files}


def handlers_in(template: dict[str, Any]) -> list[str]:
    return sorted(
        {
            resource["Properties"]["Handler"]
            for resource in template["Resources"].values()
            if resource["Type"] == "AWS::Lambda::Function"
            and resource["Properties"].get("Handler", "").startswith("entrix.handlers.")
        }
    )


def functions_environment(template: dict[str, Any], handler: str) -> dict[str, Any]:
    (props,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler
    ]
    return dict(props.get("Environment", {}).get("Variables", {}))


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A small `entrix` tree exercising each import form the scan must follow."""
    files = {
        "entrix/__init__.py": "",
        "entrix/settings.py": "NAME = 'X'\n",
        "entrix/handlers/__init__.py": "",
        "entrix/handlers/one.py": (
            "import json\n"
            "from entrix import settings\n"
            "from . import helper\n"
            "from ..domain import rules\n"
            "def handler(event, context):\n"
            "    from entrix.adapters.store import save\n"
            "    return save(rules.check(event))\n"
        ),
        "entrix/handlers/helper.py": "",
        "entrix/handlers/other.py": "import entrix.unused\n",
        "entrix/domain/__init__.py": "from .shared import VALUE\n",
        "entrix/domain/rules.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from mypy_boto3_s3 import S3Client\n"
            "def check(event):\n"
            "    return event\n"
        ),
        "entrix/domain/shared.py": "VALUE = 1\n",
        "entrix/adapters/__init__.py": "",
        "entrix/adapters/store.py": "import boto3\ndef save(x):\n    return x\n",
        "entrix/unused.py": "",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_closure_follows_absolute_relative_lazy_and_package_init_imports(package: Path) -> None:
    files = module_closure(["entrix.handlers.one"], package)
    assert relative(files, package) == {
        "entrix/__init__.py",
        "entrix/settings.py",
        "entrix/handlers/__init__.py",
        "entrix/handlers/one.py",
        "entrix/handlers/helper.py",
        "entrix/domain/__init__.py",
        "entrix/domain/rules.py",
        "entrix/domain/shared.py",
        "entrix/adapters/__init__.py",
        "entrix/adapters/store.py",
    }


def test_third_party_imports_count_lazy_ones_but_not_the_type_checkers(package: Path) -> None:
    assert ModuleBundler(["entrix.handlers.one"], package).third_party_imports() == {"boto3"}
    assert ModuleBundler(["entrix.domain.rules"], package).third_party_imports() == set()


def test_closure_of_an_unknown_module_is_an_error(package: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"entrix\.handlers\.missing"):
        module_closure(["entrix.handlers.missing"], package)


def test_bundler_copies_exactly_the_closure(package: Path, tmp_path_factory: Any) -> None:
    out = tmp_path_factory.mktemp("asset")
    bundler = ModuleBundler(["entrix.handlers.one"], package)
    assert bundler.try_bundle(str(out), image=IMAGE) is True
    copied = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert copied == relative(bundler.files, package)
    assert "entrix/unused.py" not in copied


def test_asset_hash_follows_content_and_differs_between_handlers(package: Path) -> None:
    one = ModuleBundler(["entrix.handlers.one"], package).asset_hash
    other = ModuleBundler(["entrix.handlers.other"], package).asset_hash
    assert one != other
    assert ModuleBundler(["entrix.handlers.one"], package).asset_hash == one
    (package / "entrix/domain/rules.py").write_text("def check(event):\n    return None\n")
    assert ModuleBundler(["entrix.handlers.one"], package).asset_hash != one


def test_authorizer_asset_carries_no_order_validation_or_local_runtime() -> None:
    files = relative(module_closure(["entrix.handlers.authorizer"]))
    assert "entrix/handlers/authorizer.py" in files
    assert not {f for f in files if f.startswith(("entrix/orders/", "entrix/local/"))}
    assert "entrix/cli.py" not in files


def test_no_function_asset_includes_the_local_runtime_or_the_cli(
    service_json: dict[str, Any],
) -> None:
    handlers = handlers_in(service_json)
    assert len(handlers) >= 3
    for handler in handlers:
        files = relative(module_closure([handler.rpartition(".")[0]]))
        assert not {f for f in files if f.startswith("entrix/local/")}, handler
        assert "entrix/cli.py" not in files, handler


def test_function_code_imports_no_cdk_infra_or_emulator(service_json: dict[str, Any]) -> None:
    forbidden = ("aws_cdk", "constructs", "cdk_nag", "infra", "moto", "entrix.local")
    for handler in handlers_in(service_json):
        for path in module_closure([handler.rpartition(".")[0]]):
            names = imported_modules(path, module_name(path))
            bad = sorted(
                n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)
            )
            assert not bad, f"{path.relative_to(SRC_DIR)} imports {bad}"


def test_every_function_asset_imports_on_its_own(
    service_json: dict[str, Any], tmp_path: Path
) -> None:
    """Import each handler from its bundled asset alone, with installed libraries standing in for
    the layers and the Lambda runtime's boto3 (python -S: the editable `src` is not on the path)."""
    site_packages = sysconfig.get_paths()["purelib"]
    for handler in handlers_in(service_json):
        module = handler.rpartition(".")[0]
        # The function's environment as Lambda sets it; references become stand-in strings.
        variables = functions_environment(service_json, handler)
        env = {
            **os.environ,
            **{k: v if isinstance(v, str) else f"stand-in-{k}" for k, v in variables.items()},
        }
        asset = tmp_path / module
        ModuleBundler([module]).try_bundle(str(asset), image=IMAGE)
        code = (
            "import importlib, sys\n"
            f"sys.path[:0] = [{str(asset)!r}, {site_packages!r}]\n"
            f"m = importlib.import_module({module!r})\n"
            f"assert m.__file__.startswith({str(asset)!r}), m.__file__\n"
            "assert callable(m.handler)\n"
        )
        result = subprocess.run(
            [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=False, env=env
        )
        assert result.returncode == 0, f"{handler}:\n{result.stderr}"


def test_layer_closure_pins_every_dependency_at_the_locked_version() -> None:
    locked = {p["name"]: p["version"] for p in tomllib.loads(LOCK_FILE.read_text())["package"]}
    wheels = locked_closure(["pydantic"])
    assert {w.name for w in wheels} == {
        "pydantic",
        "pydantic-core",
        "typing-extensions",
        "annotated-types",
        "typing-inspection",
    }
    for wheel in wheels:
        assert wheel.version == locked[wheel.name]
        assert wheel.hashes and all(h.startswith("sha256:") for h in wheel.hashes)
        assert wheel.requirement().startswith(f"{wheel.name}=={wheel.version} --hash=sha256:")


def test_pyjwt_layer_is_pyjwt_alone() -> None:
    assert [w.name for w in locked_closure(["PyJWT"])] == ["pyjwt"]


def test_a_package_missing_from_the_lock_is_an_error() -> None:
    with pytest.raises(KeyError, match="not-a-locked-package"):
        locked_closure(["not-a-locked-package"])


def test_layer_hashes_differ_by_content_and_are_stable() -> None:
    jwt = LayerBundler(["pyjwt"]).asset_hash
    assert jwt == LayerBundler(["pyjwt"]).asset_hash
    assert jwt != LayerBundler(["pydantic"]).asset_hash


def test_layers_are_built_for_the_functions_runtime() -> None:
    assert RUNTIME.name == f"python{LAMBDA_PYTHON_VERSION}"
    assert ARCHITECTURE.name == "arm64" and LAMBDA_PLATFORM.startswith("aarch64-")


def this_interpreter() -> BytecodeCompiler:
    """The test's own Python standing in for python3.13 (the mechanics are the same)."""
    return BytecodeCompiler(sys.executable, importlib.util.MAGIC_NUMBER.hex())


def test_assets_ship_hash_checked_free_bytecode_when_a_compiler_is_found(
    package: Path, tmp_path_factory: Any
) -> None:
    out = tmp_path_factory.mktemp("asset")
    bundler = ModuleBundler(["entrix.handlers.one"], package, compiler=this_interpreter())
    bundler.try_bundle(str(out), image=IMAGE)
    sources = sorted(out.rglob("*.py"))
    assert sources
    for source in sources:
        pyc = Path(importlib.util.cache_from_source(str(source)))
        header = pyc.read_bytes()[:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER
        # PEP 552 flags: hash-based (bit 0) without source checking (bit 1 clear), so the zip's
        # new file times cannot invalidate it.
        assert int.from_bytes(header[4:8], "little") == 0b01


def test_bytecode_format_is_part_of_the_asset_hash(package: Path) -> None:
    plain = ModuleBundler(["entrix.handlers.one"], package).asset_hash
    compiled = ModuleBundler(["entrix.handlers.one"], package, compiler=this_interpreter())
    assert compiled.asset_hash != plain
    assert LayerBundler(["pyjwt"], compiler=this_interpreter()).asset_hash != (
        LayerBundler(["pyjwt"]).asset_hash
    )


def test_a_wrong_explicit_interpreter_is_refused(tmp_path: Path) -> None:
    impostor = tmp_path / "python"
    impostor.write_text("#!/bin/sh\necho 3.12 cb0d0d0a\n")
    impostor.chmod(0o755)
    with pytest.raises(ValueError, match=LAMBDA_PYTHON_VARIABLE):
        find_bytecode_compiler({LAMBDA_PYTHON_VARIABLE: str(impostor)})


def test_without_python313_assets_ship_source_only(tmp_path: Path) -> None:
    assert find_bytecode_compiler({"PATH": str(tmp_path), "PYENV_ROOT": str(tmp_path)}) is None


def test_python313_on_path_is_found(tmp_path: Path) -> None:
    python = tmp_path / f"python{LAMBDA_PYTHON_VERSION}"
    python.write_text(f"#!/bin/sh\necho {LAMBDA_PYTHON_VERSION} f30d0d0a\n")
    python.chmod(0o755)
    found = find_bytecode_compiler({"PATH": str(tmp_path), "PYENV_ROOT": str(tmp_path)})
    assert found == BytecodeCompiler(str(python), "f30d0d0a")


def test_a_pyenv_python313_is_found_when_path_has_none(tmp_path: Path) -> None:
    """pyenv's shim answers only for the selected version; the install itself always works."""
    bin_dir = tmp_path / "versions" / f"{LAMBDA_PYTHON_VERSION}.0" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / f"python{LAMBDA_PYTHON_VERSION}"
    python.write_text(f"#!/bin/sh\necho {LAMBDA_PYTHON_VERSION} f30d0d0a\n")
    python.chmod(0o755)
    shim_dir = tmp_path / "shims"
    shim_dir.mkdir()
    shim = shim_dir / f"python{LAMBDA_PYTHON_VERSION}"
    shim.write_text("#!/bin/sh\necho 'pyenv: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    found = find_bytecode_compiler({"PATH": str(shim_dir), "PYENV_ROOT": str(tmp_path)})
    assert found == BytecodeCompiler(str(python), "f30d0d0a")
