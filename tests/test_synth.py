"""The synthetic labels are exact, occlusion really happens, and the output is deterministic."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from scipy import ndimage
from typer.testing import CliRunner

from daisnet.pipeline.cli import app
from daisnet.data.categories import NAME_TO_ID
from daisnet.data.synth.dataset import (
    SynthConfig,
    generate,
    render_image,
)
from daisnet.data.synth.render import render
from daisnet.data.synth.scene import SceneConfig, footprints_collide, sample_scene
from daisnet.errors import InputError

SMALL = SynthConfig(train_images=6, val_images=3, height=96, width=320, workers=1, min_visible_area=1)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "synth"
    generate(SMALL, out)
    return out


@pytest.mark.parametrize("index", range(6))
def test_visible_masks_partition_the_object_pixels(index):
    """With holes kept, the labels are the scene z-buffer: visible masks tile the object pixels."""
    rng = np.random.default_rng([7, index])
    scene = sample_scene(rng, SceneConfig())
    out = render(scene, 96, 320, 80.0, rng, fill_label_holes=False)
    union = np.zeros((96, 320), int)
    for obj_index, (window, local) in enumerate(out.amodal):
        visible = out.owner == obj_index
        amodal = np.zeros_like(visible)
        amodal[window] = local
        assert not (visible & ~amodal).any(), "a visible mask leaves its amodal mask"
        union += visible
    assert union.max() <= 1, "visible masks overlap"
    assert np.array_equal(union.astype(bool), out.owner >= 0)
    # Object pixels carry the object's own depth: nearer than the far clip, finite.
    assert (out.depth[out.owner >= 0] < 80.0).all()


def _full(window, local, shape) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[window] = local
    return mask


@pytest.mark.parametrize("index", range(6))
def test_outline_labels_fill_holes_and_leave_the_pixels_alone(index):
    """Labels as KINS outlines: no holes, each contains the holed label, same RGB and depth."""
    scene = sample_scene(np.random.default_rng([7, index]), SceneConfig())
    holed = render(scene, 96, 320, 80.0, np.random.default_rng(index), fill_label_holes=False)
    filled = render(scene, 96, 320, 80.0, np.random.default_rng(index), fill_label_holes=True)
    assert np.array_equal(holed.rgb, filled.rgb) and np.array_equal(holed.depth, filled.depth)
    shape = (96, 320)
    surfaces = [_full(*a, shape) for a in holed.amodal]
    outlines = [_full(*b, shape) for b in filled.amodal]
    for obj_index, (surface, outline) in enumerate(zip(surfaces, outlines)):
        assert np.array_equal(outline, ndimage.binary_fill_holes(surface)), "outline = surface, holes filled"
        visible = filled.owner == obj_index
        assert not (visible & ~outline).any(), "a visible mask leaves its amodal mask"
        # A pixel where the object's surface is seen stays its own, unless another object's
        # filled hole lies there (a wheel in front of it).
        others_holes = np.zeros(shape, bool)
        for other, (s, o) in enumerate(zip(surfaces, outlines)):
            if other != obj_index:
                others_holes |= o & ~s
        assert not ((holed.owner == obj_index) & ~visible & ~others_holes).any()


def test_cyclist_labels_are_outlines_with_wheels_filled():
    """A cyclist's rendered surface has holes (wheels, frame); its labels have none."""
    shape = (96, 320)
    found = filled_and_visible = 0
    for index in range(4):
        scene = sample_scene(np.random.default_rng([3, index]), SceneConfig(cyclist_fraction=1.0))
        holed = render(scene, *shape, 80.0, np.random.default_rng(0), focal=400.0, fill_label_holes=False)
        filled = render(scene, *shape, 80.0, np.random.default_rng(0), focal=400.0)
        for obj_index, obj in enumerate(scene.objects):
            surface, outline = _full(*holed.amodal[obj_index], shape), _full(*filled.amodal[obj_index], shape)
            if obj.category_id != NAME_TO_ID["cyclist"] or np.array_equal(surface, ndimage.binary_fill_holes(surface)):
                continue
            found += 1
            assert np.array_equal(outline, ndimage.binary_fill_holes(outline))
            assert outline.sum() > surface.sum()
            filled_and_visible += int(((filled.owner == obj_index) & ~surface).sum())
    assert found >= 3
    assert filled_and_visible > 0, "the filled wheels are labelled visible where nothing is in front"


def test_instances_exclude_hidden_objects_and_masks_are_consistent():
    image = render_image(replace(SMALL, min_visible_area=16), "train", 3)
    assert image.instances
    for inst in image.instances:
        assert inst["visible"].sum() >= 16
        assert not (inst["visible"] & ~inst["amodal"]).any()


