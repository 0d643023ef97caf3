"""Lambda assets built on this machine, without Docker.

Two local bundlers for `aws_cdk.BundlingOptions(local=...)`:

- `ModuleBundler` copies one handler and the `entrix` modules it imports (found by reading the
  source, not by importing it), so each function's asset holds only what it runs.
- `LayerBundler` installs pinned wheels for python3.13 on arm64 from `uv.lock` with uv, so the
  layers carry exactly the versions the tests ran against.

Both precompile their Python files when a local Python 3.13 is available (`BytecodeCompiler`).

Each bundler also gives a content hash, used as the asset's custom hash: CDK would otherwise hash
the whole source folder and give every function the same asset.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import DockerImage, ILocalBundling
from packaging.markers import Marker

REPO_ROOT = Path(__file__).resolve().parent.parent
SRC_DIR = REPO_ROOT / "src"
LOCK_FILE = REPO_ROOT / "uv.lock"
PACKAGE = "entrix"

# The Lambda runtime the layers are built for; keep in step with lambda_code.RUNTIME.
LAMBDA_PYTHON_VERSION = "3.13"
LAMBDA_PLATFORM = "aarch64-manylinux2014"
# The Lambda runtime's values of the environment markers uv.lock's dependencies carry (cffi's
# `platform_python_implementation != 'PyPy'`, for one).
LAMBDA_MARKER_ENVIRONMENT = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_version": LAMBDA_PYTHON_VERSION,
    "python_full_version": f"{LAMBDA_PYTHON_VERSION}.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_machine": "aarch64",
}
# Bumped when the bundling itself changes, so old cdk.out assets are not reused.
BUNDLING_VERSION = "2"
# An interpreter of LAMBDA_PYTHON_VERSION to precompile assets with (else python3.13 on PATH).
LAMBDA_PYTHON_VARIABLE = "ENTRIX_LAMBDA_PYTHON"
# Prints an interpreter's "major.minor" and bytecode magic number.
_PROBE = (
    "import importlib.util, sys; "
    "print('%d.%d' % sys.version_info[:2], importlib.util.MAGIC_NUMBER.hex())"
)


def module_file(module: str, src_dir: Path = SRC_DIR) -> Path | None:
    """The source file of a dotted module name under `src_dir`, or None when there is none."""
    base = src_dir.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, module: str) -> set[str]:
    """Every dotted name the module imports, absolute or relative, at any depth of its code."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            # `from entrix.orders import model` may name a submodule rather than an attribute.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _runtime_imports(node: ast.AST) -> Iterator[str]:
    """Top-level names of the absolute imports under `node`, skipping `if TYPE_CHECKING:`
    blocks (imports for the type checker, never run)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            yield from (name for other in child.orelse for name in _runtime_imports(other))
            continue
        if isinstance(child, ast.Import):
            yield from (alias.name.partition(".")[0] for alias in child.names)
        elif isinstance(child, ast.ImportFrom) and not child.level and child.module:
            yield child.module.partition(".")[0]
        yield from _runtime_imports(child)


def module_closure(roots: Iterable[str], src_dir: Path = SRC_DIR) -> list[Path]:
    """Files of the given modules, the `entrix` modules they import and their packages' inits.

    Imports inside functions count too: a lazy import still runs in Lambda.
    """
    pending = list(roots)
    seen: set[str] = set()
    files: set[Path] = set()
    while pending:
        module = pending.pop()
        if module in seen or not (module == PACKAGE or module.startswith(PACKAGE + ".")):
            continue
        seen.add(module)
        path = module_file(module, src_dir)
        if path is None:
            continue
        files.add(path)
        parts = module.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        pending.extend(imported_modules(path, module))
    missing = [root for root in roots if module_file(root, src_dir) is None]
    if missing:
        raise FileNotFoundError(f"no source under {src_dir} for {', '.join(missing)}")
    return sorted(files)


def _digest(chunks: Iterable[bytes]) -> str:
    sha = hashlib.sha256(BUNDLING_VERSION.encode())
    for chunk in chunks:
        sha.update(len(chunk).to_bytes(8, "big"))
        sha.update(chunk)
    return sha.hexdigest()


@dataclass(frozen=True)
class BytecodeCompiler:
    """A local interpreter of the Lambda runtime's Python version, to ship bytecode with assets.

    Lambda's code folders are read-only, so Python cannot cache bytecode there: without it every
    cold start compiles each imported module again (ingest's domain imports, measured here with
    python3.13: 372 ms from source, 189 ms from bytecode). Hash-based pycs that never check the
    source stay valid after the zip round trip changes file times.
    """

    executable: str
    magic: str

    def compile(self, directory: Path) -> None:
        command = [self.executable, "-m", "compileall", "-q", "-j", "0"]
        command += ["--invalidation-mode", "unchecked-hash", str(directory)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 (fixed argv)


def find_bytecode_compiler(environ: Mapping[str, str] = os.environ) -> BytecodeCompiler | None:
    """ENTRIX_LAMBDA_PYTHON, else `python3.13` on PATH, else a pyenv-installed 3.13: the first
    that runs and is 3.13. None when there is none: the assets then ship as source.

    A wrong ENTRIX_LAMBDA_PYTHON is an error; a broken python3.13 on PATH (e.g. a pyenv shim for
    a version that is not selected) is skipped.
    """
    explicit = environ.get(LAMBDA_PYTHON_VARIABLE)
    if explicit:
        compiler = _probe(explicit)
        if compiler is None:
            raise ValueError(
                f"{LAMBDA_PYTHON_VARIABLE}={explicit} is not Python {LAMBDA_PYTHON_VERSION}"
            )
        return compiler
    executable = f"python{LAMBDA_PYTHON_VERSION}"
    on_path = shutil.which(executable, path=environ.get("PATH", os.defpath))
    pyenv_root = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pyenv = sorted(pyenv_root.glob(f"versions/{LAMBDA_PYTHON_VERSION}.*/bin/{executable}"))
    for candidate in [*([on_path] if on_path else []), *map(str, reversed(pyenv))]:
        compiler = _probe(candidate)
        if compiler:
            return compiler
    return None


def _probe(executable: str) -> BytecodeCompiler | None:
    """`executable` as a compiler, if it runs and is the Lambda runtime's Python version."""
    probe = subprocess.run(  # noqa: S603 (an interpreter path, no shell)
        [executable, "-c", _PROBE], capture_output=True, text=True, check=False
    )
    version, _, magic = probe.stdout.strip().partition(" ")
    if probe.returncode == 0 and version == LAMBDA_PYTHON_VERSION:
        return BytecodeCompiler(executable, magic)
    return None


