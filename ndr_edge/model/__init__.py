"""NDR-Restore: the restoration network, NDR/DQ/DI and NDR-Degrad, and the family's presets."""

from ndr_edge.model.config import PRESETS, ConfigError, NDRConfig, get_preset, preset_name
from ndr_edge.model.ndr_restore import NDRRestore
from ndr_edge.model.restoration import RestorationNet, RestorationOnly

__all__ = [
    "PRESETS",
    "ConfigError",
    "NDRConfig",
    "NDRRestore",
    "RestorationNet",
    "RestorationOnly",
    "get_preset",
    "preset_name",
]