def test_polygons_decode_to_the_rendered_masks(generated):
    records = json.loads((generated / "annotations" / "train.json").read_text())
    by_image: dict[int, list] = {}
    for ann in records["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    checked = 0
    for entry in records["images"]:
        image = render_image(SMALL, "train", entry["id"] - 1)
        anns = by_image.get(entry["id"], [])
        assert len(anns) == len(image.instances)
        for ann, inst in zip(anns, image.instances):
            for key, mask in (("a_segm", inst["amodal"]), ("i_segm", inst["visible"])):
                rle = mask_utils.merge(mask_utils.frPyObjects(ann[key], entry["height"], entry["width"]))
                decoded = mask_utils.decode(rle).astype(bool)
                iou = (decoded & mask).sum() / (decoded | mask).sum()
                assert iou >= 0.98
                assert np.array_equal(decoded, mask)  # in fact exact (daisnet/data/polygons.py)
            assert ann["a_area"] == inst["amodal"].sum() and ann["i_area"] == inst["visible"].sum()
            x, y, w, h = ann["a_bbox"]
            rows, cols = np.nonzero(inst["amodal"])
            assert (x, y, x + w, y + h) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
            checked += 1
    assert checked > 10


def test_occlusion_order_agrees_with_depth(generated):
    records = json.loads((generated / "annotations" / "train.json").read_text())
    pairs = 0
    for entry in records["images"]:
        image = render_image(SMALL, "train", entry["id"] - 1)
        anns = [a for a in records["annotations"] if a["image_id"] == entry["id"]]
        for i, a in enumerate(anns):
            for j, b in enumerate(anns):
                if i >= j or a["oco_id"] == 0 or a["oco_id"] != b["oco_id"]:
                    continue
                overlap = image.instances[i]["amodal"] & image.instances[j]["amodal"]
                if not overlap.any():
                    continue
                front, back = (i, j) if a["ico_id"] < b["ico_id"] else (j, i)
                seen_front = (image.instances[front]["visible"] & overlap).sum()
                seen_back = (image.instances[back]["visible"] & overlap).sum()
                assert seen_front >= seen_back
                pairs += 1
        for a in anns:
            if a["oco_id"] == 0:
                assert a["ico_id"] == 0
    assert pairs > 0


def test_kins_2020_keys_and_layout(generated):
    data = json.loads((generated / "annotations" / "val.json").read_text())
    assert {c["id"] for c in data["categories"]} == set(range(1, 9))
    ann = data["annotations"][0]
    for key in ("a_segm", "a_bbox", "a_area", "i_segm", "i_bbox", "i_area", "oco_id", "ico_id", "iscrowd",
                "category_id", "image_id", "id"):
        assert key in ann
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])
    entry = data["images"][0]
    rgb = np.asarray(Image.open(generated / "val" / "image_2" / entry["file_name"]))
    depth = np.asarray(Image.open(generated / "val" / "depth" / entry["file_name"]))
    assert rgb.shape == (96, 320, 3) and depth.dtype == np.uint16
    assert 0 < depth.min() and depth.max() <= 80 * 256


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path, generated):
    other = tmp_path / "synth"
    generate(replace(SMALL, workers=2), other)

    def digest(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    assert digest(other) == digest(generated)
    third = tmp_path / "synth3"
    generate(replace(SMALL, seed=1, val_images=1, train_images=1), third)
    assert digest(third)["train/image_2/000000.png"] != digest(generated)["train/image_2/000000.png"]


@pytest.mark.parametrize("focal", [None, 721.5377])  # the library's default, params.yaml's default profile
def test_default_scenes_are_occluded_enough(focal):
    """Issue: >= 30% of instances with occlusion > 0.2 and >= 10% above 0.5 (default params)."""
    config = replace(SynthConfig(), train_images=30, focal=focal)
    ratios = []
    for index in range(30):
        for inst in render_image(config, "train", index).instances:
            ratios.append(1 - inst["visible"].sum() / inst["amodal"].sum())
    ratios = np.array(ratios)
    assert len(ratios) > 100
    assert (ratios > 0.2).mean() >= 0.30
    assert (ratios > 0.5).mean() >= 0.10


def test_focal_length_sets_the_object_scale():
    """synth.focal: a KINS camera's focal at a smaller size shows a window of the scene at KINS scale."""
    rng = np.random.default_rng(5)
    scene = sample_scene(rng, SceneConfig())
    wide = render(scene, 96, 320, 80.0, np.random.default_rng(1))
    assert wide.focal == pytest.approx(721.5377 * 320 / 1242)
    narrow = render(scene, 96, 320, 80.0, np.random.default_rng(1), focal=2 * wide.focal)
    assert narrow.focal == pytest.approx(2 * wide.focal)
    # The same camera ray through the image centre: the depth there is the same, and a wider
    # focal magnifies the picture about the centre, so the centre pixel rows show the same surface.
    assert narrow.depth[48, 160] == pytest.approx(wide.depth[48, 160], rel=1e-4)
    # An object wholly in both frames is twice as tall with twice the focal (up to pixel rounding).
    small, large = amodal_heights(wide), amodal_heights(narrow)
    both = [i for i in large if i in small and small[i] >= 6]
    assert both, "no object wholly inside both frames"
    for i in both:
        assert large[i] == pytest.approx(2 * small[i], abs=3)
    image = render_image(replace(SMALL, focal=500.0), "train", 0)
    assert image.focal == 500.0


def amodal_heights(out) -> dict[int, int]:
    """Amodal height in px of each object whose amodal mask does not touch the image border."""
    heights = {}
    for index, (window, local) in enumerate(out.amodal):
        full = np.zeros(out.depth.shape, bool)
        full[window] = local
        rows = np.flatnonzero(full.any(axis=1))
        if rows.size and not (full[0].any() or full[-1].any() or full[:, 0].any() or full[:, -1].any()):
            heights[index] = int(rows[-1] - rows[0] + 1)
    return heights


def test_vehicle_to_pedestrian_ratio_in_street_scenes():
    counts = {"vehicle": 0, "person": 0}
    rng = np.random.default_rng(3)
    for _ in range(40):
        scene = sample_scene(rng, SceneConfig(street_fraction=1.0))
        for obj in scene.objects:
            counts["person" if obj.category_id in (1, 2) else "vehicle"] += 1
    assert 2.0 <= counts["person"] / counts["vehicle"] <= 4.0


def test_placed_objects_never_collide():
    rng = np.random.default_rng(5)
    for _ in range(20):
        objects = sample_scene(rng, SceneConfig()).objects
        for i, a in enumerate(objects):
            for b in objects[i + 1:]:
                assert not footprints_collide(a.footprint, b.footprint)


def test_bad_params_are_refused_clearly():
    with pytest.raises(InputError, match="below the minimum"):
        replace(SMALL, height=10).validate()
    with pytest.raises(InputError, match="image counts"):
        replace(SMALL, train_images=-1).validate()
    with pytest.raises(InputError, match="fill_label_holes 'yes' must be true or false"):
        replace(SMALL, fill_label_holes="yes").validate()


def test_cli_help_and_refusals(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["synth", "--help"])
    assert result.exit_code == 0
    for option in ("--train-images", "--val-images", "--height", "--width", "--max-depth", "--seed", "--workers",
                   "--min-visible-area", "--street-fraction", "--line-of-sight", "--report"):
        assert option in result.output
    out = tmp_path / "never"
    for bad, key in ((["--train-images", "-3"], "synth.train_images"), (["--height", "20"], "synth.height"),
                     (["--width", "50"], "synth.width")):
        result = runner.invoke(app, ["synth", str(out), *bad])
        assert result.exit_code == 2
        assert f"params.yaml with the command line's {key}: {key}: Input should be greater" in result.output
        assert not out.exists()
    assert runner.invoke(app, ["--help"]).exit_code == 0


def test_cli_writes_a_tiny_dataset(tmp_path):
    out = tmp_path / "synth"
    result = CliRunner().invoke(app, ["synth", str(out), "--train-images", "2", "--val-images", "1",
                                      "--height", "64", "--width", "128", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert (out / "annotations" / "train.json").exists()
    assert not list(tmp_path.glob(".synth*"))  # no temporary left behind


def test_street_vehicles_span_eq_1s_lateral_range_on_the_road():
    """Eq. 1: vehicles at x = r(-10, 10) in the street scenario too, and always on the road."""
    rng = np.random.default_rng(8)
    config = SceneConfig(street_fraction=1.0)
    lateral = []
    for _ in range(40):
        scene = sample_scene(rng, config)
        assert scene.lane_half_width == config.street_half_width
        lateral += [obj.footprint[0] for obj in scene.objects if obj.category_id not in (1, 2)]
    lateral = np.abs(lateral)
    assert lateral.max() <= config.street_half_width - 1.2
    assert (lateral > 6.0).mean() > 0.15  # the old street held vehicles within 4.8 m
