"""ndr-edge: NDR-Restore from training to the edge.

Importing ``ndr_edge`` (or ``ndr_edge.runtime``) never imports torch: the model,
training and export live in submodules that do.
"""

from pathlib import Path

__version__ = "0.1.0"

#: The small model trained here on CPU (``ndr-edge-xs``, restoration network only); the
#: default checkpoint of ``ndr-export`` and ``ndr-eval``. See the README for how it was made.
BUNDLED_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "ndr-edge-xs-demo.safetensors"
