"""scripts/demo.sh, the README's main command, end to end at its smallest: FP32 only, no
engines, into a temporary folder, without the install step. The report it writes must
list the variants it measured, with the PyTorch reference, and match the manifest."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_demo_script_exports_and_reports(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "NDR_SKIP_SETUP": "1", "NDR_DEMO_OUT": str(out)}
    done = subprocess.run(["bash", str(REPO / "scripts/demo.sh"), "--precision", "fp32", "--no-engine", "--quiet"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [a["name"] for a in manifest["artifacts"]] == ["onnx-fp32"]
    report = json.loads((out / "report.json").read_text())
    rows = {v["name"]: v for v in report["variants"]} if isinstance(report["variants"], list) else report["variants"]
    assert "pytorch-fp32" in rows and "onnx-fp32" in rows
    assert (out / "report.md").read_text().count("`onnx-fp32`") >= 1
