"""ndr-build: TensorRT engines for this machine from a copied export folder (torch-free)."""

from __future__ import annotations

from pathlib import Path

import click

from ndr_edge.cli.common import one_line_errors

EXAMPLES = """
\b
Examples:
  # on the Jetson, after copying the workstation's export folder: build every engine it can
  ndr-build out/export
  # only the INT8 engine, for 720p frames (batch 1-2), cached in a folder of your choice
  ndr-build out/export --precision int8 --min 1x3x64x64 --opt 1x3x720x1280 --max 2x3x720x1280 \\
      --engine-cache ~/.cache/ndr-edge/engines
  # then run: the same cache is found again (same folder, profile and workspace)
  ndr-restore out/export input.mp4 -o restored.mp4 --backend tensorrt --precision int8

\b
Engines are cached under EXPORT/engines (or --engine-cache), named by a key of what makes
an engine valid: the ONNX's SHA-256, precision, profile, workspace, TensorRT release, GPU
name and compute capability. A second run with the same key loads instead of building; a
changed key (new export, TensorRT upgrade, another GPU) rebuilds. Concurrent first runs
build once (a lock file per engine).
"""


def profile_options(func):  # type: ignore[no-untyped-def]
    """--min/--opt/--max/--workspace-mb/--engine-cache: how engines are built and cached
    (shared by ndr-build and ndr-restore)."""
    from ndr_edge.export.profiles import DEFAULT_MAX, DEFAULT_MIN, format_shape
    from ndr_edge.export.variants import DEFAULT_WORKSPACE_MB

    for decorator in reversed((
        click.option("--min", "min_shape", default=format_shape(DEFAULT_MIN), show_default=True,
                     help="Engine profile: smallest NxCxHxW."),
        click.option("--opt", "opt_shape", default=None, help="Engine profile: the shape tuned for. [default: 1x3x256x256]"),
        click.option("--max", "max_shape", default=format_shape(DEFAULT_MAX), show_default=True,
                     help="Engine profile: largest NxCxHxW."),
        click.option("--workspace-mb", default=DEFAULT_WORKSPACE_MB, show_default=True, type=click.IntRange(1),
                     help="TensorRT builder workspace limit."),
        click.option("--engine-cache", type=click.Path(file_okay=False), default=None,
                     help="Folder of cached engines. [default: EXPORT/engines]"),
    )):
        func = decorator(func)
    return func


def cache_config(min_shape: str, opt_shape: str | None, max_shape: str, workspace_mb: int,
                 engine_cache: str | None):  # type: ignore[no-untyped-def]
    from ndr_edge.export.profiles import Profile
    from ndr_edge.runtime.engine_cache import EngineCacheConfig

    return EngineCacheConfig(folder=Path(engine_cache).expanduser() if engine_cache else None,
                             profiles=(Profile.parse(min_shape, opt_shape, max_shape),), workspace_mb=workspace_mb)


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("export", type=click.Path(exists=True))
@click.option("--precision", default=None, help="Comma-separated: fp16, int8. [default: every one the export can build]")
@profile_options
@click.option("--device", default=0, show_default=True, type=click.IntRange(0), help="CUDA device index.")
@click.option("--quiet", is_flag=True, help="Only the summary lines.")
@one_line_errors("ndr-build")
def main(export: str, precision: str | None, min_shape: str, opt_shape: str | None, max_shape: str,
         workspace_mb: int, engine_cache: str | None, device: int, quiet: bool) -> None:
    """Build (or find in the cache) the TensorRT engines of EXPORT, an export folder from
    ndr-export copied to this machine. Needs TensorRT and a CUDA GPU; no torch."""
    from ndr_edge.runtime.engine_cache import build_export_engines

    config = cache_config(min_shape, opt_shape, max_shape, workspace_mb, engine_cache)
    precisions = [p.strip() for p in precision.split(",") if p.strip()] if precision else None

    def progress(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    for result in build_export_engines(export, precisions, config, progress=progress, device=device):
        how = f"built in {result.seconds:.0f} s" if result.built else "cached (key matches, not rebuilt)"
        click.echo(f"{result.sidecar.precision}: {result.engine} ({how})")


if __name__ == "__main__":
    main()
