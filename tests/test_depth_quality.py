"""The depth-quality axis: degraded ground truth, the normal-angle metric, scoring a depth store, the
study's depth sources and the report's depth-quality section (issue "Predicted depth that helps")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from daisnet.depth.degrade import degrade_depth
from daisnet.depth.metrics import DepthMetrics, normal_angle_error
from daisnet.depth.metrics import score_depth_store
from daisnet.depth.store import write_depth_store
from daisnet.errors import InputError
from daisnet.params import load_params
from daisnet.pipeline.depth_quality import Point, break_even, depth_quality_section, quality_points
from daisnet.pipeline.report import write_report
from daisnet.pipeline.study import RunSpec, parse_depth_source, plan

ROOT = Path(__file__).resolve().parents[1]


def _scene(h: int = 48, w: int = 64) -> np.ndarray:
    """Ground plane-ish depth growing with the row, a box 10 m in front of a 30 m wall."""
    depth = np.tile(np.linspace(40.0, 8.0, h, dtype=np.float32)[:, None], (1, w))
    depth[8:30, 20:44] = 10.0
    return depth


# -- degradations --------------------------------------------------------------------------------------

def test_noise_is_per_pixel_log_normal_with_the_level_as_sigma() -> None:
    depth = np.full((1, 200, 300), 20.0, np.float32)
    out = degrade_depth(depth, np.array([[200, 300]]), 0, "noise", 0.2)
    log_ratio = np.log(out[0] / depth[0])
    assert abs(log_ratio.mean()) < 0.005 and log_ratio.std() == pytest.approx(0.2, rel=0.02)


def test_scale_is_one_factor_per_image_and_keeps_the_shape() -> None:
    depth = np.stack([_scene(), _scene()])
    out = degrade_depth(depth, np.array([[48, 64], [48, 64]]), 5, "scale", 0.3)
    ratios = out / depth
    assert np.allclose(ratios[0], ratios[0, 0, 0], rtol=1e-6) and np.allclose(ratios[1], ratios[1, 0, 0], rtol=1e-6)
    assert ratios[0, 0, 0] != pytest.approx(ratios[1, 0, 0])  # images 5 and 6 draw their own factor


def test_resolution_softens_edges_and_keeps_flat_regions() -> None:
    depth = _scene()[None]
    out = degrade_depth(depth, np.array([[48, 64]]), 0, "resolution", 4)
    assert out[0, 14:24, 26:38] == pytest.approx(10.0)  # inside the box, away from its edge
    edge = out[0, 18, 16:24]  # across the box's left edge: values between wall and box, not a step
    assert ((edge > 10.5) & (edge < edge.max())).sum() >= 2
    assert abs(out.mean() - depth.mean()) < 0.1  # block means up-sampled: no bias


def test_degradation_is_deterministic_per_image_and_zero_outside_the_image() -> None:
    depth = np.stack([_scene(), _scene()])
    sizes = np.array([[48, 64], [40, 50]])
    first = degrade_depth(depth, sizes, 3, "noise", 0.1)
    assert first.tobytes() == degrade_depth(depth, sizes, 3, "noise", 0.1).tobytes()
    assert (first[1, 40:] == 0).all() and (first[1, :, 50:] == 0).all()
    # the same image index draws the same pattern whatever block it comes in
    alone = degrade_depth(depth[1:], sizes[1:], 4, "noise", 0.1)
    assert alone[0].tobytes() == first[1].tobytes()


@pytest.mark.parametrize(("overrides", "message"), [
    ({"depth.degrade.kind": "blur"}, "Input should be 'noise', 'resolution' or 'scale'"),
    ({"depth.degrade.level": 2.5}, "whole factor"),
    ({"depth.degrade.kind": "noise", "depth.degrade.level": 5.0}, "sigma in"),
])
def test_bad_degradation_params_are_one_clear_error(overrides: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_params("params.yaml", overrides)


def test_depth_stage_degraded_source_and_its_bad_level(tiny_pipeline: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "val.zarr"
    cmd = [sys.executable, "-m", "stages.depth", str(tiny_pipeline["val"]), str(out), "--source", "degraded",
           "--degrade-kind", "resolution", "--degrade-level"]
    bad = subprocess.run([*cmd, "3.5"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "whole factor" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not out.exists()
    good = subprocess.run([*cmd, "4"], capture_output=True, text=True, cwd=ROOT)
    assert good.returncode == 0, good.stderr
    group = zarr.open_group(str(out), mode="r")
    assert group.attrs["source"] == "degraded" and group.attrs["degrade"] == {"kind": "resolution", "level": 4.0}
    truth = zarr.open_group(str(tiny_pipeline["val"]), mode="r")["depth_gt"][:]
    assert not np.array_equal(group["depth"][:], truth)
    scores = score_depth_store(out, tiny_pipeline["val"])
    assert 0 < scores["abs_rel"] < 0.5 and scores["normal_angle"] > 0


# -- the normal-angle metric and a store's score ----------------------------------------------------

def test_normal_angle_is_zero_for_the_truth_and_grows_with_a_tilt() -> None:
    truth = _scene()
    assert normal_angle_error(truth, truth) == 0.0
    cols = np.arange(64, dtype=np.float32)[None, :]
    tilted = truth + 0.05 * cols
    small, large = normal_angle_error(tilted, truth), normal_angle_error(truth + 0.2 * cols, truth)
    assert 0 < small < large < 90


def test_depth_metrics_report_the_normal_angle_only_when_asked() -> None:
    truth = _scene()[None]
    plain, with_normals = DepthMetrics(), DepthMetrics(normal_kernel=5)
    for metrics in (plain, with_normals):
        metrics.update(truth * 1.1, truth)
    assert "normal_angle" not in plain.summary() and with_normals.summary()["normal_angle"] > 0
    assert with_normals.summary()["abs_rel"] == pytest.approx(0.1, rel=1e-5)


def test_ground_truth_store_scores_perfectly(tiny_pipeline: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "gt.zarr"
    write_depth_store(tiny_pipeline["val"], out, None, source="ground_truth")
    scores = score_depth_store(out, tiny_pipeline["val"])
    assert scores["abs_rel"] == 0.0 and scores["delta1"] == 1.0 and scores["normal_angle"] == 0.0


# -- the study's depth sources -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("ground_truth", "ground_truth"), ("bts:300", "bts:300"), ("resolution:4.0", "resolution:4"),
    ("noise:0.10", "noise:0.1"), ("scale:0.2", "scale:0.2")])
def test_depth_sources_are_named_canonically(text: str, expected: str) -> None:
    assert parse_depth_source(text) == expected


def test_bts_source_takes_the_pipelines_length() -> None:
    params = {"depth": {"train": {"iterations": 321}}}
    assert parse_depth_source("bts", params) == "bts:321"


@pytest.mark.parametrize(("text", "message"), [
    ("blur:2", "unknown depth source"), ("resolution:3.5", "whole factor"), ("noise:9", "sigma in"),
    ("bts:0", "whole number of iterations"), ("noise:", "needs a number")])
def test_bad_depth_sources_are_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_depth_source(text)


def test_degraded_and_bts_runs_override_the_depth_params() -> None:
    degraded, bts = plan(["R+N"], [1], ["resolution:8", "bts:50"], "ablation")
    assert degraded.overrides()["depth.source"] == "degraded"
    assert degraded.overrides()["depth.degrade.level"] == "8" and degraded.name.endswith("R_N-resolution8-seed1")
    assert bts.overrides()["depth.train.iterations"] == "50" and len(bts.depth_model) == 12
    other = plan(["R+N"], [1], ["bts:60"], "ablation")[0]
    assert other.depth_model != bts.depth_model  # another length is another model: never averaged together


def test_ablation_cli_refuses_a_bad_source_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "daisnet.pipeline.cli", "ablation", "--rows", "R+N", "--depth",
                             "scale:7", "--runs-file", str(tmp_path / "runs.jsonl"), "--dry-run"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "sigma in" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs.jsonl").exists()


# -- the report's section --------------------------------------------------------------------------

def _record(row: str, source: str, seed: int, ap: float, quality: dict | None = None) -> dict:
    spec = RunSpec(row, seed, source)
    record = {"row": row, "weights": "random", "depth_source": source, "profile": "ablation", "seed": seed,
              "overrides": spec.overrides(), "iterations": 1000, "train_seconds": 300.0, "eval_seconds": 30.0,
              "commit": "abc", "data": {}, "metrics": {"amodal": {"AP": ap}, "visible": {"AP": ap}}}
    if quality is not None:
        record["depth_quality"] = quality
    return record


def _quality(abs_rel: float, angle: float) -> dict:
    return {"abs_rel": abs_rel, "delta1": 1 - abs_rel, "rmse": 10 * abs_rel, "normal_angle": angle}


def _study() -> list[dict]:
    records = [_record("R", "ground_truth", s, ap) for s, ap in ((0, 20.0), (1, 22.0))]
    records += [_record("R+N", "ground_truth", s, ap) for s, ap in ((0, 30.0), (1, 32.0))]
    for source, quality, aps in (("resolution:2", _quality(0.05, 10.0), (25.0, 27.0)),
                                 ("resolution:8", _quality(0.15, 30.0), (15.0, 17.0))):
        records += [_record("R+N", source, s, ap, quality) for s, ap in zip((0, 1), aps)]
    return records


def test_break_even_is_interpolated_between_the_bracketing_sources() -> None:
    points = [p for p in quality_points(_study()) if p.row == "R+N"]
    assert [p.source for p in points] == ["ground_truth", "resolution:2", "resolution:8"]
    assert [p.gain for p in points] == [10.0, 5.0, -5.0]
    # +5 at 0.05 and -5 at 0.15: zero half-way, at 0.10 (angle half-way too, 20 degrees)
    assert "abs rel ≈ 0.100, normal angle ≈ 20.0°" in break_even(points)


def test_break_even_when_depth_never_or_always_helps() -> None:
    good = [Point("R+N", "ground_truth", _quality(0, 0), 3.0, 0.0, 2), Point("R+N", "noise:0.1", _quality(0.1, 9), 1.0, 0, 2)]
    assert break_even(good).startswith("helps at every depth measured, up to abs rel 0.100")
    bad = [Point("R+N", "ground_truth", _quality(0, 0), -1.0, 0.0, 2), Point("R+N", "noise:0.1", _quality(0.1, 9), -3, 0, 2)]
    assert break_even(bad).startswith("no gain even at the best depth")


def test_report_has_the_section_and_chart_and_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    records = _study()
    section = "\n".join(depth_quality_section(records))
    assert "| resolution:8 | 0.150 | 0.850 | 30.0 | -5.0 ± 1.4 (2) |" in section
    assert "- R+N, resolution: break-even at abs rel ≈ 0.100" in section
    assert depth_quality_section([r for r in records if r["depth_source"] == "ground_truth"]) == []
    out, chart = tmp_path / "ablation.md", tmp_path / "ablation.png"
    write_report(records, out, chart, "runs.jsonl")
    quality_chart = tmp_path / "ablation_depth_quality.png"
    first = (out.read_bytes(), quality_chart.read_bytes())
    assert "ablation_depth_quality.png" in out.read_text()
    write_report(json.loads(json.dumps(records)), out, chart, "runs.jsonl")
    assert (out.read_bytes(), quality_chart.read_bytes()) == first


# -- guided up-sampling ------------------------------------------------------------------------------

def test_guided_upsampling_keeps_flat_depth_and_sharpens_an_edge_the_image_shows() -> None:
    import torch
    import torch.nn.functional as F

    from daisnet.depth.upsample import guided_upsample

    flat = torch.full((1, 1, 12, 16), 20.0)
    image = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(guided_upsample(flat, image), torch.full((1, 1, 48, 64), 20.0), rtol=1e-5)
    # a near object (10 m) in front of a far wall (40 m), dark against bright, its edge off the coarse grid
    truth = torch.full((1, 1, 48, 64), 40.0)
    truth[..., :, :30] = 10.0
    image = torch.where(truth < 20, 0.2, 0.8).expand(1, 3, 48, 64)
    low = F.interpolate(truth, size=(12, 16), mode="area")
    bilinear = F.interpolate(low, size=(48, 64), mode="bilinear", align_corners=False)
    guided = guided_upsample(low, image)
    def error(d: torch.Tensor) -> float:
        return float(((d - truth).abs() / truth).mean())
    assert error(guided) < 0.5 * error(bilinear)


def test_bts_predicts_with_the_upsampling_its_config_names() -> None:
    import torch

    from daisnet.depth.bts import BtsConfig, BtsModel
    from daisnet.depth.infer import predict_depth

    with pytest.raises(ValueError, match="upsample must be one of"):
        BtsConfig(num_features=32, upsample="nearest")
    torch.manual_seed(0)
    model = BtsModel(BtsConfig(num_features=32, input_scale=0.5, focal_reference=None, plane_min_denominator=0.1))
    images = np.random.default_rng(0).integers(0, 255, (1, 64, 96, 3), dtype=np.uint8)
    bilinear = predict_depth(model, images, 100.0)
    guided_model = BtsModel(BtsConfig(num_features=32, input_scale=0.5, focal_reference=None,
                                      plane_min_denominator=0.1, upsample="guided"))
    guided_model.load_state_dict(model.state_dict())
    guided = predict_depth(guided_model, images, 100.0)
    assert guided.shape == bilinear.shape == (1, 64, 96) and (guided > 0).all()
    assert not np.allclose(guided, bilinear)


def test_runs_of_two_bts_models_under_one_source_name_are_never_averaged() -> None:
    from daisnet.pipeline.run_stats import group, separate_depth_models

    runs = [_record("R+N", "bts:650", s, ap) for s, ap in ((0, 20.0), (1, 21.0), (2, 30.0))]
    for run, fingerprint in zip(runs, ("aaaaaa111111", "aaaaaa111111", "bbbbbb222222")):
        run["depth_model"] = {"fingerprint": fingerprint}
    stats = group(separate_depth_models(runs))
    assert {key[1]: row.n for key, row in stats.items()} == {"bts:650@aaaaaa": 2, "bts:650@bbbbbb": 1}
    assert separate_depth_models(runs[:2]) == runs[:2]  # one model: the plain name
