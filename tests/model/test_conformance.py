"""The model reproduces the authors' implementation and checkpoint layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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


# NDR-Degrad written out with torch.nn.functional from the published parameter names (the
# names are pinned by official-keys.json above): ResBlocks, pixel-(un)shuffle resampling,
# Degradation Injection through the rank-R CP transform, one residual group of RCABs.
def _conv(x, sd, name, padding=0):
    return F.conv2d(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"), padding=padding)


def _resblock(x, sd, prefix):
    return x + _conv(F.relu(_conv(x, sd, f"{prefix}.conv.0", 1)), sd, f"{prefix}.conv.2", 1)


def _low_rank(x, sd, prefix, rank):
    """x * (1/R) sum_r a_c[r] (x) a_h[r] (x) a_w[r]"""
    b, c = x.shape[:2]
    a_c = torch.sigmoid(_conv(x.mean((2, 3), keepdim=True), sd, f"{prefix}.conv_C.1")).reshape(b, rank, c)
    a_h = torch.sigmoid(_conv(x.mean(3, keepdim=True), sd, f"{prefix}.conv_H.1"))[..., 0]
    a_w = torch.sigmoid(_conv(x.mean(2, keepdim=True), sd, f"{prefix}.conv_W.1"))[:, :, 0]
    return x * torch.einsum("brc,brh,brw->bchw", a_c, a_h, a_w) / rank


def _inject(feature, degradation, sd, prefix, rank):
    x = _low_rank(feature, sd, f"{prefix}.low_rank_transform3", rank)
    d = _low_rank(_conv(degradation, sd, f"{prefix}.conv1"), sd, f"{prefix}.low_rank_transform1", rank)
    return _conv(d, sd, f"{prefix}.f") * x + _conv(d, sd, f"{prefix}.g")


def _rcab(x, sd, prefix):
    y = _conv(F.relu(_conv(x, sd, f"{prefix}.body.0", 1)), sd, f"{prefix}.body.2", 1)
    du = f"{prefix}.body.3.conv_du"
    return x + y * torch.sigmoid(_conv(F.relu(_conv(y.mean((2, 3), keepdim=True), sd, f"{du}.0")), sd, f"{du}.2"))


def ndr_degrad_reference(sd, clean, degradations, rank, rcabs):
    d1, d2, d3 = degradations
    e1 = _resblock(_conv(clean, sd, "extractor", 1), sd, "block1")
    e2 = _resblock(F.pixel_unshuffle(_conv(e1, sd, "pool1.body.0", 1), 2), sd, "block2")
    e3 = _resblock(F.pixel_unshuffle(_conv(e2, sd, "pool2.body.0", 1), 2), sd, "block3")
    x = _resblock(F.pixel_unshuffle(_conv(e3, sd, "pool3.body.0", 1), 2), sd, "bottom")
    for level, skip, d in ((3, e3, d3), (2, e2, d2), (1, e1, d1)):
        up = F.pixel_shuffle(_conv(x, sd, f"up{level}.body.0", 1), 2)
        x = torch.cat([_inject(skip, d, sd, f"inject_degradation{level}", rank), up], dim=1)
        x = _resblock(_conv(x, sd, f"block_up{level}.0"), sd, f"block_up{level}.1")
    group = x
    for i in range(rcabs):
        group = _rcab(group, sd, f"refinement.body.{i}")
    x = x + _conv(group, sd, f"refinement.body.{rcabs}", 1)
    return _conv(x, sd, "reconstruction", 1) + clean


def test_ndr_degrad_resynthesises_from_the_authors_degradation_estimates(conformance_dir):
    """The vectors hold no NDR-Degrad weights (it is trained only), but they hold what it
    consumes: the authors' D_1..D_3 for their input. The whole model must hand NDR-Degrad
    exactly those, level by level, and NDR-Degrad must compute the published network on them."""
    torch.manual_seed(0)  # NDR-Degrad's own weights: a seeded initialisation
    model = load_checkpoint(conformance_dir / "official-small.pth", with_degradation_net=True).model.eval()
    net = model.degradation_net
    vectors = np.load(conformance_dir / "official-small.npz")
    lq = torch.from_numpy(vectors["input"])
    clean = torch.rand(lq.shape, generator=torch.Generator().manual_seed(1))
    authors = [torch.from_numpy(vectors[f"d{level}"]) for level in (1, 2, 3)]
    with torch.no_grad():
        restored, fake = model(lq, clean)
        from_vectors = net(clean, authors)
        reference = ndr_degrad_reference(net.state_dict(), clean, authors, model.config.rank, model.config.degrad_rcab)
    assert np.abs(restored.numpy() - vectors["output"]).max() <= 1e-5
    assert (fake - from_vectors).abs().max() <= 1e-5  # the model feeds it the authors' D_1..D_3, in order
    assert (from_vectors - reference).abs().max() <= 1e-5
    assert (fake - clean).abs().max() > 1e-2  # it re-synthesises a degradation, not the clean image


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
