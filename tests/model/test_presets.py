"""The preset table in the README (parameters and GFLOP per 256x256 frame) against the models
the presets build, and the cost profile (``ndr_edge.model.profile``) against an independent
count: FLOPs of the same network on the meta device, parameters of the authors' key list."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ndr_edge.model import NDRRestore, get_preset
from ndr_edge.model.config import PRESETS
from tests.conftest import CONFORMANCE, REPO


def readme_presets() -> dict[str, dict[str, object]]:
    """``| `name` | 27.33 M | 9.63 M | 307.1 | what for |`` rows of the README's preset table."""
    rows = {}
    pattern = re.compile(r"^\| `([\w-]+)` \| ([\d.]+) M \| ([\d.]+) M \| ([\d.]+) \| (.+) \|$")
    for line in (REPO / "README.md").read_text().splitlines():
        match = pattern.match(line.strip())
        if match:
            name, rest, degrad, gflop, summary = match.groups()
            rows[name] = {"restoration": float(rest), "degradation": float(degrad), "gflop": float(gflop),
                          "summary": summary.strip()}
    return rows


def _meta_cost(name: str, size: tuple[int, int] = (256, 256)) -> tuple[int, int, float]:
    """Parameters and GFLOP of a preset without allocating or computing anything (meta tensors)."""
    with torch.device("meta"):
        model = NDRRestore(get_preset(name)).eval()
    assert model.degradation_net is not None
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.restoration_net(torch.zeros(1, 3, *size, device="meta"))
    return (sum(p.numel() for p in model.restoration_net.parameters()),
            sum(p.numel() for p in model.degradation_net.parameters()), counter.get_total_flops() / 1e9)


def test_readme_lists_every_preset_with_its_summary() -> None:
    table = readme_presets()
    assert list(table) == list(PRESETS)
    for name, preset in PRESETS.items():
        assert table[name]["summary"] == preset.summary
        assert get_preset(name) is preset.config
    assert get_preset("published") is PRESETS["ndr-restore"].config  # the alias
    assert get_preset("ndr-edge-s").global_residual and not get_preset("ndr-restore").global_residual


def test_published_parameter_count_is_the_authors_key_list() -> None:
    """27.33 M / 9.63 M from the shapes of the authors' checkpoint layout, not from our model."""
    keys = json.loads((CONFORMANCE / "official-keys.json").read_text())["keys"]
    restoration = sum(math.prod(s) for k, s in keys.items() if k.startswith("restoration_net."))
    degradation = sum(math.prod(s) for k, s in keys.items() if k.startswith("degradation_net."))
    row = readme_presets()["ndr-restore"]
    assert round(restoration / 1e6, 2) == row["restoration"]
    assert round(degradation / 1e6, 2) == row["degradation"]
    assert "27.3 M" in PRESETS["ndr-restore"].summary and round(restoration / 1e6, 1) == 27.3


@pytest.mark.parametrize("name", ["ndr-edge-xs", "ndr-edge-s"])
def test_edge_presets_match_the_readme_table(name: str) -> None:
    restoration, degradation, gflop = _meta_cost(name)
    row = readme_presets()[name]
    assert round(restoration / 1e6, 2) == row["restoration"]
    assert round(degradation / 1e6, 2) == row["degradation"]
    assert round(gflop, 1) == row["gflop"]


@pytest.mark.slow
def test_published_flops_match_the_readme_table() -> None:
    restoration, degradation, gflop = _meta_cost("ndr-restore")
    row = readme_presets()["ndr-restore"]
    assert (round(restoration / 1e6, 2), round(degradation / 1e6, 2), round(gflop, 1)) == (
        row["restoration"], row["degradation"], row["gflop"])


def test_profile_measure_counts_what_the_model_computes() -> None:
    """``measure`` runs the real network; its numbers equal the meta-device count, and the
    FLOPs grow with the pixels (every operation, attention included, is linear in H x W)."""
    from ndr_edge.model.profile import measure

    cost = measure(get_preset("ndr-edge-xs"), size=(64, 64))
    restoration, degradation, gflop = _meta_cost("ndr-edge-xs", (64, 64))
    assert (cost.restoration_params, cost.degradation_params, cost.size) == (restoration, degradation, (64, 64))
    assert cost.gflop == pytest.approx(gflop, rel=1e-9)
    assert cost.gflop * 16 == pytest.approx(readme_presets()["ndr-edge-xs"]["gflop"], rel=0.01)


def test_profile_table_rows_have_the_readme_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m ndr_edge.model.profile`` prints the README's table (costs stubbed: the real
    ones are checked above)."""
    from ndr_edge.model import profile

    table = readme_presets()
    fake = {id(PRESETS[n].config): profile.Cost(int(r["restoration"] * 1e6), int(r["degradation"] * 1e6),
                                                float(r["gflop"]), (256, 256)) for n, r in table.items()}
    monkeypatch.setattr(profile, "measure", lambda config, size=(256, 256): fake[id(config)])
    readme = (REPO / "README.md").read_text()
    for line in profile.table().splitlines():
        assert line in readme, line
