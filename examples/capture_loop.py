"""Embedding the ndr-edge runtime in a capture loop: camera / video file / GStreamer in,
restored frames to a window or a video file, latency and FPS printed as it runs.

    python examples/capture_loop.py export/ 0 --show                       # camera 0, window
    python examples/capture_loop.py model.onnx clip.mp4 -o clean.mp4        # file to file
    python examples/capture_loop.py model.engine "nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink" --show

Needs only numpy, OpenCV and the backend (onnxruntime, or TensorRT + pycuda): no torch.
"""

from __future__ import annotations

import argparse
import sys

from ndr_edge.errors import NDREdgeError
from ndr_edge.runtime import Restorer, TileConfig, VideoSource, VideoWriter, Window


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="export folder, .onnx or .engine")
    parser.add_argument("source", help="camera index, video file or GStreamer pipeline ending in appsink")
    parser.add_argument("-o", "--output", help="write the restored video here")
    parser.add_argument("--show", action="store_true", help="show the restored frames (q/Esc quits)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    parser.add_argument("--tile", type=int, default=512, help="tile side for frames larger than it")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--report-every", type=int, default=100, help="print latency/FPS every N frames")
    args = parser.parse_args(argv)
    if not args.output and not args.show:
        parser.error("pass -o OUTPUT and/or --show")

    try:
        with Restorer.open(args.model, precision=args.precision, tiling=TileConfig(tile=args.tile)) as restorer, \
                VideoSource(args.source, max_frames=args.max_frames) as capture:
            print(f"{restorer.backend.describe()} <- {capture.kind} {capture.target} ({capture.width}x{capture.height})")
            writer = VideoWriter(args.output, fps=capture.fps) if args.output else None
            window = Window("ndr-edge") if args.show else None
            # Frames from OpenCV are BGR: say so, and the runtime converts to the model's order.
            with restorer.stream(channel_order=capture.channel_order, depth=2) as stream:
                try:
                    for index, clean in enumerate(stream.run(capture), start=1):
                        if writer is not None:
                            writer.write(clean)
                        if window is not None and not window.show(clean):
                            break
                        if index % args.report_every == 0:
                            print(stream.stats().line())
                except KeyboardInterrupt:
                    print("stopped")
                except BaseException:
                    if writer is not None:
                        writer.abort()  # no half-written file
                    raise
                finally:
                    if window is not None:
                        window.close()
            if writer is not None:
                writer.close()
            print(stream.stats().line())
    except NDREdgeError as exc:
        print(f"capture_loop: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
