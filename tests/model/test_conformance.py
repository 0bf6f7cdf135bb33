"""The model reproduces the authors' implementation and checkpoint layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ndr_edge.checkpoint import load_checkpoint
from ndr_edge.model import NDRConfig, NDRRestore, RestorationOnly, get_preset


def test_official_small_reproduces_vectors(conformance_dir):
    loaded = load_checkpoint(conformance_dir / "official-small.pth")
    vectors = np.load(conformance_dir / "official-small.npz")
    with torch.no_grad():
        out, ds = loaded.model.restoration_net(torch.from_numpy(vectors["input"]))
    assert np.abs(out.numpy() - vectors["output"]).max() <= 1e-5
    for level, d in enumerate(ds, start=1):
        assert np.abs(d.numpy() - vectors[f"d{level}"]).max() <= 1e-5


def test_inferred_config_matches_recorded(conformance_dir):
    recorded = json.loads((conformance_dir / "official-small.json").read_text())["config"]
    loaded = load_checkpoint(conformance_dir / "official-small.pth")
    for key, value in recorded.items():
        got = getattr(loaded.config, key)
        assert (list(got) if isinstance(got, tuple) else got) == value, key


def test_default_config_has_published_names_and_shapes(conformance_dir):
    keys = json.loads((conformance_dir / "official-keys.json").read_text())["keys"]
    model = NDRRestore(NDRConfig())
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == keys


def test_ndr_is_one_shared_parameter():
    model = NDRRestore(get_preset("ndr-edge-xs"))
    assert model.restoration_net.dr is model.degradation_representations
    assert len(list(model.parameters())) == len(model.state_dict()) - 1


@pytest.mark.parametrize("size", [(64, 64), (40, 72), (128, 96)])
def test_dynamic_sizes_and_batch(size):
    torch.manual_seed(0)
    net = RestorationOnly(NDRRestore(get_preset("ndr-edge-xs"), with_degradation_net=False).restoration_net).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = net(x)
        single = net(x[1:])
    assert out.shape == x.shape
    assert torch.allclose(out[1:], single, atol=1e-5)


def test_low_rank_transform_matches_outer_product_definition():
    from ndr_edge.model.ndr import LowRankTransform

    torch.manual_seed(0)
    lrt = LowRankTransform(channels=6, rank=4)
    x = torch.rand(2, 6, 8, 10)
    a_c = lrt.conv_C(x.mean(dim=(2, 3), keepdim=True)).reshape(2, 4, 6)
    a_h = lrt.conv_H(x.mean(dim=3, keepdim=True))[..., 0]
    a_w = lrt.conv_W(x.mean(dim=2, keepdim=True))[:, :, 0]
    attention = torch.einsum("brc,brh,brw->bchw", a_c, a_h, a_w) / 4
    assert torch.allclose(lrt(x), x * attention, atol=1e-6)


def test_degradation_net_resynthesises_shape():
    model = NDRRestore(get_preset("ndr-edge-xs"))
    lq, gt = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
    restored, fake = model(lq, gt)
    assert restored.shape == fake.shape == lq.shape


def test_global_residual_only_where_configured():
    """Edge presets add the input to the exit conv; the published configuration does not."""
    from dataclasses import replace

    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32)
    with_residual = RestorationOnly(NDRRestore(get_preset("ndr-edge-xs")).restoration_net).eval()
    config = replace(get_preset("ndr-edge-xs"), global_residual=False)
    without = RestorationOnly(NDRRestore(config).restoration_net).eval()
    for net in (with_residual, without):
        torch.nn.init.zeros_(net.net.reconstruction.weight)
        torch.nn.init.zeros_(net.net.reconstruction.bias)
    with torch.no_grad():
        assert torch.equal(with_residual(image), image)
        assert torch.equal(without(image), torch.zeros_like(image))
    assert not NDRConfig().global_residual
