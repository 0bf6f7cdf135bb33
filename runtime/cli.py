"""ndr-restore: restore an image, a folder of images, a video, a camera or a GStreamer
pipeline with an exported model (export folder, .onnx or .engine). Torch-free."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from ndr_edge.artifact import atomic_write_json
from ndr_edge.cli.common import check_output_file, one_line_errors
from ndr_edge.errors import InputError, NDREdgeError
from ndr_edge.export.variants import BACKEND_CHOICES, OPENVINO_DEVICES, OPENVINO_HINTS, PRECISIONS
from ndr_edge.runtime.build_cli import cache_config, profile_options
from ndr_edge.runtime.remote import RemoteRestorer, RemoteSettings
from ndr_edge.runtime.restorer import Restorer, select_artifact
from ndr_edge.runtime.stats import LatencyStats, LatencySummary
from ndr_edge.runtime.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, TileConfig
from ndr_edge.runtime.video import VIDEO_SUFFIXES, parse_source

PROG = "ndr-restore"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")  # as ndr_edge.imageio

EXAMPLES = """
\b
Examples:
  # one image with the fp32 model of an export folder (engine if TensorRT works here, else ONNX)
  ndr-restore export/ noisy.png -o clean.png
  # a folder of images with the fp16 ONNX model, 4K frames in 512 px tiles, 4 tiles per call
  ndr-restore export/ShotsDir -o CleanDir --precision fp16 --tile 512 --overlap 32 --tile-batch 4
  ndr-restore model.onnx photos/ -o restored/
  # a video file through a TensorRT engine
  ndr-restore model.engine input.mp4 -o restored.mp4
  # an export folder copied to a Jetson: the INT8 engine is built on first use and cached
  ndr-restore export/ input.mp4 -o restored.mp4 --backend tensorrt --precision int8
  # provisioning: build it now (same cache, same key), restore later
  ndr-restore export/ --build-only --backend tensorrt --precision int8 --max 1x3x1088x1920
  # camera 0 in a window (needs opencv-python and a display); q or Esc stops
  ndr-restore export/ 0 --show --max-frames 1000
  # a GStreamer pipeline (ends in appsink) recorded to a file
  ndr-restore export/ "v4l2src ! videoconvert ! appsink" -o cam.avi
  # on a server started with ndr-serve (no model files here; the server tiles and batches)
  ndr-restore --server grpc://gpu-box:8001 input.mp4 -o restored.mp4
  # OpenVINO on the CPU, bf16 inference where the CPU has AVX512-BF16/AMX (else f32, said so)
  ndr-restore export/ noisy.png -o clean.png --backend openvino --ov-hint bf16