class _LocalBundler:
    """What both bundlers share: the optional bytecode compiler, and an asset hash of their
    content and of the bytecode format (bytecode for another Python must not reuse an asset)."""

    def __init__(self, compiler: BytecodeCompiler | None) -> None:
        self.compiler = compiler

    def _content(self) -> Iterator[bytes]:
        raise NotImplementedError

    @property
    def asset_hash(self) -> str:
        salt = f"bytecode:{self.compiler.magic if self.compiler else 'none'}".encode()
        return _digest([salt, *self._content()])

    def _compile(self, directory: Path) -> bool:
        """Precompile what was bundled into `directory` (when there is a compiler)."""
        if self.compiler:
            self.compiler.compile(directory)
        return True


@jsii.implements(ILocalBundling)
class ModuleBundler(_LocalBundler):
    """Copies a handler's module closure into the asset folder."""

    def __init__(
        self,
        modules: Sequence[str],
        src_dir: Path = SRC_DIR,
        compiler: BytecodeCompiler | None = None,
    ) -> None:
        super().__init__(compiler)
        self.src_dir = src_dir
        self.files = module_closure(modules, src_dir)

    def third_party_imports(self) -> set[str]:
        """Top-level names of what the bundled code imports at run time from outside `entrix`
        and the standard library: what its layers (or the runtime) must provide."""
        names: set[str] = set()
        for path in self.files:
            names.update(_runtime_imports(ast.parse(path.read_bytes(), filename=str(path))))
        return {name for name in names if name != PACKAGE and name not in sys.stdlib_module_names}

    def _content(self) -> Iterator[bytes]:
        """The copied files' relative paths and content."""
        for path in self.files:
            yield str(path.relative_to(self.src_dir)).encode()
            yield path.read_bytes()

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        for path in self.files:
            target = Path(output_dir) / path.relative_to(self.src_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        return self._compile(Path(output_dir))


@dataclass(frozen=True)
class LockedWheel:
    """One package pinned in uv.lock, with the hashes of its published wheels."""

    name: str
    version: str
    hashes: tuple[str, ...]

    def requirement(self) -> str:
        hashes = " ".join(f"--hash={h}" for h in self.hashes)
        return f"{self.name}=={self.version} {hashes}"


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def locked_closure(requirements: Iterable[str], lock_file: Path = LOCK_FILE) -> list[LockedWheel]:
    """The named packages and all their dependencies, at the versions pinned in uv.lock."""
    packages = {_normalize(p["name"]): p for p in tomllib.loads(lock_file.read_text())["package"]}
    pending = [_normalize(r) for r in requirements]
    seen: dict[str, LockedWheel] = {}
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        if name not in packages:
            raise KeyError(f"{name} is not in {lock_file.name}; add it to pyproject.toml")
        entry = packages[name]
        seen[name] = LockedWheel(
            name=name,
            version=entry["version"],
            hashes=tuple(wheel["hash"] for wheel in entry.get("wheels", [])),
        )
        for dependency in entry.get("dependencies", []):
            if "marker" in dependency and not Marker(dependency["marker"]).evaluate(
                LAMBDA_MARKER_ENVIRONMENT
            ):
                continue
            pending.append(_normalize(dependency["name"]))
    return sorted(seen.values(), key=lambda wheel: wheel.name)


def _uv() -> str:
    """The project's pinned uv (`make install` puts it in .tools), else one on PATH."""
    candidate = REPO_ROOT / ".tools" / "bin" / "uv"
    found = str(candidate) if candidate.is_file() else shutil.which("uv")
    if found is None:
        raise FileNotFoundError("uv not found: run `make install` first")
    return found


@jsii.implements(ILocalBundling)
class LayerBundler(_LocalBundler):
    """Installs locked wheels for the Lambda runtime into `<asset>/python`."""

    def __init__(
        self,
        requirements: Sequence[str],
        lock_file: Path = LOCK_FILE,
        compiler: BytecodeCompiler | None = None,
    ) -> None:
        super().__init__(compiler)
        self.wheels = locked_closure(requirements, lock_file)

    def _content(self) -> Iterator[bytes]:
        """The target Python and platform, and each pin with its wheel hashes."""
        for line in (LAMBDA_PYTHON_VERSION, LAMBDA_PLATFORM):
            yield line.encode()
        for wheel in self.wheels:
            yield wheel.requirement().encode()

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        requirements = Path(output_dir) / "requirements.txt"
        requirements.write_text("".join(f"{w.requirement()}\n" for w in self.wheels))
        command = [
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            "--only-binary",
            ":all:",
            "--python-version",
            LAMBDA_PYTHON_VERSION,
            "--python-platform",
            LAMBDA_PLATFORM,
            "--target",
            str(Path(output_dir) / "python"),
            "--requirement",
            str(requirements),
        ]
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        subprocess.run(command, check=True, env=env)  # noqa: S603 (fixed argv, no shell)
        requirements.unlink()
        (Path(output_dir) / "python" / ".lock").unlink(missing_ok=True)  # uv's own lock file
        return self._compile(Path(output_dir) / "python")
