"""The suite's one mypy harness: every module that imports TensorRT type-checks against the
TensorRT 10.13 API (tensorrt-stubs), and so do the GPU tests' calls into the builder and the
runtime, which no CPU machine runs.

mypy reads the package as installed (``ndr_edge`` with ``export/``, ``runtime/`` and
``calibration/`` mounted in it) and a copy of the stubs with the spots patched that stop mypy
from parsing them. Third-party libraries other than TensorRT are read as ``Any``
(``--no-site-packages``): what is checked is this package, its own signatures across modules,
and TensorRT's API. A control run on copies with wrong API calls shows that the check really
reads the stubs and the package's signatures, so a passing run means something."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# the package's top-level folders, as installed (pyproject.toml [tool.setuptools])
PACKAGES = {"ndr_edge": "ndr_edge", "export": "ndr_edge.export", "runtime": "ndr_edge.runtime",
            "calibration": "ndr_edge.calibration"}
# tests that only run where TensorRT and a GPU are: type-checked here instead
GPU_TESTS = ("tests.runtime.test_tensorrt_gpu", "tests.export.test_tensorrt")


def _stub_files() -> list[Path]:
    try:
        files = importlib.metadata.files("tensorrt-stubs") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [Path(str(f.locate())) for f in files if str(f).endswith(".pyi")]


STUBS = _stub_files()
pytestmark = [
    pytest.mark.skipif(not STUBS, reason="tensorrt-stubs is not installed (scripts/setup.sh installs it)"),
    pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed (pip install -e '.[dev]')"),
]


def _imports_tensorrt(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "tensorrt" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "tensorrt":
            return True
    return False


def tensorrt_modules() -> list[str]:
    """Every module of the package that imports ``tensorrt``, found in the source (a new one is covered)."""
    found = []
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            if _imports_tensorrt(path):
                parts = [p for p in path.relative_to(REPO / folder).with_suffix("").parts if p != "__init__"]
                found.append(".".join([package, *parts]))
    return found


def patched_stubs(target: Path) -> Path:
    """The stubs copied to ``target``, with what stops mypy from parsing them fixed: parameters
    named ``in`` (a keyword) and ``add_scale_nd``'s parameter without a default after defaults.
    Only signatures of plugin interfaces and ``add_scale_nd`` change; nothing this package calls.
    (Their other faults, such as the module-level ``bool`` that shadows the builtin, are errors
    inside the stubs, which the configuration ignores.)"""
    for source in STUBS:
        text = source.read_text()
        text = re.sub(r"(?m)^(\s*def [^\n]*?\()(.*)$", lambda m: m.group(1) + re.sub(r"\bin: ", "in_: ", m.group(2)), text)
        text = text.replace(", channel_axis: int)", ", channel_axis: int = ...)")
        out = target / source.parent.name / source.name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return target


def _mount(source: Path, target: Path, changes: dict[str, list[tuple[str, str]]]) -> None:
    """``target`` as a symlink to ``source``, or, where ``changes`` edits a file below it, a copy
    of the tree made of symlinks and the edited files."""
    here = source.relative_to(REPO).as_posix()
    edited = [rel for rel in changes if rel == here or rel.startswith(here + "/")]
    if not edited:
        target.symlink_to(source, target_is_directory=source.is_dir())
    elif source.is_file():
        text = source.read_text()
        for old, new in changes[here]:
            assert old in text, f"control: {old!r} is no longer in {here}; update the control's edits"
            text = text.replace(old, new)
        target.write_text(text)
    else:
        target.mkdir()
        for child in source.iterdir():
            if child.name != "__pycache__":
                _mount(child, target / child.name, changes)


def package_tree(root: Path, changes: dict[str, list[tuple[str, str]]] | None = None) -> Path:
    """``root/ndr_edge`` laid out as the installed package and ``root/tests``; files named in
    ``changes`` (repository-relative paths) are copies with those replacements."""
    changes = changes or {}
    package = root / "ndr_edge"
    package.mkdir(parents=True)
    for child in (REPO / "ndr_edge").iterdir():
        if child.name != "__pycache__":
            _mount(child, package / child.name, changes)
    for folder in PACKAGES:
        if folder != "ndr_edge":
            _mount(REPO / folder, package / folder, changes)
    _mount(REPO / "tests", root / "tests", changes)
    return root


def run_mypy(root: Path, modules: list[str], changes: dict[str, list[tuple[str, str]]] | None = None
             ) -> subprocess.CompletedProcess[str]:
    """mypy on ``modules``: the TensorRT modules with every function annotated, the tests with
    their bodies checked; errors inside the stubs ignored."""
    tree = package_tree(root / "src", changes)
    stubs = patched_stubs(root / "stubs")
    library = [m for m in modules if not m.startswith("tests.")]
    config = root / "mypy.ini"
    config.write_text(
        f"[mypy]\npython_version = {sys.version_info.major}.{sys.version_info.minor}\nignore_missing_imports = True\n"
        "follow_imports = silent\ncheck_untyped_defs = True\n"
        + (f"[mypy-{','.join(library)}]\ndisallow_untyped_defs = True\ndisallow_incomplete_defs = True\n" if library else "")
        + "[mypy-tensorrt,tensorrt.*,tensorrt_bindings,tensorrt_bindings.*]\nignore_errors = True\n"
    )
    args = [sys.executable, "-m", "mypy", "--config-file", str(config), "--no-site-packages", "--no-incremental",
            "--cache-dir", os.devnull, "--show-error-codes"]
    for module in modules:
        args += ["-m", module]
    env = {**os.environ, "MYPYPATH": os.pathsep.join([str(tree), str(stubs)])}
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=root, timeout=600, check=False)


def test_every_tensorrt_module_and_the_gpu_tests_typecheck_against_the_stubs(tmp_path: Path) -> None:
    modules = tensorrt_modules()
    # the discovery works: the builder, the backend and the environment check are among them
    assert {"ndr_edge.export.tensorrt_build", "ndr_edge.runtime.tensorrt_backend",
            "ndr_edge.runtime.tensorrt_env"} <= set(modules), modules
    proc = run_mypy(tmp_path, [*modules, *GPU_TESTS])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"no issues found in {len(modules) + len(GPU_TESTS)} source files" in proc.stdout, proc.stdout[-2000:]


def test_the_typecheck_catches_wrong_tensorrt_calls_and_wrong_builder_calls(tmp_path: Path) -> None:
    """Control: copies with a misspelt enum member, a wrong argument type to TensorRT, and a GPU
    test calling the builder's options with a keyword they do not have: each is reported."""
    changes = {
        "export/tensorrt_build.py": [("trt.MemoryPoolType.WORKSPACE,", "trt.MemoryPoolType.WORKSPACES,"),
                                     ("builder.create_network(_network_flags())", 'builder.create_network("strong")')],
        "runtime/tensorrt_backend.py": [("context.set_tensor_address(INPUT_NAME, int(slot.dev_in))",
                                         "context.set_tensor_address(INPUT_NAME, str(slot.dev_in))")],
        "tests/runtime/test_tensorrt_gpu.py": [("EngineBuildOptions(workspace_mb=", "EngineBuildOptions(workspace=")],
    }
    proc = run_mypy(tmp_path, ["ndr_edge.export.tensorrt_build", "ndr_edge.runtime.tensorrt_backend",
                               "tests.runtime.test_tensorrt_gpu"], changes)
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]

    def reported(path: str, *words: str) -> bool:
        return any(line.startswith(path) and all(w in line for w in words) for line in errors)

    assert reported("src/ndr_edge/export/tensorrt_build.py", "WORKSPACES"), errors
    assert reported("src/ndr_edge/export/tensorrt_build.py", "create_network", "str"), errors
    assert reported("src/ndr_edge/runtime/tensorrt_backend.py", "set_tensor_address", "str"), errors
    assert reported("src/tests/runtime/test_tensorrt_gpu.py", "EngineBuildOptions", '"workspace"'), errors
