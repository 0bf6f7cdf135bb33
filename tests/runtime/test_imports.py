"""The runtime is torch-free: importing it pulls in no heavy dependency, and opening an ONNX
model pulls in onnxruntime only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "onnxruntime", "tensorrt", "pycuda", "cv2", "onnx", "skimage")


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return set(done.stdout.split())


def test_import_pulls_in_no_heavy_dependency() -> None:
    assert _modules_after("import ndr_edge.runtime, ndr_edge.runtime.cli") == set()


def test_opening_an_onnx_model_imports_onnxruntime_only(tiny_model) -> None:
    path = Path(tiny_model("identity"))
    code = (
        "import numpy as np\nfrom ndr_edge.runtime import Restorer\n"
        f"r = Restorer.open({str(path)!r})\nr.restore(np.zeros((8, 8, 3), np.uint8))\nr.close()"
    )
    assert _modules_after(code) == {"onnxruntime"}
