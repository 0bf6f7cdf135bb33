"""Keep the calling thread's alternate signal stack across calls into native code that
replaces it.

OpenVINO 2026.4's CPU plugin installs an alternate signal stack of its own on the calling
thread when it creates a plugin engine or compiles a model, remembering the one it replaced,
and puts that one back when the engine goes. With two engines freed in a different order
than they were made (two backends, or one freed on another thread), the thread is left
pointing at the freed stack. Python runs its signal handlers on the alternate stack
(``SA_ONSTACK``), so the next handled signal (Ctrl-C's SIGINT, a SIGCHLD handler such as the
one a torch DataLoader with workers installs, SIGTERM) kills the process with SIGSEGV
before any handler or faulthandler runs.

:func:`preserved_signal_stack` saves the thread's alternate stack before such a call and puts
it back after, so no thread ever points at a stack a library owns. Linux only (the layout
of ``stack_t`` below is Linux's, on x86-64 and aarch64 alike); elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SS_DISABLE = 2  # Linux <signal.h>


class _StackT(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


_SIGALTSTACK: Any = ctypes.CDLL(None).sigaltstack if sys.platform.startswith("linux") else None


def current_signal_stack() -> tuple[int, int, int] | None:
    """This thread's alternate signal stack as (address, flags, size); None where unknown."""
    old = _StackT()
    if _SIGALTSTACK is None or _SIGALTSTACK(None, ctypes.byref(old)) != 0:
        return None
    return (old.ss_sp or 0, old.ss_flags, old.ss_size)


@contextmanager
def preserved_signal_stack() -> Iterator[None]:
    """Run the body, then give this thread back the alternate signal stack it had before."""
    saved = _StackT()
    if _SIGALTSTACK is None or _SIGALTSTACK(None, ctypes.byref(saved)) != 0:
        yield
        return
    try:
        yield
    finally:  # (EPERM only while running on the alternate stack: never in a body like this)
        _SIGALTSTACK(ctypes.byref(_StackT(saved.ss_sp, saved.ss_flags & SS_DISABLE, saved.ss_size)), None)
