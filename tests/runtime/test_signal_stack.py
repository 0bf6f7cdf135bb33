"""preserved_signal_stack gives the thread back the alternate signal stack it had, whatever
native code did to it in the body."""

from __future__ import annotations

import ctypes
import sys

import pytest

from ndr_edge.signal_stack import SS_DISABLE, _StackT, current_signal_stack, preserved_signal_stack

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack layout is Linux's")


def _set(buffer: ctypes.Array, flags: int = 0) -> None:
    stack = _StackT(ctypes.cast(buffer, ctypes.c_void_p), flags, ctypes.sizeof(buffer))
    assert ctypes.CDLL(None).sigaltstack(ctypes.byref(stack), None) == 0


def test_a_stack_replaced_in_the_body_is_put_back() -> None:
    before = current_signal_stack()
    foreign = ctypes.create_string_buffer(64 * 1024)
    with preserved_signal_stack():
        _set(foreign)  # what OpenVINO's CPU plugin does when it makes an engine
        assert current_signal_stack() == (ctypes.addressof(foreign), 0, 64 * 1024)
    assert current_signal_stack() == before


def test_a_thread_without_one_gets_none_back() -> None:
    before = current_signal_stack()
    mine = ctypes.create_string_buffer(64 * 1024)
    try:
        _set(mine, flags=SS_DISABLE)  # no alternate stack on this thread
        disabled = current_signal_stack()
        assert disabled is not None and disabled[1] & SS_DISABLE
        foreign = ctypes.create_string_buffer(64 * 1024)
        with preserved_signal_stack():
            _set(foreign)
        after = current_signal_stack()
        assert after is not None and after[1] & SS_DISABLE  # disabled again, not left on the freed buffer
    finally:
        if before is not None:
            restore = _StackT(before[0] or None, before[1] & SS_DISABLE, before[2])
            ctypes.CDLL(None).sigaltstack(ctypes.byref(restore), None)
    assert current_signal_stack() == before
