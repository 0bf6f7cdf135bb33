"""ndr-edge: NDR-Restore from training to the edge.

Importing ``ndr_edge`` (or ``ndr_edge.runtime``) never imports torch: the model,
training and export live in submodules that do.
"""

__version__ = "0.1.0"
