"""``report.md``: the report's JSON payload as tables a person reads. Pure formatting."""

from __future__ import annotations

from typing import Any

BEST = "★"


def _num(value: Any, fmt: str = ".2f", missing: str = "–") -> str:
    if value is None:
        return missing
    if isinstance(value, str):  # "inf": identical outputs
        return "identical" if value == "inf" else value
    return format(float(value), fmt)


def _size(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _measured(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in payload["variants"] if v["psnr"]]


def summary_table(payload: dict[str, Any]) -> str:
    rows = []
    for v in payload["variants"]:
        lat = v["latency_ms"] or {}
        status = v["status"] + (" (reference)" if v["reference"] else "")
        psnr = [x for x in v["psnr"].values() if isinstance(x, (int, float))]
        rows.append([
            f"`{v['name']}`", v["backend"], v["precision"], status, _size(v["size_bytes"]),
            f"{_num(lat.get('median'), '.1f')} / {_num(lat.get('p90'), '.1f')}", _num(v["throughput_fps"], ".2f"),
            _num(v.get("streams"), ".2f"), _num(v["peak_memory_mb"], ".0f"), _num(sum(psnr) / len(psnr) if psnr else None),
            "ref." if v["reference"] else _num(v["fidelity_psnr_db"]),
            "ref." if v["reference"] else _num(v["fidelity_max_abs"], ".2e"),
        ])
    headline = payload["latency_method"]["headline"]
    stream_fps = payload.get("config", {}).get("stream_fps", 30.0)
    return (f"Latency: {headline}. Throughput: best frames/s at the first size over the batch sizes; "
            f"streams: that throughput in {stream_fps:g} FPS camera streams (how many one machine restores). "
            "Memory: peak resident memory of the process that ran the model, above the backend library's own.\n\n"
            + _table(["variant", "backend", "precision", "status", "size", "latency ms (median / p90)", "frames/s",
                      f"{stream_fps:g} FPS streams", "memory MB", "mean PSNR dB", "fidelity PSNR dB", "max abs err"], rows,
                     ["l", "l", "l", "l", "r", "r", "r", "r", "r", "r", "r", "r"]))


def metric_table(payload: dict[str, Any], metric: str) -> str:
    """Degradations as rows, variants as columns; each cell the score and the loss against the
    reference; the best artifact within the budget marked."""
    variants = _measured(payload)
    degradations = list(payload["evaluation"]["input_psnr"])
    best = payload["best"]
    loss_key, fmt, loss_fmt = ("psnr_loss_db", ".2f", "+.2f") if metric == "psnr" else ("ssim_loss", ".4f", "+.4f")
    inputs = payload["evaluation"]["input_psnr" if metric == "psnr" else "input_ssim"]
    rows = []
    for d in degradations:
        row = [d, _num(inputs.get(d), fmt)]
        for v in variants:
            cell = _num(v[metric].get(d), fmt)
            loss = v[loss_key].get(d)
            if loss is not None and not v["reference"]:
                cell += f" ({_num(-loss if isinstance(loss, (int, float)) else loss, loss_fmt)})"
            if metric == "psnr" and best.get(d, {}).get("variant") == v["name"]:
                cell = f"**{cell}** {BEST}"
            row.append(cell)
        rows.append(row)
    means = ["**mean**", _num(_mean(inputs.values()), fmt)]
    for v in variants:
        means.append(_num(_mean(v[metric].values()), fmt))
    rows.append(means)
    header = ["degradation", "degraded input"] + [f"`{v['name']}`" + (" (ref.)" if v["reference"] else "")
                                                  for v in variants]
    return _table(header, rows)


def _mean(values: Any) -> float | None:
    numbers = [float(x) for x in values if isinstance(x, (int, float))]
    return sum(numbers) / len(numbers) if numbers else None


def latency_table(payload: dict[str, Any]) -> str:
    rows = []
    for v in payload["variants"]:
        for e in v["latency"]:
            if "error" in e:
                rows.append([f"`{v['name']}`", e["size"], str(e["batch"]), "–", "–", "–", "–", f"not run: {e['error']}"])
                continue
            rows.append([f"`{v['name']}`", e["size"], str(e["batch"]), _num(e["median_ms"], ".1f"),
                         _num(e["p90_ms"], ".1f"), _num(e["per_frame_median_ms"], ".1f"), _num(e["fps"], ".2f"), ""])
    if not rows:
        return "No latency was measured."
    return _table(["variant", "size", "batch", "median ms / call", "p90 ms / call", "median ms / frame", "frames/s",
                   "note"], rows, ["l", "r", "r", "r", "r", "r", "r", "l"])


def best_table(payload: dict[str, Any]) -> str:
    budget = payload["budget_ms"]
    rows = []
    for d, pick in payload["best"].items():
        if pick.get("variant") is None:
            rows.append([d, "–", "–", "–", pick.get("reason", "")])
        else:
            rows.append([d, f"`{pick['variant']}`", _num(pick["psnr"]), _num(pick["latency_ms"], ".1f"), ""])
    rule = (f"among the artifacts within a budget of {budget:g} ms per frame" if budget is not None
            else "among all artifacts (no latency budget given; set one with --budget-ms)")
    return (f"{BEST} Highest PSNR {rule}; PSNR compared to 0.01 dB, ties go to the faster. "
            "The PyTorch checkpoint is the reference, not a candidate.\n\n"
            + _table(["degradation", "best artifact", "PSNR dB", "latency ms / frame", "note"], rows,
                     ["l", "l", "r", "r", "l"]))


def problems(payload: dict[str, Any]) -> str:
    lines = []
    for v in payload["variants"]:
        if v["status"] != "ok":
            lines.append(f"- `{v['name']}` **{v['status']}**: {v['reason']}")
        for note in v["notes"]:
            lines.append(f"- `{v['name']}`: {note}")
    return "\n".join(lines)


def machine_section(payload: dict[str, Any]) -> str:
    m, versions = payload["machine"], payload["versions"]
    load = m.get("load_average_at_start")
    lines = [
        f"- CPU: {m['cpu']} ({m['usable_cores']} usable of {m['cpu_cores']} cores), {m['memory_gb']} GB memory",
        f"- OS: {m['os']}, Python {m['python']}",
        f"- GPU: {m['gpu'] or 'none used'}; TensorRT {m['tensorrt']}",
        f"- ONNX Runtime providers available: {', '.join(m['onnxruntime_providers']) or 'none'} (the report uses CPU)",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
    ]
    if load:
        lines.append(f"- Load average when the report started: {', '.join(str(x) for x in load)} "
                     "(other processes share the CPU when this exceeds 0; latencies then include their interference)")
    return "\n".join(lines)


def method_section(payload: dict[str, Any]) -> str:
    evaluation, latency = payload["evaluation"], payload["latency_method"]
    return "\n".join([
        f"- Evaluation set: {evaluation['summary']}; {evaluation['samples']} samples, every variant on the same ones.",
        f"- Quality: {evaluation['protocol']}.",
        f"- Fidelity: {evaluation['fidelity']}.",
        f"- Latency: {latency['headline']}; {latency['timing']}; threads: {latency['threads'] or 'the backend default'}.",
        f"- Memory: {latency['memory']}.",
    ])


def render_markdown(payload: dict[str, Any], figures: dict[str, str]) -> str:
    source = payload["source"]
    config = payload["config"]
    command = config.get("extra", {}).get("command")
    parts = [
        "# ndr-edge deployment report",
        f"Export `{payload['export_dir']}` of `{source.get('path', '?')}` (preset {source.get('preset') or 'custom'}, "
        f"sha256 `{str(source.get('sha256', ''))[:12]}`), {source.get('channel_order', 'BGR')} on "
        f"{source.get('value_range', [0, 1])}. Reference: `{payload['reference'] or 'none'}`. "
        f"Made in {payload['seconds']:.0f} s" + (f" by `{command}`." if command else "."),
        "## Variants", summary_table(payload),
    ]
    issues = problems(payload)
    if issues:
        parts += ["### Failed, skipped and partial", issues]
    if _measured(payload):
        parts += [
            "## Restoration quality: PSNR (dB) per degradation",
            ("Each cell: mean PSNR against the clean images, and in brackets the change against the reference "
             f"(negative: a loss). **Bold {BEST}**: the best artifact for that degradation (see below)."),
            metric_table(payload, "psnr"),
            "## Restoration quality: SSIM per degradation", metric_table(payload, "ssim"),
            "## Best artifact per degradation", best_table(payload),
        ]
    parts += [
        "## Accuracy against latency",
        f"![PSNR against latency]({figures['accuracy']})",
        f"![degraded, each variant, clean]({figures['samples']})",
        "## Latency", latency_table(payload),
        "## How it was measured",
        method_section(payload),
        "## Machine", machine_section(payload),
    ]
    return "\n\n".join(parts) + "\n"
