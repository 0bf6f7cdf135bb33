"""Many cameras, one server: N capture loops, each streaming its frames to one ``ndr-serve``
(Triton) and getting them back restored, in order, while Triton batches frames across the
cameras. Each loop is what examples/capture_loop.py does, with a RemoteRestorer in place of
the in-process Restorer -- the same calls.

    # on the server (see the README, "Serving many cameras"): .venv-serve/bin/ndr-serve export/
    python examples/many_cameras.py grpc://127.0.0.1:8001 0 1 rtsp://cam3/stream clip.mp4
    python examples/many_cameras.py grpc://gpu-box:8001 0 1 -o restored/        # cam-0.avi, cam-1.avi
    python examples/many_cameras.py grpc://127.0.0.1:8001 --synthetic 8 --max-frames 200   # no cameras

Sources are camera indices, video files, RTSP URLs or GStreamer pipelines (OpenCV), or
``--synthetic N`` noise frames (no OpenCV needed). Needs numpy and tritonclient
(``pip install ndr-edge[remote]``), OpenCV for real sources: no torch, no model files.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ndr_edge.errors import NDREdgeError
from ndr_edge.runtime.remote import RemoteRestorer, RemoteSettings


def synthetic(index: int, size: tuple[int, int], max_frames: int | None, fps: float) -> Iterator[np.ndarray]:
    """A camera of noisy gradients at ``fps`` (0: as fast as the server takes them)."""
    rng = np.random.default_rng(index)
    height, width = size
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    count = 0
    while max_frames is None or count < max_frames:
        start = time.perf_counter()
        frame = np.clip(ramp + rng.normal(0, 25, (height, width, 3)), 0, 255).astype(np.uint8)
        yield frame
        count += 1
        if fps > 0:
            time.sleep(max(0.0, 1.0 / fps - (time.perf_counter() - start)))


class Camera(threading.Thread):
    """One capture loop: source -> server stream -> (writer) -> stats."""

    def __init__(self, name: str, source: str | None, args: argparse.Namespace, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.source, self.args, self.stop = source, args, stop
        self.error: BaseException | None = None
        self.summary = "not started"

    def frames(self) -> tuple[Iterator[np.ndarray], str, float, Any]:
        """(frames, channel order, fps, the capture to close)."""
        if self.source is None:
            index = int(self.name.split("-")[-1])
            return synthetic(index, (self.args.height, self.args.width), self.args.max_frames, self.args.fps), "RGB", \
                self.args.fps or 25.0, None
        from ndr_edge.runtime.video import VideoSource

        capture = VideoSource(self.source, max_frames=self.args.max_frames)
        return iter(capture), capture.channel_order, capture.fps, capture

    def run(self) -> None:
        args = self.args
        capture = None
        writer = None
        try:
            frames, order, fps, capture = self.frames()
            if args.output:
                from ndr_edge.runtime.video import VideoWriter

                Path(args.output).mkdir(parents=True, exist_ok=True)
                writer = VideoWriter(Path(args.output) / f"{self.name}.avi", fps=fps)
            settings = RemoteSettings(timeout_s=args.timeout, retries=args.retries)
            with RemoteRestorer(args.url, model=args.model, settings=settings) as restorer, \
                    restorer.stream(channel_order=order, depth=args.depth) as stream:
                for index, clean in enumerate(stream.run(frames), start=1):
                    if writer is not None:
                        writer.write(clean)
                    if index % args.report_every == 0:
                        print(f"{self.name}: {stream.stats().line()}", flush=True)
                    if self.stop.is_set():
                        break
                self.summary = stream.stats().line()
            if writer is not None:
                writer.close()
                writer = None
        except BaseException as exc:  # noqa: BLE001 - reported by main
            self.error = exc
            if writer is not None:
                writer.abort()
        finally:
            if capture is not None:
                capture.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the server: grpc://HOST:8001 or http://HOST:8000")
    parser.add_argument("sources", nargs="*", help="camera indices, video files, RTSP URLs, GStreamer pipelines")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N", help="add N synthetic cameras")
    parser.add_argument("--width", type=int, default=640, help="synthetic frame width")
    parser.add_argument("--height", type=int, default=360, help="synthetic frame height")
    parser.add_argument("--fps", type=float, default=25.0, help="synthetic frame rate (0: as fast as served)")
    parser.add_argument("--model", default="ndr", help="served model name (ndr-serve --model-name)")
    parser.add_argument("-o", "--output", help="folder for one restored video per camera")
    parser.add_argument("--depth", type=int, default=2, help="requests in flight per camera")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a frame may take, retries included")
    parser.add_argument("--retries", type=int, default=2, help="retries after the server was unreachable")
    parser.add_argument("--max-frames", type=int, default=None, help="stop each camera after N frames")
    parser.add_argument("--report-every", type=int, default=100, help="print a camera's latency/FPS every N frames")
    args = parser.parse_args(argv)
    sources: list[str | None] = [*args.sources, *([None] * args.synthetic)]
    if not sources:
        parser.error("give camera sources and/or --synthetic N")

    stop = threading.Event()
    cameras = [Camera(f"cam-{i}", source, args, stop) for i, source in enumerate(sources)]
    start = time.perf_counter()
    for camera in cameras:
        camera.start()
    try:
        while any(c.is_alive() for c in cameras):
            for camera in cameras:
                camera.join(0.2)
    except KeyboardInterrupt:
        print("stopping the cameras", file=sys.stderr)
        stop.set()
        for camera in cameras:
            camera.join(args.timeout + 5)
    wall = time.perf_counter() - start
    failed = 0
    for camera in cameras:
        if camera.error is not None:
            failed += 1
            reason = camera.error if isinstance(camera.error, NDREdgeError) else repr(camera.error)
            print(f"{camera.name}: error: {reason}", file=sys.stderr)
        else:
            print(f"{camera.name}: {camera.summary}")
    print(f"{len(cameras)} cameras, {len(cameras) - failed} finished, {wall:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
