"""What every ndr-* command shares: typed errors become one line and an exit code. Torch-free."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import InputError, NDREdgeError

F = TypeVar("F", bound=Callable[..., Any])


def fail(prog: str, message: str, code: int = 2) -> None:
    click.echo(f"{prog}: error: {message}", err=True)
    sys.exit(code)


def one_line_errors(prog: str) -> Callable[[F], F]:
    """Turn NDREdgeError (and missing optional packages) into ``prog: error: ...``, exit != 0."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except NDREdgeError as exc:
                fail(prog, str(exc), exc.exit_code)
            except ModuleNotFoundError as exc:
                fail(prog, f"missing package {exc.name!r}; install the extra that provides it (see README)", 3)
            except KeyboardInterrupt:
                fail(prog, "interrupted; nothing half-written was kept", 130)

        return inner  # type: ignore[return-value]

    return wrap


def bundled_checkpoint() -> Path:
    """The checkpoint a CLI uses when none is given; a clear error when the install lacks it."""
    from .. import BUNDLED_CHECKPOINT

    if not BUNDLED_CHECKPOINT.is_file():
        raise InputError(f"{BUNDLED_CHECKPOINT}: the bundled checkpoint is missing from this install; "
                         "give a CHECKPOINT, or reinstall ndr-edge from a full checkout")
    return BUNDLED_CHECKPOINT
