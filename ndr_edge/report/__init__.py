"""``ndr-report``: measure every variant of an export (PyTorch FP32 as the reference, ONNX
FP32/FP16/INT8 under ONNX Runtime on the CPU, TensorRT engines where a GPU is present) on the
same evaluation set and the same inputs, and write what a person reads (``report.md``, the
figures) and what a script reads (``report.json``).

>>> from ndr_edge.report import ReportConfig, run_report
>>> run_report("export/xs", config=ReportConfig(budget_ms=50, sizes=((256, 256), (720, 1280))))
PosixPath('export/xs/report.json')

Importing this package does not import torch, ONNX Runtime or TensorRT.
"""

from __future__ import annotations

from ndr_edge.report.config import ReportConfig, parse_batches, parse_size
from ndr_edge.report.pipeline import ACCURACY_PNG, REPORT_JSON, REPORT_MD, SAMPLES_PNG, run_report, write_report

__all__ = [
    "ACCURACY_PNG",
    "REPORT_JSON",
    "REPORT_MD",
    "SAMPLES_PNG",
    "ReportConfig",
    "parse_batches",
    "parse_size",
    "run_report",
    "write_report",
]
