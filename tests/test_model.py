"""DAISnet model: every input/head combination trains a step and predicts; conv1 widening is exact."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch
from torchvision.models import resnet18

from daisnet.errors import InputError
from daisnet.model import ModelConfig, build_daisnet
from daisnet.model.backbone import widen_first_conv
from daisnet.model.config import INPUT_KINDS, backbone_channels
from daisnet.model.occlusion_edge import normalize_roi_depth, occlusion_edge_target

H, W = 64, 96
# Tiny heads and few RoIs: the suite checks wiring, not capacity.
TINY = dict(min_size=H, max_size=W, mask_head_width=16, edge_head_width=8, anchor_sizes=(16, 32, 64, 128, 256),
            representation_size=32, rpn_pre_nms_top_n=(100, 50), rpn_post_nms_top_n=(50, 25),
            box_batch_size_per_image=32, box_detections_per_img=8)


def tiny_batch(config: ModelConfig, n: int = 2):
    channels = backbone_channels(config) + int(config.needs_roi_depth)
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(channels, H, W, generator=g) for _ in range(n)]
    targets = []
    for _ in range(n):
        amodal = torch.zeros(2, H, W, dtype=torch.uint8)
        amodal[0, 8:40, 10:60] = 1
        amodal[1, 20:60, 40:90] = 1
        visible = amodal.clone()
        visible[0, 20:40, 40:60] = 0  # object 1 hides part of object 0
        targets.append({"boxes": torch.tensor([[10.0, 8, 60, 40], [40, 20, 90, 60]]),
                        "labels": torch.tensor([4, 2]), "masks": amodal, "visible_masks": visible})
    return images, targets


INPUT_SETS = [combo for r in range(1, 5) for combo in itertools.combinations(INPUT_KINDS, r)]
# (inputs, occlusion edge, shape prior depth mode or "off"): every input set with every edge head,
# and the shape prior's three depth modes on a few of them (each case costs a model build).
CASES = [(inputs, edge, "off") for inputs in INPUT_SETS for edge in ("off", "fcn", "mask_head", "conv1x1")]
CASES += [(("rgb",), "off", "all"), (("rgb", "depth"), "fcn", "visible"), (("depth_raw",), "mask_head", "none")]


def fill_random_codebook(model, labels=(2, 4), per_class: int = 6) -> None:
    """Random codewords for classes `labels` (other classes exercise the whole-codebook fallback)."""
    refiner = model.shape_prior
    n = refiner.centres.shape[0]
    g = torch.Generator().manual_seed(1)
    refiner.load_assets(refiner.encoder.state_dict(), torch.randn(n, 392, generator=g),
                        torch.tensor(labels).repeat_interleave(per_class)[:n], torch.rand(n, 28, 28, generator=g))


def shape_config(shape: str) -> dict:
    if shape == "off":
        return {}
    return dict(shape_prior="on", shape_prior_depth=shape, shape_prior_k=4, shape_prior_width=8, shape_prior_codewords=12)


@pytest.mark.parametrize("inputs,edge,shape", CASES, ids=["+".join(c[0]) + f"-{c[1]}-shape_{c[2]}" for c in CASES])
def test_every_combination_trains_a_step_and_predicts(inputs, edge, shape):
    torch.manual_seed(0)
    config = ModelConfig(inputs=inputs, occlusion_edge=edge, **shape_config(shape), **TINY)
    model = build_daisnet(config)
    if shape != "off":
        fill_random_codebook(model)
    images, targets = tiny_batch(config)
    model.train()
    losses = model(images, targets)
    expected = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_visible", "loss_objectness", "loss_rpn_box_reg"}
    if edge != "off":
        expected |= {"loss_edge", "loss_refine"}
    if shape != "off":
        expected |= {"loss_shape"}
    assert set(losses) == expected
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    first = model.backbone.body.conv1.weight
    assert first.shape[1] == backbone_channels(config) and first.grad is not None
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2
    keys = {"boxes", "labels", "scores", "masks", "amodal_masks", "visible_masks"}
    keys |= {"occlusion_edges"} if edge != "off" else set()
    assert keys <= set(out[0])
    n = len(out[0]["boxes"])
    assert out[0]["amodal_masks"].shape == (n, 1, H, W)


def test_widened_first_layer_equals_the_rgb_model_when_extra_channels_are_zero(tmp_path):
    weights = tmp_path / "resnet18-imagenet.pth"
    torch.manual_seed(1)
    torch.save(resnet18().state_dict(), weights)
    rgb = build_daisnet(ModelConfig(inputs=("rgb",), weights="imagenet", imagenet_path=str(weights), **TINY))
    wide = build_daisnet(ModelConfig(inputs=("rgb", "depth"), weights="imagenet", imagenet_path=str(weights), **TINY))
    assert wide.backbone.body.conv1.weight.shape[1] == 7
    x = torch.rand(1, 3, H, W)
    with torch.no_grad():
        a = rgb.backbone.body.conv1(x)
        b = wide.backbone.body.conv1(torch.cat([x, torch.zeros(1, 4, H, W)], dim=1))
    assert torch.allclose(a, b, atol=1e-6)
    # The extra filters repeat the RGB ones: channel c is channel c mod 3.
    w = wide.backbone.body.conv1.weight
    assert torch.equal(w[:, 3], w[:, 0]) and torch.equal(w[:, 6], w[:, 0]) and torch.equal(w[:, 5], w[:, 2])


def test_widen_first_conv_keeps_rgb_filters():
    conv = torch.nn.Conv2d(3, 8, 3)
    wide = widen_first_conv(conv, 9)
    assert torch.equal(wide.weight[:, :3], conv.weight)
    assert torch.equal(wide.weight[:, 3:6], conv.weight) and torch.equal(wide.weight[:, 6:9], conv.weight)


def test_missing_imagenet_file_says_where_to_put_it(tmp_path):
    config = ModelConfig(weights="imagenet", imagenet_path=str(tmp_path / "r{depth}.pth"), **TINY)
    with pytest.raises(InputError, match=r"r18\.pth.*resnet18-f37072fd\.pth"):
        build_daisnet(config)


def test_bad_model_params_are_refused():
    with pytest.raises(InputError, match="unknown model.inputs"):
        ModelConfig(inputs=("rgb", "lidar")).validate()
    with pytest.raises(InputError, match="occlusion_edge"):
        ModelConfig(occlusion_edge="big").validate()
    with pytest.raises(InputError, match="empty"):
        ModelConfig(inputs=()).validate()
    with pytest.raises(InputError, match=r"box_positive_fraction must be in \(0, 1\]"):
        ModelConfig(box_positive_fraction=0.0).validate()
    with pytest.raises(InputError, match=r"rpn_pre_nms_top_n must be \[training, testing\]"):
        ModelConfig(rpn_pre_nms_top_n=(1000,)).validate()



def test_box_positive_fraction_reaches_the_roi_sampler():
    model = build_daisnet(ModelConfig(inputs=("rgb",), box_positive_fraction=0.5, **TINY))
    assert model.roi_heads.fg_bg_sampler.positive_fraction == 0.5


def test_wrong_channel_count_is_a_clear_error():
    model = build_daisnet(ModelConfig(inputs=("rgb", "normal"), **TINY)).eval()
    with pytest.raises(ValueError, match=r"expected images of shape \(6, H, W\)"):
        model([torch.rand(3, H, W)])


def test_occlusion_edge_target_marks_the_visible_boundary_next_to_the_hidden_part():
    amodal = torch.zeros(1, 28, 28)
    amodal[0, 4:24, 4:24] = 1
    visible = amodal.clone()
    visible[0, 4:24, 14:24] = 0  # right half hidden by an occluder
    sharp = occlusion_edge_target(amodal, visible, sigma=0)
    cols = torch.nonzero(sharp[0])[:, 1]
    assert set(cols.tolist()) == {13}  # only the column touching the hidden half
    assert sharp[0, 4:24, 13].eq(1).all()
    soft = occlusion_edge_target(amodal, visible, sigma=1.0)
    assert torch.allclose(soft[0, 10, 13], torch.tensor(1.0))  # a straight edge peaks at 1
    assert 0 < soft[0, 10, 12] < 1 and 0 < soft[0, 10, 14] < 1
    assert soft[0, 10, 5] == 0
    # No occlusion, no edge: the natural boundary is not an occlusion edge.
    assert occlusion_edge_target(amodal, amodal, sigma=1.0).sum() == 0


def test_roi_depth_is_normalized_by_the_visible_region():
    depth = torch.full((2, 1, 4, 4), 3.0)
    depth[1] += 5.0  # a farther object: the same after normalization
    depth[:, :, :, :1] = 1.0  # an occluder in the first column (nearer)
    visible = torch.zeros(2, 1, 4, 4)
    visible[:, :, :, 1:] = 1
    out = normalize_roi_depth(depth, visible, scale=0.5)
    assert torch.allclose(out[:, :, :, 1:], torch.zeros(2, 1, 4, 3))
    assert (out[0, 0, :, 0] < 0).all()


def test_mask_heads_train_on_a_capped_random_subset_of_the_positives():
    from daisnet.model.roi_heads import subsample_positives

    labels = torch.tensor([0, 4, 0, 2, 4, 4, 0, 7, 1, 0, 4, 2])
    positives = set(torch.where(labels > 0)[0].tolist())
    assert set(subsample_positives(labels, 0).tolist()) == positives  # 0: all, as torchvision
    assert set(subsample_positives(labels, 50).tolist()) == positives
    torch.manual_seed(3)
    picked = subsample_positives(labels, 4).tolist()
    assert len(set(picked)) == 4 and set(picked) <= positives
    torch.manual_seed(3)
    assert subsample_positives(labels, 4).tolist() == picked  # seeded: a resumed run draws the same


def test_capped_mask_batch_trains_the_mask_heads_on_that_many_rois():
    torch.manual_seed(0)
    config = ModelConfig(inputs=("rgb",), mask_batch_size_per_image=3, **TINY)
    model = build_daisnet(config).train()
    seen = []
    model.roi_heads.mask_head.register_forward_hook(lambda module, args, out: seen.append(out.shape[0]))
    images, targets = tiny_batch(config)
    batch, targets = model.transform(images, targets)
    features = model.backbone(batch.tensors)
    # Proposals: 6 jittered copies of each of the 2 ground-truth boxes, all positives (IoU > 0.5).
    proposals = [t["boxes"].repeat(6, 1) + torch.rand(12, 4) for t in targets]
    model.roi_heads(features, proposals, batch.image_sizes, targets)
    assert seen == [6]  # 3 per image, 2 images, out of 12 positives each


def test_head_norm_puts_batchnorm_in_the_fpn_and_mask_heads_and_trains():
    plain = build_daisnet(ModelConfig(inputs=("rgb",), fpn_channels=32, **TINY))
    config = ModelConfig(inputs=("rgb",), fpn_channels=32, head_norm="batch", **TINY)
    normed = build_daisnet(config)

    def norms(module: torch.nn.Module) -> int:
        return sum(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())

    assert norms(plain.backbone.fpn) == norms(plain.roi_heads.mask_head) == 0
    assert norms(normed.backbone.fpn) == 8  # 4 lateral + 4 output convolutions
    assert norms(normed.roi_heads.mask_head) == norms(normed.roi_heads.visible_head) == 4
    losses = normed.train()(*tiny_batch(config))
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(InputError, match="head_norm"):
        ModelConfig(head_norm="group").validate()


def test_roi_sampling_ratio_reaches_both_roi_poolers():
    model = build_daisnet(ModelConfig(inputs=("rgb",), roi_sampling_ratio=1, **TINY))
    assert model.roi_heads.box_roi_pool.sampling_ratio == model.roi_heads.mask_roi_pool.sampling_ratio == 1
    for bad in (0, 1.5):
        with pytest.raises(InputError, match="roi_sampling_ratio"):
            ModelConfig(roi_sampling_ratio=bad).validate()


def test_anchor_scales_give_a_thin_pedestrian_an_anchor_above_the_rpn_threshold():
    from torchvision.ops import box_iou

    from daisnet.model.daisnet import anchor_generator

    pedestrian = torch.tensor([[-5.5, -26.5, 5.5, 26.5]])  # 11 x 53 px, centred like the cell anchors

    def best_iou(config: ModelConfig) -> float:
        cells = anchor_generator(config).cell_anchors
        return float(max(box_iou(pedestrian, c).max() for c in cells))

    octaves = ModelConfig(anchor_aspect_ratios=(0.5, 1.0, 2.0, 4.0), anchor_scales=(1.0,))
    between = ModelConfig(anchor_aspect_ratios=(0.5, 1.0, 2.0, 4.0), anchor_scales=(1.0, 1.5))
    assert anchor_generator(between).num_anchors_per_location() == [8] * 5
    assert best_iou(octaves) < 0.7 <= best_iou(between)
    model = build_daisnet(replace(between, inputs=("rgb",), **TINY)).train()
    losses = model(*tiny_batch(model.config))
    assert all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(InputError, match="anchor_scales"):
        ModelConfig(anchor_scales=()).validate()


def test_class_agnostic_masks_use_one_channel_for_every_class():
    config = ModelConfig(inputs=("rgb",), class_agnostic_masks=True, occlusion_edge="fcn", **TINY)
    torch.manual_seed(0)
    model = build_daisnet(config)
    assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 1
    assert model.roi_heads.visible_predictor.mask_fcn_logits.out_channels == 1
    images, targets = tiny_batch(config)
    losses = model.train()(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.roi_heads.mask_predictor.mask_fcn_logits.weight.grad.abs().sum() > 0
    model.eval()
    model.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        out = model(images)
    assert len(out[0]["labels"]) > 0
    assert out[0]["amodal_masks"].shape[1:] == (1, H, W) and out[0]["visible_masks"].shape[1:] == (1, H, W)


# Every form set explicitly (the defaults move): the earlier forms, each of the paper's, and all together.
EDGE_FORMS = [dict(edge_depth_pooling="image"), dict(edge_depth_pooling="fpn_level"), dict(edge_fcn="encoder_decoder"),
              dict(occlusion_refinement="residual"), dict(occlusion_refinement="mask_head"),
              dict(edge_loss_reduction="sum", edge_loss_weight=0.01),
              dict(edge_depth_pooling="image", edge_fcn="plain", occlusion_refinement="residual",
                   edge_loss_reduction="mean"),
              dict(edge_depth_pooling="fpn_level", edge_fcn="encoder_decoder", occlusion_refinement="mask_head",
                   edge_loss_reduction="sum")]


@pytest.mark.parametrize("form", EDGE_FORMS, ids=["-".join(f"{k}={v}" for k, v in f.items()) for f in EDGE_FORMS])
def test_every_edge_branch_form_trains_a_step_and_predicts(form):
    """§3.6-3.7 in the paper's reading (eq. 23 per-level depth, a micro FCN, a separate mask head,
    eq. 24's sum), each next to today's form."""
    torch.manual_seed(0)
    config = ModelConfig(inputs=("rgb", "depth"), occlusion_edge="fcn", **form, **TINY)
    config.validate()
    model = build_daisnet(config)
    images, targets = tiny_batch(config)
    model.train()
    losses = model(images, targets)
    assert {"loss_edge", "loss_refine"} <= set(losses) and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    edge_params = [p for name, p in model.named_parameters() if "edge_head" in name or "refinement" in name]
    assert edge_params and all(p.grad is not None for p in edge_params)
    model.eval()
    with torch.no_grad():
        out = model(images)
    n = len(out[0]["boxes"])
    assert out[0]["occlusion_edges"].shape == (n, 1, H, W) and out[0]["amodal_masks"].shape == (n, 1, H, W)


def test_eq_24_sum_is_the_per_roi_pixel_sum():
    from daisnet.model.occlusion_edge import occlusion_edge_loss

    logits, target = torch.randn(3, 1, 28, 28), torch.rand(3, 28, 28)
    mean = occlusion_edge_loss(logits, target, "mean")
    assert torch.allclose(occlusion_edge_loss(logits, target, "sum"), mean * 28 * 28)


def test_depth_pooled_at_each_rois_fpn_level():
    """eq. 23: a small RoI reads the stride-4 depth map, a large one the stride-32 map."""
    from torchvision.ops import MultiScaleRoIAlign

    from daisnet.model.roi_heads import depth_pyramid

    depth = torch.zeros(1, 1, 256, 256)
    depth[..., ::2, :] = 1.0  # a fine stripe pattern: averaged away at coarse strides
    pooler = MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=4, sampling_ratio=2)
    small, large = torch.tensor([[0.0, 0, 32, 32]]), torch.tensor([[0.0, 0, 256, 256]])
    pooled_small = pooler(depth_pyramid(depth), [small], [(256, 256)])
    pooled_large = pooler(depth_pyramid(depth), [large], [(256, 256)])
    assert torch.allclose(pooled_large, torch.full_like(pooled_large, 0.5))  # stride 32: the stripes averaged
    assert torch.allclose(pooled_small, torch.full_like(pooled_small, 0.5))  # stride 4 averages 2 rows too
    # a pattern coarser than stride 4 survives at the small RoI's level only
    depth = torch.zeros(1, 1, 256, 256)
    depth[..., :16, :] = 1.0
    top_small = pooler(depth_pyramid(depth), [torch.tensor([[0.0, 0, 32, 32]])], [(256, 256)])
    top_large = pooler(depth_pyramid(depth), [large], [(256, 256)])
    assert top_small[0, 0, 0].min() > 0.9 and top_large[0, 0, 0].max() < 0.6


def test_edge_pos_weight_weighs_the_edge_pixels_term_only():
    from daisnet.model.occlusion_edge import occlusion_edge_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 28, 28, generator=g)
    edges = torch.ones(3, 28, 28)
    background = torch.zeros(3, 28, 28)
    for reduction in ("mean", "sum"):
        assert torch.allclose(occlusion_edge_loss(logits, edges, reduction, 8.0),
                              8.0 * occlusion_edge_loss(logits, edges, reduction))
        assert torch.allclose(occlusion_edge_loss(logits, background, reduction, 8.0),
                              occlusion_edge_loss(logits, background, reduction))
    with pytest.raises(InputError, match="edge_pos_weight"):
        ModelConfig(edge_pos_weight=0.0, **TINY).validate()
