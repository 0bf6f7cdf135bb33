"""What every ndr-* command shares: typed errors become one line and an exit code. Torch-free."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ndr_edge.errors import InputError, NDREdgeError

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
    from ndr_edge import BUNDLED_CHECKPOINT

    if not BUNDLED_CHECKPOINT.is_file():
        raise InputError(f"{BUNDLED_CHECKPOINT}: the bundled checkpoint is missing from this install; "
                         "give a CHECKPOINT, or reinstall ndr-edge from a full checkout")
    return BUNDLED_CHECKPOINT


def check_output_file(path: str | Path, what: str = "output") -> Path:
    """Fail before any work when ``path`` cannot be written: its nearest existing parent must
    be a writable folder (missing folders are created on write) and ``path`` not a folder."""
    import os

    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target}: the {what} file is a folder; give a file name")
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{target}: cannot create the {what} file, {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{target}: {parent} is not writable; choose another {what} location")
    return target
