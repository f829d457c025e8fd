"""BTS network: official names/shapes, forward contract, local planar guidance geometry."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from daisnet.depth.bts import BtsConfig, build_bts
from daisnet.depth.decoder import LocalPlanarGuidance, Reduction

# Key, shape and dtype of every entry of the released resnet50_bts / densenet161_bts checkpoints.
REFERENCE = Path(__file__).parent / "data" / "bts_official_state_dict.tsv"


def _reference(encoder: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in REFERENCE.read_text().splitlines():
        enc, key, shape, dtype = line.split("\t")
        if enc == encoder:
            rows[key] = (shape, dtype)
    return rows


@pytest.mark.parametrize("encoder", ["resnet50_bts", "densenet161_bts"])
def test_state_dict_matches_official_release(encoder: str) -> None:
    ref = _reference(encoder)
    assert len(ref) > 400
    ours = {k: (str(tuple(v.shape)), str(v.dtype).removeprefix("torch."))
            for k, v in build_bts(encoder).state_dict().items()}
    assert sorted(ours) == sorted(ref), set(ours) ^ set(ref)
    mismatched = {k: (ours[k], ref[k]) for k in ref if ours[k] != ref[k]}
    assert not mismatched


def test_forward_shape_range_and_focal_scaling() -> None:
    torch.manual_seed(0)
    model = build_bts("resnet18_bts", max_depth=20.0, focal_reference=500.0).eval()
    x = torch.randn(2, 3, 32, 96)
    with torch.no_grad():
        d1 = model(x, torch.tensor([500.0, 500.0]))
        d2 = model(x, torch.tensor([1000.0, 250.0]))
    assert d1.shape == (2, 1, 32, 96)
    assert bool((d1 > 0).all()) and bool((d1 <= 20.0).all())
    torch.testing.assert_close(d2[0], 2 * d1[0])
    torch.testing.assert_close(d2[1], 0.5 * d1[1])


def test_no_focal_scaling_when_reference_is_none() -> None:
    model = build_bts("resnet18_bts", focal_reference=None).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x, torch.tensor([1.0])), model(x))


def test_input_must_be_multiple_of_32() -> None:
    model = build_bts("resnet18_bts").eval()
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(1, 3, 48, 64), torch.tensor([700.0]))


def test_config_rejects_unknown_encoder() -> None:
    with pytest.raises(ValueError, match="unknown BTS encoder"):
        BtsConfig(encoder="vgg16_bts")


def test_lpg_constant_and_tilted_planes() -> None:
    lpg = LocalPlanarGuidance(2)
    flat = torch.tensor([0.0, 0.0, 1.0, 7.0]).view(1, 4, 1, 1).expand(1, 4, 2, 3)
    torch.testing.assert_close(lpg(flat), torch.full((1, 4, 6), 7.0))
    # n1 = 0.5: depth varies along the width only, with in-cell u = -1/4, +1/4
    tilted = torch.tensor([0.5, 0.0, 1.0, 1.0]).view(1, 4, 1, 1).expand(1, 4, 1, 2)
    out = lpg(tilted)
    row = torch.tensor([1 / (1 - 0.125), 1 / (1 + 0.125)] * 2)
    torch.testing.assert_close(out[0, 0], row)
    torch.testing.assert_close(out[0, 1], row)
    # n2 = 0.5: along the height, v = -1/4, +1/4
    out = lpg(torch.tensor([0.0, 0.5, 1.0, 1.0]).view(1, 4, 1, 1))
    torch.testing.assert_close(out[0, :, 0], torch.tensor([1 / (1 - 0.125), 1 / (1 + 0.125)]))


def test_plane_head_gives_unit_normals_in_cone_and_bounded_distance() -> None:
    torch.manual_seed(0)
    head = Reduction(32, 16, max_depth=10.0)
    out = head(torch.randn(2, 32, 4, 4) * 10)
    assert out.shape == (2, 4, 4, 4)
    torch.testing.assert_close(out[:, :3].norm(dim=1), torch.ones(2, 4, 4))
    assert bool((out[:, 2] >= math.cos(math.pi / 3) - 1e-6).all())  # theta <= pi/3
    assert bool((out[:, 3] >= 0).all()) and bool((out[:, 3] <= 10.0).all())
    names = [n for n, _ in head.reduc.named_children()]
    assert names == ["inter_32_16", "inter_16_8", "plane_params"]


def test_plane_angles_follow_the_release_op_order() -> None:
    """theta = sigmoid * pi / 3 as the release computes it (multiply, then divide), bit for bit."""
    torch.manual_seed(0)
    head = Reduction(16, 8, max_depth=80.0, is_final=False)
    x = torch.randn(2, 16, 4, 4)
    raw = head.reduc(x)
    n1, n2, n3, dist = head(x).unbind(1)
    theta = torch.sigmoid(raw[:, 0]) * math.pi / 3
    phi = torch.sigmoid(raw[:, 1]) * math.pi * 2
    assert torch.equal(n3, torch.cos(theta)) and torch.equal(n1, torch.sin(theta) * torch.cos(phi))
    assert not torch.equal(torch.sigmoid(raw[:, 0]) * (math.pi / 3), theta)  # the other order differs


def test_inference_feeds_contiguous_nchw_as_the_release() -> None:
    import numpy as np

    from daisnet.depth.infer import predict_depth

    model = build_bts("resnet18_bts", num_features=32).eval()
    seen: list[bool] = []
    model.register_forward_pre_hook(lambda _, args: seen.append(args[0].is_contiguous()))
    predict_depth(model, np.zeros((1, 64, 96, 3), np.uint8), np.array([721.5], np.float32))
    assert seen == [True]
