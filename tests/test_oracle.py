"""Oracle rows (R+O*, R+S*) and the edge head's own metric: the ground truth reaches the RoI heads at
test, the oracle replaces exactly the learned part it names, and the counts are those of the target."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import yaml
from PIL import Image

from daisnet.errors import InputError
from daisnet.evaluate.edges import EdgeTally
from daisnet.evaluate.run import split_metrics
from daisnet.model import ModelConfig, build_daisnet
from daisnet.model.occlusion_edge import edge_confusion, edge_scores, occlusion_edge_target
from daisnet.model.oracle import match_ground_truth, oracle_logit, with_oracle_masks
from daisnet.model.shape_prior import ShapePriorRefiner, shape_input
from daisnet.pipeline.study import read_runs
from test_model import TINY, fill_random_codebook, tiny_batch
from test_report import tiny_repo


def test_a_detection_takes_the_instance_it_overlaps_most_and_a_stray_one_none():
    _, targets = tiny_batch(ModelConfig(**TINY), n=1)
    boxes = [torch.tensor([[40.0, 20, 90, 60], [11, 9, 59, 41], [0, 0, 6, 6]])]
    amodal, visible, matched = match_ground_truth(boxes, targets, 28)
    assert matched.tolist() == [True, True, False]
    assert amodal[0].mean() > 0.95  # the box is instance 1's own: its amodal mask fills it (bilinear rim)
    assert 0.9 < amodal[1].mean() <= 1.0 and visible[1].mean() < amodal[1].mean()  # instance 0, partly hidden
    assert amodal[2].abs().sum() == 0 and visible[2].abs().sum() == 0


def test_oracle_logits_are_confident_and_follow_the_target():
    target = torch.tensor([[[0.0, 0.5, 1.0]]])
    logits = oracle_logit(target)
    assert logits.shape == (1, 1, 1, 3)
    assert torch.sigmoid(logits).flatten().tolist() == pytest.approx([0.001, 0.5, 0.999], abs=1e-6)


def test_edge_confusion_counts_pixels_at_one_half():
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]], [[[5.0, 5.0], [5.0, 5.0]]]])
    target = torch.tensor([[[1.0, 0.6], [0.2, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
    assert edge_confusion(logits, target).tolist() == [5, 1, 1]
    assert edge_confusion(logits, target, torch.tensor([True, False])).tolist() == [1, 1, 1]
    assert edge_scores([1, 1, 1]) == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    assert edge_scores([0, 0, 0]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def _eval_outputs(model, config, with_truth: bool):
    images, targets = tiny_batch(config)
    model.eval()
    with torch.no_grad():
        return model(images, targets if with_truth else None)


def test_the_edge_oracle_makes_the_amodal_mask_independent_of_the_edge_head():
    def amodal_after_perturbing_the_edge_head(oracle: str) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        config = ModelConfig(inputs=("rgb",), occlusion_edge="mask_head", oracle=oracle, **TINY)
        model = build_daisnet(config)
        before = _eval_outputs(model, config, True)[0]
        with torch.no_grad():
            for p in model.roi_heads.edge_head.parameters():
                p.add_(torch.randn_like(p))
        after = _eval_outputs(model, config, True)[0]
        assert len(before["boxes"]) > 0 and torch.equal(before["boxes"], after["boxes"])
        return before["amodal_masks"], after["amodal_masks"]

    learned = amodal_after_perturbing_the_edge_head("off")
    assert not torch.equal(*learned)  # the refinement reads the edge head...
    oracle = amodal_after_perturbing_the_edge_head("edge")
    assert torch.equal(*oracle)  # ...unless the oracle feeds it the target


def test_the_shape_oracle_retrieves_from_the_ground_truth_not_the_prediction():
    torch.manual_seed(0)
    refiner = ShapePriorRefiner("all", 12, k=4, width=8, feature_channels=16, oracle=True)
    g = torch.Generator().manual_seed(1)
    truth = (torch.rand(2, 28, 28, generator=g) > 0.5).float()
    context = {"visible_logit": torch.randn(2, 1, 28, 28, generator=g),
               "roi_log_depth": torch.randn(2, 1, 28, 28, generator=g),
               "amodal_target": truth, "visible_target": truth * (torch.rand(2, 28, 28, generator=g) > 0.3)}
    full, empty = torch.full((2, 1, 28, 28), 8.0), torch.full((2, 1, 28, 28), -8.0)
    # A codebook in which the prediction decides: 6 codewords beside each prediction's code.
    visible = torch.sigmoid(context["visible_logit"])
    codes = [refiner.encoder(shape_input(torch.sigmoid(x), visible, context["roi_log_depth"], "all")).flatten(1)[0]
             for x in (full, empty)]
    centres = torch.stack([c + 0.01 * torch.randn(392, generator=g) for c in codes for _ in range(6)])
    refiner.load_assets(refiner.encoder.state_dict(), centres, torch.full((12,), 2), torch.rand(12, 28, 28, generator=g))
    labels = torch.tensor([2, 2])
    refiner.oracle = False
    assert not torch.equal(refiner.retrieve(full, labels, context), refiner.retrieve(empty, labels, context))
    refiner.oracle = True
    assert torch.equal(refiner.retrieve(full, labels, context), refiner.retrieve(empty, labels, context))
    # at test a detection without a matched instance keeps its own prediction
    context["matched"] = torch.tensor([True, False])
    first, second = refiner.retrieve(full, labels, context), refiner.retrieve(empty, labels, context)
    assert torch.equal(first[0], second[0]) and not torch.equal(first[1], second[1])


def test_edge_counts_are_the_matched_detections_pixels_against_their_targets():
    torch.manual_seed(0)
    config = ModelConfig(inputs=("rgb",), occlusion_edge="fcn", **TINY)
    model = build_daisnet(config).eval()
    assert model.reads_roi_ground_truth
    images, targets = tiny_batch(config)
    with torch.no_grad():
        # Detections exactly at the ground-truth boxes: no box regression, every class scored alike.
        for layer in (model.roi_heads.box_predictor.bbox_pred, model.roi_heads.box_predictor.cls_score):
            layer.weight.zero_()
            layer.bias.zero_()
        batch, truth = model.transform(images, targets)
        features = model.backbone(batch.tensors[:, :-1])
        result, _ = model.roi_heads(features, [t["boxes"] for t in truth], batch.image_sizes, truth,
                                    batch.tensors[:, -1:])
    for output, target in zip(result, truth):
        amodal, visible, matched = match_ground_truth([output["boxes"]], [target], 28)
        edges = occlusion_edge_target(amodal, visible, config.edge_sigma)
        expected_edges = int((edges[matched] >= 0.5).sum())
        tp, fp, fn = output["edge_counts"].tolist()
        assert matched.all() and expected_edges > 0
        assert tp + fn == expected_edges
        assert tp + fp == int((output["occlusion_edges"][matched] >= 0.5).sum())
    blind = _eval_outputs(model, config, False)
    assert all("edge_counts" not in out for out in blind)


def test_edge_counts_add_up_over_the_split_into_the_compared_scores():
    counts = [torch.tensor([3, 1, 2]), torch.tensor([1, 0, 2]), None]
    tally = EdgeTally()
    outputs = [{"image_id": i} if c is None else {"image_id": i, "edge_counts": c} for i, c in enumerate(counts)]
    assert list(tally.observe(outputs)) == outputs
    metrics = tally.metrics()
    assert metrics == {"precision": 0.8, "recall": 0.5, "f1": round(2 * 0.8 * 0.5 / 1.3, 4),
                       "true_positives": 4, "false_positives": 1, "false_negatives": 4}
    compared, details = split_metrics({"amodal": {"AP": 1.0}, "edge": metrics})
    assert compared["edge"] == {"precision": 0.8, "recall": 0.5, "f1": metrics["f1"]}
    assert set(details["edge"]) == {"true_positives", "false_positives", "false_negatives"}
    assert EdgeTally().metrics() is None


def test_training_logs_the_edge_heads_scores_since_the_last_log_line():
    torch.manual_seed(0)
    config = ModelConfig(inputs=("rgb",), occlusion_edge="mask_head", **TINY)
    model = build_daisnet(config)
    images, targets = tiny_batch(config)
    model.train()
    model(images, targets)
    model(images, targets)
    statistics = model.pop_training_statistics()
    assert set(statistics) == {"edge_precision", "edge_recall", "edge_f1"}
    assert all(0.0 <= v <= 1.0 for v in statistics.values())
    assert model.pop_training_statistics() == {}  # reset: the next line covers only its own iterations
    plain = build_daisnet(ModelConfig(inputs=("rgb",), **TINY))
    assert plain.pop_training_statistics() == {} and not plain.reads_roi_ground_truth


def test_an_oracle_without_its_part_or_its_ground_truth_is_refused():
    with pytest.raises(InputError, match="needs model.occlusion_edge"):
        ModelConfig(oracle="edge", **TINY).validate()
    with pytest.raises(InputError, match="needs model.shape_prior"):
        ModelConfig(oracle="shape", **TINY).validate()
    with pytest.raises(InputError, match="model.oracle 'both'"):
        ModelConfig(oracle="both", **TINY).validate()
    config = ModelConfig(inputs=("rgb",), shape_prior="on", shape_prior_k=4, shape_prior_width=8,
                         shape_prior_codewords=12, oracle="shape", **TINY)
    model = build_daisnet(config)
    fill_random_codebook(model)
    with pytest.raises(ValueError, match="needs the ground truth at test"):
        _eval_outputs(model, config, False)
    assert len(_eval_outputs(model, config, True)) == 2


@pytest.mark.slow
def test_a_tiny_oracle_study_run_records_the_edge_metric_and_its_curve(tiny_features, tmp_path):
    """The real stages: `daisnet ablation` trains R+O* (the edge oracle) keeping models along the way,
    evaluates each with the split's ground truth, records edge F1 and the curve; the report draws it."""
    root = tmp_path / "repo"
    env = tiny_repo(tiny_features, root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"]["snapshot_every"] = 15
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    cli = [sys.executable, "-m", "daisnet.pipeline.cli"]
    subprocess.run([*cli, "ablation", "--rows", "R+O*", "--seeds", "0", "--profile", "smoke"], cwd=root, env=env,
                   check=True, capture_output=True)
    (run,) = read_runs(root / "reports" / "ablation" / "runs.jsonl")
    assert run["row"] == "R+O*" and run["overrides"]["model.oracle"] == "edge"
    assert set(run["metrics"]["edge"]) == {"precision", "recall", "f1", "true_positives", "false_positives",
                                           "false_negatives"}
    assert [p["iterations"] for p in run["curve"]] == [15, 30]
    assert run["curve"][-1]["amodal_AP"] == run["metrics"]["amodal"]["AP"]
    assert all("edge_f1" in p for p in run["curve"])
    # the final model again with its detections' ground-truth amodal masks: no worse than its own masks
    assert run["mask_ceiling"]["amodal_AP"] >= run["metrics"]["amodal"]["AP"]
    assert set(run["mask_ceiling"]) == {"amodal_AP", "hidden_amodal_AP"}  # and only behind occluders
    subprocess.run([*cli, "report"], cwd=root, env=env, check=True, capture_output=True)
    text = (root / "reports" / "ablation.md").read_text()
    assert "### AP against iterations" in text and "| R+O* | 1 |" in text
    Image.open(root / "reports" / "ablation_curves.png").verify()


def test_the_mask_ceiling_gives_matched_detections_their_ground_truth_and_keeps_the_rest():
    torch.manual_seed(0)
    config = ModelConfig(inputs=("rgb",), **TINY)
    model = build_daisnet(config).eval()
    assert not model.reads_roi_ground_truth
    images, targets = tiny_batch(config)
    with torch.no_grad():
        batch, truth = model.transform(images, targets)
        features = model.backbone(batch.tensors)  # RGB only: no depth channel
        # the ground-truth boxes and a stray box that overlaps no instance
        boxes = [torch.cat([t["boxes"], torch.tensor([[0.0, 0.0, 4.0, 4.0]])]) for t in truth]
        own = model.roi_heads(features, boxes, batch.image_sizes)[0]
        model.set_mask_ceiling(True)
        assert model.reads_roi_ground_truth
        ceiling = model.roi_heads(features, boxes, batch.image_sizes, truth)[0]
    for mine, capped, target in zip(own, ceiling, truth):
        amodal, _, matched = match_ground_truth([capped["boxes"]], [target], 28)
        assert matched.any() and not matched.all()
        assert torch.allclose(capped["amodal_masks"][matched, 0], amodal[matched].clamp(1e-3, 1 - 1e-3), atol=1e-5)
        assert torch.equal(capped["amodal_masks"][~matched], mine["amodal_masks"][~matched])
        assert torch.equal(capped["visible_masks"], mine["visible_masks"])  # only the amodal masks
    with pytest.raises(ValueError, match="mask ceiling needs the ground truth"):
        _eval_outputs(model, config, False)


def test_the_mask_ceiling_regions_split_the_ground_truth_between_the_hidden_part_and_the_rest():
    g = torch.Generator().manual_seed(0)
    amodal_target = torch.zeros(2, 4, 4)
    amodal_target[:, :, :3] = 1.0
    visible_target = torch.zeros(2, 4, 4)
    visible_target[:, :, :1] = 1.0  # columns 1-2 hidden, column 3 background
    own = torch.randn(2, 1, 4, 4, generator=g)
    matched = torch.tensor([True, False])
    truth = oracle_logit(amodal_target)
    hidden = (amodal_target >= 0.5) & (visible_target < 0.5)
    for region, corrected in (("all", torch.ones_like(hidden)), ("hidden", hidden), ("visible", ~hidden)):
        out = with_oracle_masks(own, amodal_target, visible_target, matched, region)
        assert torch.equal(out[1], own[1])  # unmatched: its own
        assert torch.equal(out[0, 0][corrected[0]], truth[0, 0][corrected[0]])
        assert torch.equal(out[0, 0][~corrected[0]], own[0, 0][~corrected[0]])
    with pytest.raises(InputError, match="ceiling-region"):
        build_daisnet(ModelConfig(inputs=("rgb",), **TINY)).set_mask_ceiling(True, "edges")