"""


def classify_input(text: str) -> str:
    """``image``, ``folder``, ``video`` (file, camera index or GStreamer pipeline)."""
    kind, _ = parse_source(text)
    if kind != "file":
        return "video"
    path = Path(text)
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise InputError(f"{path}: input not found; pass an image, a folder of images, a video, a camera index or a "
                         "GStreamer pipeline")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise InputError(f"{path}: unknown input type {suffix or '(no suffix)'!r}; images: {', '.join(IMAGE_SUFFIXES)}; "
                     f"videos: {', '.join(VIDEO_SUFFIXES)}")


def _progress(iterable: Any, total: int | None, desc: str, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="frame", disable=quiet, leave=False, file=sys.stderr)


def _image_output(src: Path, output: Path) -> Path:
    if output.is_dir() or not output.suffix:
        return output / src.name
    return output


def _describe(restorer: Restorer | RemoteRestorer) -> str:
    if isinstance(restorer, RemoteRestorer):
        return restorer.describe()
    return (f"{restorer.backend.describe()}, tiles {restorer.tiling.tile}px (overlap {restorer.tiling.overlap}, "
            f"batch {restorer.tiling.batch})")


def run_images(restorer: Restorer | RemoteRestorer, files: list[Path], outputs: list[Path], quiet: bool) -> tuple[LatencySummary, list[str]]:
    from ndr_edge.imageio import read_image, write_image

    stats = LatencyStats()
    skipped: list[str] = []
    for src, dst in _progress(list(zip(files, outputs)), len(files), "restoring", quiet):
        try:
            image = read_image(src)
        except InputError as exc:
            skipped.append(str(exc))
            click.echo(f"{PROG}: skipped: {exc}", err=True)
            continue
        start = time.perf_counter()
        restored = restorer.restore(image, channel_order="RGB")
        stats.record(time.perf_counter() - start)
        write_image(dst, restored)
    return stats.summary(), skipped


def run_video(
    restorer: Restorer | RemoteRestorer, source: str, output: Path | None, show: bool, max_frames: int | None, fourcc: str | None,
    quiet: bool,
) -> LatencySummary:
    from ndr_edge.runtime.video import VideoSource, VideoWriter, Window

    with VideoSource(source, max_frames=max_frames) as capture:
        live = capture.kind != "file"
        writer = VideoWriter(output, fps=capture.fps, fourcc=fourcc) if output is not None else None
        window = Window() if show else None
        stream = restorer.stream(channel_order=capture.channel_order)
        try:
            try:
                for frame in _progress(stream.run(capture), capture.frame_count, "restoring", quiet):
                    if writer is not None:
                        writer.write(frame)
                    if window is not None and not window.show(frame):
                        break
            except KeyboardInterrupt:
                if not live:
                    raise
                click.echo(f"{PROG}: stopped; keeping the {stream.stats().frames} frames restored so far", err=True)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            stream.close()
            if window is not None:
                window.close()
        if writer is not None:
            writer.close()
            if not writer.frames_written:
                raise InputError(f"{source}: no frame could be read; nothing written")
        return stream.stats()


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("model", type=click.Path(), required=False)
@click.argument("input_", metavar="INPUT", required=False)
@click.option("--server", default=None, metavar="URL",
              help="Restore on an ndr-serve server (grpc://HOST:8001 or http://HOST:8000); then give INPUT only.")
@click.option("--server-model", default="ndr", show_default=True, help="--server: the served model name.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="--server: seconds a frame may take, retries included.")
@click.option("-o", "--output", type=click.Path(), help="Output image, folder or video file (required unless --show).")
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="auto", show_default=True,
              help="auto: a TensorRT engine when TensorRT and a GPU work here, else ONNX Runtime.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="Which artifact of an export folder.")
@click.option("--providers", help="ONNX Runtime providers in order, e.g. cuda,cpu (default: CUDA if installed, CPU).")
@click.option("--tile", type=click.IntRange(0), default=None,
              help=f"Tile side in px for frames larger than it (default {DEFAULT_TILE}, or the engine's max); "
                   "0: never tile.")
@click.option("--overlap", type=click.IntRange(0), default=DEFAULT_OVERLAP, show_default=True,
              help="Overlap between tiles in px, blended smoothly.")
@click.option("--tile-batch", type=click.IntRange(1), default=1, show_default=True, help="Tiles per inference call.")
@click.option("--show", is_flag=True, help="Video: show the restored frames in a window (q/Esc stops).")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="Video/camera: stop after N frames.")
@click.option("--fourcc", default=None, help="Video codec (default by suffix: mp4v for .mp4, MJPG for .avi).")
@click.option("--device", type=click.IntRange(0), default=0, show_default=True, help="CUDA device index.")
@click.option("--ov-device", type=click.Choice(OPENVINO_DEVICES, case_sensitive=False), default="CPU", show_default=True,
              help="OpenVINO device (--backend openvino).")
@click.option("--ov-hint", type=click.Choice(OPENVINO_HINTS), default=None,
              help="OpenVINO inference precision (default: the device's; bf16 needs AVX512-BF16 or AMX).")
@click.option("--build-only", is_flag=True,
              help="--backend tensorrt: build (or find cached) the engine of MODEL for this machine, then stop.")
@profile_options
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the latency summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@one_line_errors(PROG)
def main(model: str | None, input_: str | None, server: str | None, server_model: str, timeout: float,
         output: str | None, backend: str, precision: str, providers: str | None,
         tile: int | None, overlap: int, tile_batch: int, show: bool, max_frames: int | None, fourcc: str | None,
         device: int, ov_device: str, ov_hint: str | None, build_only: bool, min_shape: str, opt_shape: str | None,
         max_shape: str, workspace_mb: int, engine_cache: str | None, json_out: str | None, quiet: bool) -> None:
    """Restore INPUT (an image, a folder of images, a video file, a camera index or a
    GStreamer pipeline) with MODEL (an export folder, an .onnx file or an .engine) and
    write the result to OUTPUT; prints a latency summary at the end. With --server URL,
    INPUT is restored on that ndr-serve server (give no MODEL)."""
    cache = cache_config(min_shape, opt_shape, max_shape, workspace_mb, engine_cache)
    if build_only:
        if server is not None or input_ is not None or model is None:
            raise InputError("--build-only takes MODEL only (an export folder or an .onnx file), no INPUT")
        if backend != "tensorrt":
            raise InputError("--build-only builds TensorRT engines; add --backend tensorrt (and --precision fp16 or int8)")
        selection = select_artifact(model, backend="tensorrt", precision=precision, device=device, engine_cache=cache)
        click.echo(f"{PROG}: engine ready: {selection.path}")
        return
    if server is not None:
        if input_ is not None:
            raise InputError("with --server give INPUT only (the model is on the server)")
        model, input_ = None, model
    if input_ is None:
        raise InputError("give MODEL and INPUT (or --server URL INPUT)")
    kind = classify_input(input_)
    if output is None and not (kind == "video" and show):
        raise InputError("no output given; pass -o OUTPUT (or --show for a video or camera)")
    out_path = Path(output) if output is not None else None
    if kind == "folder" and out_path is not None and out_path.resolve() == Path(input_).resolve():
        raise InputError(f"{output}: output folder is the input folder; choose another so originals are kept")
    if kind == "folder" and out_path is not None and out_path.is_file():
        raise InputError(f"{output}: a folder of images needs an output folder, not a file")
    if kind == "video" and out_path is not None and out_path.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"{output}: video output needs a video suffix ({', '.join(VIDEO_SUFFIXES)})")
    if kind == "image" and out_path is not None and out_path.suffix and out_path.suffix.lower() not in IMAGE_SUFFIXES \
            and not out_path.is_dir():
        raise InputError(f"{output}: image output needs an image suffix ({', '.join(IMAGE_SUFFIXES)}) or a folder")
    # every output location is checked before any work (no restoration that cannot be saved)
    if out_path is not None:
        if kind == "folder" or (kind == "image" and (out_path.is_dir() or not out_path.suffix)):
            check_output_file(out_path / "probe", "output folder's")
        else:
            check_output_file(out_path, "output")
    if json_out:
        check_output_file(json_out, "JSON")
    provider_list = [p for p in providers.split(",") if p.strip()] if providers else None

    files: list[Path] = []
    if kind == "folder":
        from ndr_edge.imageio import list_images

        files = list_images(input_)
    restorer_tiling = None
    if tile is not None and tile > 0:
        restorer_tiling = TileConfig(tile=tile, overlap=overlap, batch=tile_batch)
    elif tile is None and (overlap != DEFAULT_OVERLAP or tile_batch != 1):
        restorer_tiling = TileConfig(tile=DEFAULT_TILE, overlap=overlap, batch=tile_batch)
    opened: Restorer | RemoteRestorer
    if server is not None:
        opened = RemoteRestorer(server, model=server_model, settings=RemoteSettings(timeout_s=timeout),
                                tile=False if tile == 0 else restorer_tiling)
    else:
        assert model is not None
        opened = Restorer.open(model, backend=backend, precision=precision, providers=provider_list,
                               tiling=restorer_tiling, auto_tile=tile != 0, device=device,
                               ov_device=ov_device.upper(), ov_hint=ov_hint, engine_cache=cache)
    with opened as restorer:
        if not quiet:
            click.echo(f"{PROG}: {_describe(restorer)}", err=True)
        skipped: list[str] = []
        if kind == "video":
            summary = run_video(restorer, input_, out_path, show, max_frames, fourcc, quiet)
        elif kind == "image":
            assert out_path is not None
            summary, skipped = run_images(restorer, [Path(input_)], [_image_output(Path(input_), out_path)], quiet)
        else:
            assert out_path is not None
            out_path.mkdir(parents=True, exist_ok=True)
            summary, skipped = run_images(restorer, files, [out_path / f.name for f in files], quiet)
        info = restorer.info()
    click.echo(f"{PROG}: {summary.line()}")
    if json_out:
        atomic_write_json(json_out, {"input": input_, "output": output, "model": info, "latency": summary.to_dict(),
                                     "skipped": skipped})
    if skipped:
        raise NDREdgeError(f"{len(skipped)} of {len(files) or 1} images could not be read and were skipped")


if __name__ == "__main__":
    main()
