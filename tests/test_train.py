"""Training: resume after an interruption gives the uninterrupted weights; divergence stops clearly."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from daisnet.data.torch_dataset import AmodalDataset, AugmentConfig
from daisnet.model import ModelConfig
from daisnet.model import checkpoint
from daisnet.errors import TrainingDiverged
from daisnet.train.loop import IterationSampler, TrainConfig, build_optimizer, train
from daisnet.train.schedule import learning_rate, smooth_warmup

TINY_MODEL = ModelConfig(inputs=("rgb",), min_size=64, max_size=128, mask_head_width=16, representation_size=32,
                         rpn_pre_nms_top_n=(100, 50), rpn_post_nms_top_n=(50, 25), box_batch_size_per_image=32,
                         box_detections_per_img=8)
TINY_TRAIN = TrainConfig(iterations=4, batch_size=2, lr=0.01, warmup_iters=2, checkpoint_every=2, log_every=1,
                         num_workers=0)


class Interrupt(Exception):
    pass


class StopAt:
    """A logger that kills the run (raises) when it reaches `iteration`."""

    def __init__(self, iteration: int | None = None) -> None:
        self.iteration = iteration
        self.logged: list[tuple[int, dict]] = []

    def log(self, iteration: int, values: dict) -> None:
        self.logged.append((iteration, values))
        if iteration == self.iteration:
            raise Interrupt(iteration)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(path)["model"]


def test_smooth_warmup_is_eq_27():
    assert smooth_warmup(0, 100, 1.3, 1.0) == 0.0
    assert math.isclose(smooth_warmup(50, 100, 1.3, 0.5), 0.5**1.3 * 0.5)
    assert smooth_warmup(100, 100, 1.3, 0.5) == 1.0
    assert math.isclose(learning_rate(90, 0.1, 100, 10, 1.3, 1.0, (0.8,), 0.1), 0.01)


def test_cosine_decay_falls_from_the_warmed_up_lr_to_zero():
    lrs = [learning_rate(i, 0.1, 100, 10, 1.0, 1.0, (0.8,), 0.1, "cosine") for i in range(101)]
    assert lrs[0] == 0.0 and math.isclose(lrs[5], 0.05 * 0.5 * (1 + math.cos(math.pi * 0.05)))
    assert math.isclose(lrs[50], 0.05) and lrs[100] == 0.0
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_training_window_cuts_image_masks_and_boxes_alike(tiny_pipeline):
    full = AmodalDataset(tiny_pipeline["train"], TINY_MODEL)
    windowed = AmodalDataset(tiny_pipeline["train"], TINY_MODEL, crop_width=48)
    lefts = set()
    for index in range(len(full)):
        image, target = full[index]
        for key in range(4):
            crop, cropped = windowed[(index, key)]
            assert crop.shape[-1] == 48 and crop.shape[-2] == image.shape[-2]
            left = next(x for x in range(image.shape[-1] - 47)
                        if torch.equal(image[:, :, x:x + 48], crop)
                        and torch.equal(cropped["masks"], _window_masks(target, x, 48)))
            lefts.add(left)
            kept = _kept(target, left, 48)
            assert torch.equal(cropped["labels"], target["labels"][kept])
            assert torch.equal(cropped["visible_masks"], target["visible_masks"][kept][:, :, left:left + 48])
            for box, mask in zip(cropped["boxes"], cropped["masks"]):
                rows, cols = mask.any(1).nonzero()[:, 0], mask.any(0).nonzero()[:, 0]
                assert box.tolist() == [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]
            again, _ = windowed[(index, key)]
            assert torch.equal(again, crop)  # the draw is a function of (seed, key, index): resumable
    assert len(lefts) > 3  # the window moves
    with pytest.raises(ValueError, match="crop_width"):
        AmodalDataset(tiny_pipeline["train"], TINY_MODEL, crop_width=8)


def _kept(target: dict, left: int, width: int) -> torch.Tensor:
    visible = target["visible_masks"][:, :, left:left + width]
    amodal = target["masks"][:, :, left:left + width]
    return (visible.flatten(1).sum(1) >= 4) & amodal.flatten(1).bool().any(1)


def _window_masks(target: dict, left: int, width: int) -> torch.Tensor:
    return target["masks"][_kept(target, left, width)][:, :, left:left + width]


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_norms_and_biases_escape_weight_decay_when_asked(optimizer):
    """With a zero gradient only weight decay moves a parameter: the 1-D ones stay put when asked."""
    layers = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    params = list(layers.parameters())
    with torch.no_grad():
        for p in params:  # non-zero everywhere (BatchNorm's bias starts at 0: decay would not show)
            p.uniform_(0.5, 1.0)
    for decay_all in (True, False):
        config = TrainConfig(optimizer=optimizer, lr=0.1, weight_decay=0.5, decay_norm_and_bias=decay_all)
        before = [p.detach().clone() for p in params]
        opt = build_optimizer(params, config)
        for p in params:
            p.grad = torch.zeros_like(p)
        opt.step()
        for p, old in zip(params, before):
            moved = not torch.equal(p.detach(), old)
            assert moved == (decay_all or p.ndim > 1), (p.shape, decay_all)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_fused_optimizer_on_cpu_makes_the_per_tensor_update(optimizer):
    """The loop's optimizer takes torch's fused kernels on the CPU; they follow the same rule
    (groups, decay, momentum) as the per-tensor loop, to float rounding."""
    torch.manual_seed(0)
    layers = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Linear(3, 4))
    twin = copy.deepcopy(layers)
    initial = [p.detach().clone() for p in layers.parameters()]
    config = TrainConfig(optimizer=optimizer, lr=0.05, weight_decay=0.1, decay_norm_and_bias=False)
    fused = build_optimizer(list(layers.parameters()), config)
    plain = build_optimizer(list(twin.parameters()), config, fused=False)
    assert fused.defaults["fused"] and not plain.defaults["fused"]
    for step in range(3):
        for params in (list(layers.parameters()), list(twin.parameters())):
            generator = torch.Generator().manual_seed(step)
            for p in params:
                p.grad = torch.randn(p.shape, generator=generator)
        fused.step()
        plain.step()
    for a, b, start in zip(layers.parameters(), twin.parameters(), initial):
        assert not torch.equal(a.detach(), start)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_sampler_splits_global_batches_across_ranks_and_epochs():
    whole = IterationSampler(5, 2, 6, seed=3)
    batches = [b for b in whole]
    assert len(batches) == 6 and all(len(b) == 2 for b in batches)
    firsts = sorted(i for b in batches[:2] for i, _ in b) + [batches[2][0][0]]
    assert sorted(firsts) == [0, 1, 2, 3, 4]  # the first epoch visits every image once
    rank0 = list(IterationSampler(5, 1, 3, seed=3, rank=0, world=2))
    rank1 = list(IterationSampler(5, 1, 3, seed=3, rank=1, world=2))
    merged = [[a[0], b[0]] for a, b in zip(rank0, rank1)]
    assert merged == [[(i, it) for i, it in batch] for batch in IterationSampler(5, 2, 3, seed=3)]


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_resumed_run_ends_with_the_uninterrupted_weights(tiny_pipeline, tmp_path, optimizer):
    dataset = AmodalDataset(tiny_pipeline["train"], TINY_MODEL, augment=AugmentConfig(enabled=True), crop_width=96)
    config = replace(TINY_TRAIN, optimizer=optimizer, lr=0.01 if optimizer == "sgd" else 1e-3)
    straight = tmp_path / "straight.pt"
    train(TINY_MODEL, config, dataset, straight, tmp_path / "work_a", StopAt())

    resumed = tmp_path / "resumed.pt"
    with pytest.raises(Interrupt):
        train(TINY_MODEL, config, dataset, resumed, tmp_path / "work_b", StopAt(3))  # killed after checkpoint 2
    assert not resumed.exists()
    assert checkpoint.load(tmp_path / "work_b" / "last.pt")["meta"]["iteration"] == 2
    logger = StopAt()
    summary = train(TINY_MODEL, config, dataset, resumed, tmp_path / "work_b", logger)
    assert summary["start_iteration"] == 2 and [i for i, _ in logger.logged] == [3, 4]

    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key

    # Same seed, same params: same weights, run after run.
    again = tmp_path / "again.pt"
    train(TINY_MODEL, config, dataset, again, tmp_path / "work_c", StopAt())
    assert all(torch.equal(a[k], v) for k, v in _weights(again).items())


def test_a_checkpoint_of_other_params_is_set_aside_with_a_notice_not_resumed(tiny_pipeline, tmp_path, capsys):
    dataset = AmodalDataset(tiny_pipeline["train"], TINY_MODEL)
    work = tmp_path / "work"
    with pytest.raises(Interrupt):
        train(TINY_MODEL, TINY_TRAIN, dataset, tmp_path / "m.pt", work, StopAt(3))
    other_run = (work / "last.pt").read_bytes()
    capsys.readouterr()
    summary = train(TINY_MODEL, replace(TINY_TRAIN, lr=0.005), dataset, tmp_path / "m.pt", work, StopAt())
    assert summary["start_iteration"] == 0
    # The other run's resume point was moved aside, byte for byte, and the notice says where.
    (aside,) = work.glob("last.*.pt")
    assert aside.read_bytes() == other_run and not (work / "last.pt").exists()
    notice = [line for line in capsys.readouterr().out.splitlines() if "another run" in line]
    assert len(notice) == 1 and f"moved to {aside}" in notice[0] and "iteration 2" in notice[0], notice
    # Renamed back, it resumes that run.
    aside.rename(work / "last.pt")
    assert train(TINY_MODEL, TINY_TRAIN, dataset, tmp_path / "m.pt", work, StopAt())["start_iteration"] == 2


def test_non_finite_loss_stops_with_iteration_and_term_and_keeps_last_checkpoint(tiny_pipeline, tmp_path):
    dataset = AmodalDataset(tiny_pipeline["train"], TINY_MODEL)
    exploding = replace(TINY_TRAIN, iterations=30, lr=1e9, warmup_iters=0, grad_clip=0.0, checkpoint_every=1)
    out = tmp_path / "model.pt"
    with pytest.raises(TrainingDiverged, match=r"iteration (\d+): loss term '(\w+)' is (nan|inf|-inf)") as info:
        train(TINY_MODEL, exploding, dataset, out, tmp_path / "work", StopAt())
    diverged_at = int(str(info.value).split("iteration ")[1].split(":")[0])
    assert "last good checkpoint" in str(info.value)
    kept = checkpoint.load(tmp_path / "work" / "last.pt")
    assert kept["meta"]["iteration"] == diverged_at
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())
    assert not out.exists()


def test_trained_checkpoint_loads_and_predicts(tiny_pipeline, tmp_path):
    dataset = AmodalDataset(tiny_pipeline["val"], TINY_MODEL)
    out = tmp_path / "model.pt"
    train(TINY_MODEL, replace(TINY_TRAIN, iterations=2), dataset, out, tmp_path / "work", StopAt(),
          rgb_stats=((0.4, 0.4, 0.4), (0.2, 0.2, 0.2)))
    model = checkpoint.load_model(out)
    assert model.config == TINY_MODEL
    assert list(model.transform.image_mean) == [0.4, 0.4, 0.4]
    image, _ = dataset[0]
    with torch.no_grad():
        (prediction,) = model([image])
    assert {"boxes", "amodal_masks", "visible_masks"} <= set(prediction)


@pytest.mark.slow
def test_torchrun_two_processes_train_and_the_checkpoint_loads_in_one(tiny_pipeline, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_train import TINY_MODEL, TINY_TRAIN
from dataclasses import replace
from pathlib import Path
from daisnet.data.torch_dataset import AmodalDataset
from daisnet.train.loop import train
dataset = AmodalDataset({str(tiny_pipeline["train"])!r}, TINY_MODEL)
train(TINY_MODEL, replace(TINY_TRAIN, batch_size=1, iterations=2), dataset, Path({str(tmp_path / "ddp.pt")!r}),
      Path({str(tmp_path / "work")!r}))
""")
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29533", str(script)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    model = checkpoint.load_model(tmp_path / "ddp.pt")
    assert checkpoint.load(tmp_path / "ddp.pt")["meta"]["iterations"] == 2
    assert not any(k.startswith("module.") for k in checkpoint.load(tmp_path / "ddp.pt")["model"])
    assert model.config == TINY_MODEL


