"""The TensorRT backend type-checks against tensorrt-stubs. The stubs as published do not
parse (parameters named ``in``, a non-default after defaults, a shadowed ``bool``), so the
test copies them, patches those spots, and runs mypy with the copy on MYPYPATH."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _stub_dirs() -> list[Path]:
    found = []
    for name in ("tensorrt", "tensorrt_bindings"):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            return []
        folder = Path(next(iter(spec.submodule_search_locations)))
        if not (folder / "__init__.pyi").is_file():
            return []
        found.append(folder)
    return found


def patched_stubs(target: Path) -> Path:
    for folder in _stub_dirs():
        for stub in folder.rglob("*.pyi"):
            text = stub.read_text()
            text = re.sub(r"(def \w+\(.*?)\bin: ", r"\1in_: ", text)
            text = re.sub(r"(power: Weights = None, channel_axis: int)\)", r"\1 = ...)", text)
            text = text.replace("import tensorrt_libs as tensorrt_libs", "tensorrt_libs: typing.Any")
            out = target / stub.relative_to(folder.parent)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
    return target


@pytest.mark.skipif(not _stub_dirs(), reason="tensorrt-stubs not installed")
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy not installed")
def test_tensorrt_backend_type_checks_against_the_stubs(tmp_path) -> None:
    stubs = patched_stubs(tmp_path / "stubs")
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\npython_version = 3.11\nignore_missing_imports = True\n"
        "[mypy-tensorrt,tensorrt.*,tensorrt_bindings,tensorrt_bindings.*]\nignore_errors = True\n"
    )
    # Reveal that the stubs are really used: a wrong call must be reported.
    probe = tmp_path / "probe.py"
    probe.write_text("import tensorrt as trt\n\ndef f(c: trt.IExecutionContext) -> None:\n"
                     "    c.set_tensor_address('input', 'not an int')\n")
    env = {"MYPYPATH": str(stubs), "PATH": ""}
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(config), "--cache-dir", str(tmp_path / "cache")]
    bad = subprocess.run([*cmd, str(probe)], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert "set_tensor_address" in bad.stdout and bad.returncode == 1, bad.stdout + bad.stderr
    good = subprocess.run([*cmd, str(REPO / "runtime" / "tensorrt_backend.py")], capture_output=True, text=True,
                          env=env, timeout=300, cwd=REPO, check=False)
    assert good.returncode == 0, good.stdout + good.stderr
