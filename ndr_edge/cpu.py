"""What this CPU can do, read at run time (never assumed): the instruction-set extensions that
decide which precisions are fast here. Torch-free.

- bf16 arithmetic: ``avx512_bf16`` (AVX512-BF16) or ``amx_bf16`` (AMX); without them bf16 is
  emulated and slower than fp32.
- int8 dot products: ``avx512_vnni`` or ``avx_vnni`` (VNNI); without them INT8 kernels fall
  back to multi-instruction sequences and rarely beat fp32.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["CpuFeatures", "cpu_features", "usable_cores"]


@dataclass(frozen=True)
class CpuFeatures:
    model: str
    flags: frozenset[str]

    @property
    def bf16(self) -> bool:
        return bool({"avx512_bf16", "amx_bf16"} & self.flags)

    @property
    def vnni(self) -> bool:
        return bool({"avx512_vnni", "avx_vnni"} & self.flags)

    @property
    def avx512(self) -> bool:
        return "avx512f" in self.flags

    def summary(self) -> str:
        parts = [name for name, on in (("AVX512", self.avx512), ("VNNI", self.vnni), ("BF16", self.bf16)) if on]
        return f"{self.model} ({', '.join(parts) or 'no AVX512/VNNI/BF16'})"


@lru_cache(maxsize=1)
def cpu_features(cpuinfo: str = "/proc/cpuinfo") -> CpuFeatures:
    """Flags of the first CPU in ``/proc/cpuinfo`` (Linux); elsewhere an empty set, which
    makes every choice fall back to fp32."""
    model: str = platform.processor() or platform.machine()
    flags: frozenset[str] = frozenset()
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return CpuFeatures(model, flags)
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model in ("", platform.machine(), platform.processor()):
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return CpuFeatures(model, flags)


def usable_cores() -> int | None:
    """Cores this process may run on (its affinity mask; a container's CPU set), else all."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