def test_a_completed_run_leaves_no_resume_point(tiny_pipeline, tmp_path):
    """A finished run is never "resumed": the same settings train anew (as after a code change)."""
    dataset = AmodalDataset(tiny_pipeline["train"], TINY_MODEL)
    config = replace(TINY_TRAIN, iterations=2, checkpoint_every=1)
    first = train(TINY_MODEL, config, dataset, tmp_path / "a.pt", tmp_path / "work", StopAt())
    assert not (tmp_path / "work" / "last.pt").exists()
    again = train(TINY_MODEL, config, dataset, tmp_path / "b.pt", tmp_path / "work", StopAt())
    assert first["start_iteration"] == again["start_iteration"] == 0
    # a finished run's last.pt left by an older version is not resumed either
    state = checkpoint.load(tmp_path / "a.pt")
    checkpoint.save(tmp_path / "work" / "last.pt", {**state, "meta": {"run_id": state["meta"]["run_id"], "iteration": 2}})
    third = train(TINY_MODEL, config, dataset, tmp_path / "c.pt", tmp_path / "work", StopAt())
    assert third["start_iteration"] == 0


def test_snapshots_are_models_along_the_run_that_change_nothing(tiny_pipeline, tmp_path):
    """`train.snapshot_every` keeps loadable models at those iterations (AP curves, issue 33), and the
    run's final weights are the ones it has without them."""
    dataset = AmodalDataset(tiny_pipeline["train"], TINY_MODEL)
    plain = tmp_path / "plain.pt"
    train(TINY_MODEL, TINY_TRAIN, dataset, plain, tmp_path / "work_a", StopAt())
    kept = tmp_path / "kept.pt"
    train(TINY_MODEL, replace(TINY_TRAIN, snapshot_every=1), dataset, kept, tmp_path / "work_b", StopAt(),
          snapshot_dir=tmp_path / "snapshots")
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["model-1.pt", "model-2.pt", "model-3.pt"]
    a, b = _weights(plain), _weights(kept)
    assert all(torch.equal(a[k], b[k]) for k in a)
    snapshot = checkpoint.load(tmp_path / "snapshots" / "model-2.pt")
    assert snapshot["meta"]["iterations"] == 2 and snapshot["meta"]["run_id"] == checkpoint.load(kept)["meta"]["run_id"]
    assert not all(torch.equal(snapshot["model"][k], b[k]) for k in b)  # two more iterations moved the weights
    model = checkpoint.load_model(tmp_path / "snapshots" / "model-2.pt")
    image, _ = dataset[0]
    with torch.no_grad():
        assert set(model([image])[0]) >= {"boxes", "amodal_masks"}
