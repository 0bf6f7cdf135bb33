"""Run the latency/memory worker (:mod:`.worker`) for one variant in a fresh process and
read its result; progress lines become a progress bar, a crash or a timeout a reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import deque
from dataclasses import asdict
from typing import Any

from tqdm import tqdm

from ndr_edge.errors import LatencyError
from ndr_edge.report.config import ReportConfig
from ndr_edge.report.plan import VariantPlan
from ndr_edge.report.worker import PROGRESS_PREFIX


def worker_spec(plan: VariantPlan, config: ReportConfig) -> dict[str, Any]:
    fields = asdict(plan)
    fields["path"] = str(plan.path) if plan.path is not None else None
    return {"plan": fields, "sizes": [list(s) for s in config.sizes], "batches": list(config.batches),
            "warmup": config.warmup, "repeats": config.repeats, "threads": config.threads, "device": config.device,
            "seed": config.seed}


def measure_latency(plan: VariantPlan, config: ReportConfig, progress: bool = True) -> dict[str, Any]:
    """The worker's result (``entries``, ``memory``, ...) or :class:`LatencyError`."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "ndr_edge.report.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        process.kill()

    timer = threading.Timer(config.worker_timeout_s, kill)
    timer.daemon = True
    timer.start()
    tail: deque[str] = deque(maxlen=20)
    bar = tqdm(desc=f"latency {plan.name}", unit="run", disable=not progress, leave=False, file=sys.stderr)
    try:
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        process.stdin.write(json.dumps(worker_spec(plan, config)))
        process.stdin.close()
        stdout_chunks: list[str] = []
        reader = threading.Thread(target=lambda: stdout_chunks.append(process.stdout.read()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        for line in process.stderr:
            if line.startswith(PROGRESS_PREFIX):
                done, total = (int(x) for x in line.split()[1:3])
                bar.total = total
                bar.n = done
                bar.refresh()
            elif line.strip():
                tail.append(line.rstrip())
        code = process.wait()
        reader.join()
    finally:
        timer.cancel()
        bar.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    if timed_out.is_set():
        raise LatencyError(f"latency run exceeded {config.worker_timeout_s:.0f} s and was stopped")
    result = _last_json("".join(stdout_chunks))
    if result is None:
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        last = next((t for t in reversed(tail) if t.strip()), "no message")
        raise LatencyError(f"the measuring process died ({how}): {last[-300:]}")
    if "error" in result:
        raise LatencyError(str(result["error"]))
    return result


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None
