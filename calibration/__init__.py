"""INT8 that keeps restoration quality: calibration sets of degraded crops, streaming readers,
calibration methods compared by restored PSNR, per-layer sensitivity and a quality-aware
INT8 that keeps the worst layers in float until the loss is within a budget.

Importing this package imports neither torch nor ONNX Runtime; they load when used.
"""

from ndr_edge.calibration.build import build_set
from ndr_edge.calibration.int8 import DEFAULT_BUDGET_DB, Int8Result, check_calibration_for, quantize_int8
from ndr_edge.calibration.quantize import METHODS, Quantizer, QuantSettings
from ndr_edge.calibration.reader import CalibrationSet
from ndr_edge.calibration.recipe import DEFAULT_RATIOS, CalibrationRecipe

__all__ = [
    "DEFAULT_BUDGET_DB",
    "DEFAULT_RATIOS",
    "METHODS",
    "CalibrationRecipe",
    "CalibrationSet",
    "Int8Result",
    "QuantSettings",
    "Quantizer",
    "build_set",
    "check_calibration_for",
    "quantize_int8",
]
