"""Oracle rows (R+O*, R+S*) and the edge head's own metric: the ground truth reaches the RoI heads at
test, the oracle replaces exactly the learned part it names, and the counts are those of the target."""

from __future__ import annotations

import pytest
import torch

from daisnet.errors import InputError
from daisnet.evaluate.edges import EdgeTally
from daisnet.evaluate.run import split_metrics
from daisnet.model import ModelConfig, build_daisnet
from daisnet.model.occlusion_edge import edge_confusion, edge_scores
from daisnet.model.oracle import match_ground_truth, oracle_edge_logit
from daisnet.model.shape_prior import ShapePriorRefiner
from test_model import TINY, fill_random_codebook, tiny_batch


def test_a_detection_takes_the_instance_it_overlaps_most_and_a_stray_one_none():
    _, targets = tiny_batch(ModelConfig(**TINY), n=1)
    boxes = [torch.tensor([[40.0, 20, 90, 60], [11, 9, 59, 41], [0, 0, 6, 6]])]
    amodal, visible, matched = match_ground_truth(boxes, targets, 28)
    assert matched.tolist() == [True, True, False]
    assert amodal[0].mean() == 1.0  # the box is instance 1's own: its amodal mask fills it
    assert 0.9 < amodal[1].mean() <= 1.0 and visible[1].mean() < amodal[1].mean()  # instance 0, partly hidden
    assert amodal[2].abs().sum() == 0 and visible[2].abs().sum() == 0


def test_oracle_edge_logits_are_confident_and_follow_the_target():
    target = torch.tensor([[[0.0, 0.5, 1.0]]])
    logits = oracle_edge_logit(target)
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
    refiner.load_assets(refiner.encoder.state_dict(), torch.randn(12, 392, generator=g),
                        torch.tensor([2, 4]).repeat_interleave(6), torch.rand(12, 28, 28, generator=g))
    truth = (torch.rand(3, 28, 28, generator=g) > 0.5).float()
    context = {"visible_logit": torch.randn(3, 1, 28, 28, generator=g), "roi_log_depth": torch.randn(3, 1, 28, 28, generator=g),
               "amodal_target": truth, "visible_target": truth * 0.5 > 0.25}
    context["visible_target"] = context["visible_target"].float()
    labels = torch.tensor([2, 4, 2])
    a, b = torch.randn(3, 1, 28, 28, generator=g), torch.randn(3, 1, 28, 28, generator=g)
    assert torch.equal(refiner.retrieve(a, labels, context), refiner.retrieve(b, labels, context))
    # at test an unmatched detection keeps its own prediction
    context["matched"] = torch.tensor([True, False, True])
    first, second = refiner.retrieve(a, labels, context), refiner.retrieve(b, labels, context)
    assert torch.equal(first[[0, 2]], second[[0, 2]])
    refiner.oracle = False
    assert not torch.equal(refiner.retrieve(a, labels, context), refiner.retrieve(b, labels, context))


def test_edge_counts_come_with_the_ground_truth_and_add_up_over_the_split():
    torch.manual_seed(0)
    config = ModelConfig(inputs=("rgb",), occlusion_edge="fcn", **TINY)
    model = build_daisnet(config)
    assert model.reads_ground_truth_at_test
    blind = _eval_outputs(model, config, False)
    assert all("edge_counts" not in out for out in blind)
    seen = _eval_outputs(model, config, True)
    counts = [out["edge_counts"] for out in seen]
    assert all(c.shape == (3,) and c.dtype == torch.int64 and (c >= 0).all() for c in counts)
    tally = EdgeTally()
    assert list(tally.observe(seen)) == seen
    total = sum(c for c in counts)
    metrics = tally.metrics()
    assert [metrics["true_positives"], metrics["false_positives"], metrics["false_negatives"]] == total.tolist()
    assert metrics["true_positives"] + metrics["false_negatives"] > 0  # the tiny batch has a hidden part
    compared, details = split_metrics({"amodal": {"AP": 1.0}, "edge": metrics})
    assert set(compared["edge"]) == {"precision", "recall", "f1"}
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
    assert plain.pop_training_statistics() == {} and not plain.reads_ground_truth_at_test


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
