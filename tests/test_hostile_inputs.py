"""The hostile-input corpus (issue 20): bad inputs and faults a hostile new user tries, one line each.

Every case ends in one line `error: ...` on stderr matching its regex, its exit status (2), no
traceback, nothing left behind, every input byte-identical (tests/corpus.py says how it is checked).
A new case is one line in CASES (or in KINS, for a broken annotation set). The command lines are
written once, by the builders below (`rasterize(...)`, `predict(...)`): when a command's arguments
change, only its builder changes.

Run: `.venv/bin/python -m pytest tests/test_hostile_inputs.py` (and `-m slow` for the slow cases).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from corpus import ROOT, Case, Fixtures, check, variant
from kins_data import annotations_2019, annotations_2020, write_dataset
from test_train import TINY_MODEL, TINY_TRAIN

DEPTH_MODEL = replace(TINY_MODEL, inputs=("rgb", "depth", "normal"))
SLOW = (pytest.mark.slow,)


# --- The command lines, once per command -----------------------------------------------------------

def rasterize(ann: str = "{ann}", images: str = "{images}", out: str = "{tmp}/val.zarr", extra: str = "") -> str:
    return f"rasterize {ann} {out} --images {images} --workers 0 {extra}"


def depth(prepared: str = "{prepared}", out: str = "{tmp}/depth.zarr", extra: str = "--source ground_truth") -> str:
    return f"depth {prepared} {out} {extra}"


def features(stores: str = "{depth}", out_dir: str = "{tmp}/features", extra: str = "--workers 0") -> str:
    return f"features {stores} --out-dir {out_dir} {extra}"


def train(prepared: str = "{prepared_train}", out: str = "{tmp}/model.pt", work: str = "{tmp}/work",
          params: str = "{tiny_params}") -> str:
    return f"train {prepared} {out} --work-dir {work} --params {params}"


def shape_ae(prepared: str = "{prepared_train}", depth_store: str = "{depth_train}", out: str = "{tmp}/shape_ae.pt") -> str:
    return f"shape-ae {prepared} {depth_store} {out} --iterations 1"


def codebook(shape_ae_path: str = "{shape_ae}", out: str = "{tmp}/codebook.npz") -> str:
    return f"codebook {shape_ae_path} {{prepared_train}} {{depth_train}} {out} --clusters 2"


def evaluate(model: str = "{model}", prepared: str = "{prepared}", out: str = "{tmp}/eval",
             extra: str = "--features {features} --depth {depth} --device cpu") -> str:
    return f"evaluate {model} {prepared} --out {out} {extra}"


def predict(images: str = "{image}", model: str = "{model}", out: str = "{tmp}/pred",
            extra: str = "--depth-dir {depth_pngs}") -> str:
    return f"predict {images} --model {model} --out {out} {extra}"


def inspect(store: str = "{prepared}", extra: str = "") -> str:
    return f"inspect {store} {extra}"


def score(results: str, prepared: str = "{prepared}", extra: str = "") -> str:
    return f"score {prepared} {results} {extra}"


def bounds(prepared: str) -> str:
    return f"bounds {prepared}"


# --- Inputs made for one case (variants) -------------------------------------------------------------

def kins(edit: Callable[[dict], object] | None = None, release: str = "2020",
         images: Callable[[Path], object] | None = None, depth_pngs: bool = False) -> str:
    """A KINS set of tests/kins_data.py (images of the intact set), its JSON edited (an edit returning
    bytes replaces the file): the placeholder of its folder (annotations.json, image_2/, depth/)."""
    def build(folder: Path, _: dict) -> Path:
        payload = annotations_2019() if release == "2019" else annotations_2020()
        ann, image_dir, _ = write_dataset(folder, payload, depth=depth_pngs)
        raw = edit(payload) if edit else None
        ann.write_bytes(raw) if isinstance(raw, bytes) else ann.write_text(json.dumps(payload))
        image_dir.mkdir(exist_ok=True)
        if images:
            images(folder)
        return folder
    return variant(build)


def rasterize_kins(edit: Callable[[dict], object] | None = None, release: str = "2020",
                   images: Callable[[Path], object] | None = None, extra: str = "", depth_pngs: bool = False) -> str:
    folder = kins(edit, release, images, depth_pngs)
    return rasterize(f"{folder}/annotations.json", f"{folder}/image_2", "{tmp}/prepared/train.zarr",
                     (f"--depth {folder}/depth " if depth_pngs else "") + extra)


def results(edit: Callable[[list], object]) -> str:
    """A COCO results file for the tiny val split (one valid record), edited; bytes replace it."""
    def build(folder: Path, fx: dict) -> Path:
        from pycocotools import mask as mask_utils

        from daisnet.data.prepared import PreparedStore

        store = PreparedStore(fx["prepared"])
        height, width = (int(v) for v in store.image_size[0])
        rle = mask_utils.encode(np.asfortranarray(np.ones((height, width), np.uint8)))
        records = [{"image_id": int(store.image_id[0]), "category_id": 4, "score": 0.9,
                    "segmentation": {"size": [height, width], "counts": rle["counts"].decode()}}]
        raw = edit(records)
        path = folder / "results.json"
        path.write_bytes(raw) if isinstance(raw, bytes) else path.write_text(json.dumps(records))
        return path
    return variant(build)


def other_params(edit: Callable[[dict], None]) -> str:
    """params.yaml edited, saved as other.yaml: errors must name it, not params.yaml."""
    def build(folder: Path, _: dict) -> Path:
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        edit(params)
        path = folder / "other.yaml"
        path.write_text(yaml.safe_dump(params))
        return path
    return variant(build)


def file_of(content: bytes, name: str = "file") -> str:
    def build(folder: Path, _: dict) -> Path:
        (folder / name).write_bytes(content)
        return folder / name
    return variant(build)


def image_of(array: Callable[[], np.ndarray]) -> str:
    """A folder with one image, x.png, made from `array()`: the placeholder of the file."""
    def build(folder: Path, _: dict) -> Path:
        Image.fromarray(array()).save(folder / "x.png")
        return folder / "x.png"
    return variant(build)


def twin_image() -> str:
    """The first val image again, in another folder: same file name."""
    def build(folder: Path, fx: dict) -> Path:
        return Path(shutil.copy(fx["image"], folder / fx["image"].name))
    return variant(build)


def depth_pngs_with(array: Callable[[tuple[int, int]], np.ndarray]) -> str:
    """A depth folder for the first val image, its PNG made from `array(shape)`."""
    def build(folder: Path, fx: dict) -> Path:
        with Image.open(fx["image"]) as image:
            shape = (image.height, image.width)
        Image.fromarray(array(shape)).save(folder / fx["image"].name)
        return folder
    return variant(build)


def work_dir_with_last(checkpoint: str) -> str:
    def build(folder: Path, fx: dict) -> Path:
        shutil.copy(fx[checkpoint], folder / "last.pt")
        return folder
    return variant(build)


def damaged_store(name: str, array: str, damage: str = "delete") -> str:
    """A copy of the fixture store `name` with the first chunk file of `array` deleted or overwritten."""
    def build(folder: Path, fx: dict) -> Path:
        copy = Path(shutil.copytree(fx[name], folder / fx[name].name))
        chunk = min(p for p in (copy / array).iterdir() if p.name.startswith("c"))
        chunk.unlink() if damage == "delete" else chunk.write_bytes(b"\x00garbage" * 64)
        return copy
    return variant(build)


def features_computed_with(**changes: object) -> str:
    """A val features store computed with other feature params than the corpus model's training features."""
    def build(folder: Path, fx: dict) -> Path:
        from daisnet.features.store import FeatureParams, compute_features

        out = folder / "features" / "val.zarr"
        compute_features({"val": fx["depth"]}, {"val": out}, FeatureParams(**changes), stats_from=fx["depth_train"],
                         workers=0)
        return out
    return variant(build)


def _set(index: int, key: str, value: object) -> Callable[[dict], None]:
    return lambda payload: payload["annotations"][index].__setitem__(key, value)


def _drop(index: int, key: str) -> Callable[[dict], None]:
    return lambda payload: payload["annotations"][index].pop(key)


def _image(index: int, key: str, value: object) -> Callable[[dict], None]:
    return lambda payload: payload["images"][index].__setitem__(key, value)


def _write(name: str, content: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / "image_2" / name).write_bytes(content)


def _image_16_bit(folder: Path) -> None:
    Image.fromarray(np.full((20, 30), 40000, np.uint16)).save(folder / "image_2" / "a.png")


def _depth_8_bit(folder: Path) -> None:
    Image.fromarray(np.full((20, 30), 200, np.uint8)).save(folder / "depth" / "a.png")


def _no_images(payload: dict) -> None:
    payload["images"], payload["annotations"] = [], []


def _wider_image(payload: dict) -> None:
    payload["images"][0]["width"] = 31  # the PNG is 30 wide
    payload["annotations"][0]["a_segm"] = [[2, 3, 20, 3, 20, 15, 2, 15]]


# --- Broken annotation sets: (id, edit, release, expected message after `annotations.json: `) -------------

KINS = [
    ("missing top-level key", lambda p: p.pop("categories"), "2020", r"missing top-level key 'categories'"),
    ("missing annotation key", _drop(2, "i_segm"), "2020", r"annotation 5: missing key 'i_segm'"),
    ("missing 2019 key", _drop(1, "inmodal_seg"), "2019", r"annotation 2: missing key 'inmodal_seg'"),
    ("missing image key", lambda p: p["images"][1].pop("height"), "2020", r"image 7: missing key 'height'"),
    ("unknown category", _set(1, "category_id", 42), "2020", r"annotation 2: unknown category_id 42"),
    ("2019 has no rider", _set(0, "category_id", 3), "2019", r"annotation 1: unknown category_id 3"),
    ("two points", _set(0, "a_segm", [[1, 1, 5, 5]]), "2020", r"annotation 1: .*has 2 points"),
    ("odd coordinates", _set(4, "i_segm", [[3, 2, 10, 5.5, 3]]), "2020", r"annotation 9: .*odd number of coordinates"),
    ("odd in 2nd polygon", _set(0, "i_segm", [[2, 3, 9, 3, 9, 15], [1, 2, 3, 4, 5, 6, 7]]), "2020",
     r"annotation 1: .*polygon 2 has an odd number"),
    ("far outside", _set(1, "a_segm", [[9, 1, 14, 1, 140, 19]]), "2020", r"annotation 2: .*far outside"),
    ("negative far outside", _set(3, "segmentation", [[3, 2, 16, -40, 3, 16]]), "2019", r"annotation 9: .*far outside"),
    ("not a number", _set(0, "a_segm", [[2, 3, "x", 3, 20, 15]]), "2020", r"annotation 1: .*not a finite number"),
    ("absolute file_name", _image(0, "file_name", "/etc/passwd"), "2020", r"image 11: .*is absolute"),
    ("dotdot file_name", _image(2, "file_name", "../c.png"), "2020", r"image 3: .*contains '\.\.'"),
    ("windows absolute", _image(2, "file_name", "C:\\kins\\c.png"), "2020", r"image 3: .*is absolute"),
    ("duplicate annotation id", _set(3, "id", 1), "2020", r"annotation 1: .*duplicate annotation id"),
    ("duplicate image id", _image(2, "id", 7), "2020", r"image 7: .*duplicate image id"),
    ("missing image id", _set(4, "image_id", 99), "2020", r"annotation 9: .*image_id 99 is not in 'images'"),
    ("RLE size differs", lambda p: p["annotations"][0]["inmodal_seg"].update(size=[30, 20]), "2019",
     r"annotation 1: .*RLE size \[30, 20\] differs from the image size \[20, 30\]"),
    ("RLE counts too few", lambda p: p["annotations"][2]["inmodal_seg"]["counts"].pop(), "2019",
     r"annotation 5: .*uncompressed RLE counts"),
    ("RLE garbage string", lambda p: p["annotations"][1]["inmodal_seg"].update(counts="~~~"), "2019",
     r"annotation 2: .*not a valid compressed COCO RLE"),
    ("bad box", _set(0, "a_bbox", [1, 2, 3]), "2020", r"annotation 1: .*a_bbox must be 4 finite numbers"),
    # Anomalies of the visible part are skipped and counted (tests/test_rasterize_anomalies.py); these are not:
    ("amodal box negative", _set(0, "a_bbox", [2, 3, -18, 12]), "2020", r"annotation 1: .*a_bbox has a negative width"),
    ("hidden, box not numbers", _set(3, "i_bbox", [-1, -1, "w", -1]), "2020", r"annotation 6: .*i_bbox must be 4 finite"),
    ("hidden, unknown image", _set(3, "image_id", 99), "2020", r"annotation 6: .*image_id 99 is not in 'images'"),
    ("hidden, segm not a list", _set(3, "i_segm", "none"), "2020", r"annotation 6: .*i_segm: expected polygons"),
    ("empty beside a polygon", _set(0, "i_segm", [[], [2, 3, 9, 3, 9, 15]]), "2020", r"annotation 1: .*polygon 1 has 0 points"),
    ("area not a number", _set(0, "a_area", "216"), "2020", r"annotation 1: .*a_area must be a finite number"),
    ("2019 area null", _set(1, "area", None), "2019", r"annotation 2: .*area must be a finite number, found None"),
    ("no release keys", lambda p: [a.pop(k) for a in p["annotations"] for k in ("a_segm", "i_segm")], "2020",
     r"annotation 1: .*neither KINS-2020 keys"),
    ("not JSON", lambda p: b'{"images": [', "2020", r"not valid JSON"),
    ("not an object", lambda p: b"[1, 2]", "2020", r"expected a JSON object"),
    ("image size differs", _wider_image, "2020", r"image 11: .*the annotation says 20 x 31"),
    ("empty split", _no_images, "2020", r"the split has no images"),
]

# --- The corpus -------------------------------------------------------------------------------------------------

EVIL = "{evil}/checkpoint.pt"
IMAGE_FOLDER = variant(lambda folder, fx: Path(shutil.copytree(fx["images"], folder / "images")))  # 000000.png, ...
CASES = [
    # rasterize: images and depth files (KINS's are messier than ours)
    Case("rasterize: image file missing", rasterize_kins(images=lambda f: (f / "image_2/sub/b.png").unlink()),
         r"annotations\.json: image 7: .*sub/b\.png not found"),
    Case("rasterize: image unreadable", rasterize_kins(images=_write("c.png", b"\x89PNG broken")),
         r"annotations\.json: image 3: cannot read image"),
    Case("rasterize: image unreadable in a worker process",
         rasterize_kins(images=_write("a.png", b"garbage"), extra="--workers 2 --images-per-shard 1"),
         r"annotations\.json: image 11: cannot read image", process="subprocess"),
    Case("rasterize: 16-bit image", rasterize_kins(images=_image_16_bit), r"a\.png is a 16-bit single-channel image"),
    Case("rasterize: 8-bit depth PNG", rasterize_kins(images=_depth_8_bit, depth_pngs=True),
         r"a\.png is an 8-bit PNG; depth must be 16-bit"),
    Case("rasterize: annotations missing", rasterize("{tmp}/nope.json"), r"nope\.json: annotation file not found"),
    Case("rasterize: images folder missing", rasterize(images="{tmp}/nope"), r"nope: images folder not found"),
    Case("rasterize: depth folder missing", rasterize(extra="--depth {tmp}/nope"), r"nope: depth folder not found"),
    # rasterize: outputs that would destroy inputs
    Case("rasterize: output is its annotation file", rasterize(out="{ann}"), r"the output is the input", copy=True),
    Case("rasterize: output contains its images", rasterize(out="{raw}/val", images="{raw}/val/image_2",
                                                            ann="{raw}/annotations/val.json"),
         r"the output contains the input", copy=True),
    Case("rasterize: output inside its images", rasterize(out="{images}/out.zarr"), r"sits inside the input", copy=True),
    Case("rasterize: read-only folder", rasterize(out="{ro}/val.zarr"), r"ro/val\.zarr: cannot write the output: "
         r"permission denied \(the folder is read-only"),
    Case("rasterize: full disk", rasterize(), r"val\.zarr: cannot write the output: file too large", process="fsize"),
    Case("rasterize: full disk in worker processes", rasterize(extra="--workers 2"),
         r"val\.zarr: cannot write the output: file too large", process="fsize"),
    # depth, features
    Case("depth: output is its prepared store", depth(out="{prepared}"), r"the output is the input", copy=True),
    Case("depth: prepared store missing", depth("{tmp}/nope.zarr"), r"nope\.zarr: .*not found"),
    Case("depth: a DAISnet model as the BTS checkpoint", depth(extra="--source bts --checkpoint {model}"),
         r"model\.pt: this is a DAISnet model checkpoint, not a BTS depth checkpoint"),
    Case("depth: a checkpoint carrying code", depth(extra=f"--source bts --checkpoint {EVIL}"),
         r"^(?!.*weights_only).*checkpoint\.pt: not a plain checkpoint: .*could run code"),
    Case("depth: read-only folder", depth(out="{ro}/d.zarr"), r"d\.zarr: cannot write the output: permission denied"),
    Case("depth: full disk", depth(), r"depth\.zarr: cannot write the output: file too large", process="fsize",
         marks=SLOW),
    Case("features: output folder is the depth folder", features("{depth_dir}/val.zarr", "{depth_dir}"),
         r"the output is the input", copy=True),
    Case("features: two stores with one name", features("{depth} {depth_dir}/val.zarr"), r"two outputs|distinct names"),
    Case("features: read-only folder", features(out_dir="{ro}/f"), r"val\.zarr: cannot write the output: permission"),
    Case("features: full disk", features(), r"val\.zarr: cannot write the output: file too large", process="fsize",
         marks=SLOW),
    # shape prior
    Case("shape-ae: output is its prepared store", shape_ae(out="{prepared_train}"), r"the output is the input",
         copy=True),
    Case("codebook: output is its autoencoder", codebook(out="{shape_ae}"), r"the output is the input", copy=True),
    Case("codebook: a DAISnet model as the autoencoder", codebook("{model}"),
         r"model\.pt: this is a DAISnet model checkpoint, not a shape-autoencoder checkpoint"),
    Case("codebook: an autoencoder carrying code", codebook(EVIL), r"^(?!.*weights_only).*not a plain checkpoint"),
    # train
    Case("train: read-only output folder", train(out="{ro}/model.pt"), r"model\.pt: cannot write the output: perm"),
    Case("train: a last.pt carrying code", train(work=work_dir_with_last("evil_file")),
         r"last\.pt: not a plain checkpoint: .*could run code"),
    Case("train: full disk", train(), r"last\.pt: cannot write the output: file too large", process="fsize",
         marks=SLOW),
    # evaluate
    Case("evaluate: a folder it did not write", evaluate(out="{mine}"), r"mine: holds .* that daisnet did not write"),
    Case("evaluate: output is its prepared store", evaluate(out="{prepared}"), r"the output is the input", copy=True),
    Case("evaluate: a model carrying code", evaluate(model=EVIL), r"^(?!.*weights_only).*not a plain checkpoint"),
    Case("evaluate: read-only folder", evaluate(out="{ro}/eval"), r"eval: cannot write the output: permission"),
    Case("evaluate: full disk", evaluate(), r"eval: cannot write the output: file too large", process="fsize",
         marks=SLOW),
    Case("evaluate: no such device", evaluate(extra="--features {features} --depth {depth} --device cuda:7"),
         r"cuda:7"),
    # predict
    Case("predict: image missing", predict("{tmp}/nope.png"), r"nope\.png: image not found"),
    Case("predict: image is not an image", predict(file_of(b"not a png", "x.png")), r"x\.png: cannot read the image"),
    Case("predict: 16-bit image", predict(image_of(lambda: np.full((64, 128), 40000, np.uint16))),
         r"x\.png: a 16-bit single-channel image"),
    Case("predict: two images with one name", predict("{image} " + twin_image()), r"would both write"),
    Case("predict: output is the folder of its images", predict(IMAGE_FOLDER + "/000000.png", out=IMAGE_FOLDER),
         r"contains the input", copy=True),
    Case("predict: a folder it did not write", predict(out="{mine}"), r"mine: holds .* that daisnet did not write"),
    Case("predict: output is its model", predict(out="{model}"), r"the output is the input", copy=True),
    Case("predict: model missing", predict(model="{tmp}/nope.pt"), r"nope\.pt: checkpoint not found"),
    Case("predict: model is not a checkpoint", predict(model=file_of(b"\x00" * 64, "m.pt")),
         r"m\.pt: not a readable checkpoint"),
    Case("predict: a model carrying code", predict(model=EVIL),
         r"^(?!.*weights_only).*checkpoint\.pt: not a plain checkpoint: it refers to Python code .*posix\.system"),
    Case("predict: a BTS checkpoint as the model", predict(model="{bts}"),
         r"bts\.pt: this is a BTS depth checkpoint, not a DAISnet model checkpoint"),
    Case("predict: a shape autoencoder as the model", predict(model="{shape_ae}"),
         r"this is a shape-autoencoder checkpoint, not a DAISnet model checkpoint"),
    Case("predict: a DAISnet model as the BTS checkpoint", predict(extra="--depth-checkpoint {model}"),
         r"model\.pt: this is a DAISnet model checkpoint, not a BTS depth checkpoint"),
    Case("predict: a shape autoencoder as the BTS checkpoint", predict(extra="--depth-checkpoint {shape_ae}"),
         r"this is a shape-autoencoder checkpoint, not a BTS depth checkpoint"),
    Case("predict: a BTS checkpoint carrying code", predict(extra=f"--depth-checkpoint {EVIL}"),
         r"^(?!.*weights_only).*not a plain checkpoint"),
    Case("predict: depth model without depth", predict(extra=""), r"need depth: give a BTS checkpoint"),
    Case("predict: 8-bit depth PNG", predict(extra="--depth-dir " + depth_pngs_with(lambda s: np.full(s, 9, np.uint8))),
         r"depth must be a single-channel 16-bit PNG"),
    Case("predict: depth PNG of another size", predict(
        extra="--depth-dir " + depth_pngs_with(lambda s: np.full((s[0], s[1] + 1), 2560, np.uint16))),
         r"depth is \d+ x \d+, the image"),
    Case("predict: no such device", predict(extra="--depth-dir {depth_pngs} --device cuda:7"), r"cuda:7"),
    Case("predict: not a device", predict(extra="--depth-dir {depth_pngs} --device gpu0"), r"not a torch device"),
    Case("predict: read-only folder", predict(out="{ro}/pred"), r"pred: cannot write the output: permission denied"),
    Case("predict: full disk", predict(), r"pred: cannot write the output: file too large", process="fsize"),
    # inspect, score, bounds
    Case("inspect: store missing", inspect("{tmp}/nope.zarr"), r"nope\.zarr: prepared store not found"),
    Case("inspect: index out of range", inspect(extra="--index 99"), r"image index 99 out of range"),
    Case("inspect: no such array", inspect(extra="--array bogus"), r"no array 'bogus'"),
    Case("inspect: output is its store", inspect(extra="--out {prepared}"), r"the output is the input", copy=True),
    Case("inspect: read-only folder", inspect(extra="--out {ro}/x.png"), r"x\.png: cannot write the output: perm"),
    Case("inspect: full disk", inspect(extra="--out {tmp}/x.png"), r"x\.png: cannot write the output: file too large",
         process="fsize", marks=SLOW),
    Case("score: results missing", score("{tmp}/nope.json"), r"nope\.json: predictions file not found"),
    Case("score: not JSON", score(results(lambda r: b"[{")), r"results\.json: not JSON"),
    Case("score: not a list", score(results(lambda r: b"{}")), r"expected a JSON list of COCO result records"),
    Case("score: missing key", score(results(lambda r: r[0].pop("score"))), r"record 0: missing \['score'\]"),
    Case("score: image of another split", score(results(lambda r: r[0].update(image_id=999))),
         r"record 0: image_id 999 is not an image of the split"),
    Case("score: unknown category", score(results(lambda r: r[0].update(category_id=42))), r"category_id 42"),
    Case("score: NaN score", score(results(lambda r: r[0].update(score=float("nan")))), r"score nan is not a finite"),
    Case("score: occlusion out of range", score(results(lambda r: r[0].update(occlusion=2))), r"occlusion 2 is not"),
    Case("score: polygon segmentation", score(results(lambda r: r[0].update(segmentation=[[1, 2, 3, 4, 5, 6]]))),
         r"segmentation must be a compressed RLE"),
    Case("score: mask of another size", score(results(lambda r: r[0]["segmentation"].update(size=[1, 1]))),
         r"segmentation size \[1, 1\] is not the image's size"),
    Case("score: garbage counts", score(results(lambda r: r[0]["segmentation"].update(counts="~~~~"))),
         r"segmentation counts"),
    Case("score: unknown kind", score(results(lambda r: None), extra="--kind modal"), r"kind must be one of"),
    # stores (issue 20, cases 8 and 9: tests/test_store_identity.py has the foreign-dataset cases)
    Case("inspect: a deleted shard", inspect(damaged_store("prepared", "images")), r"images/c\.0\.0\.0\.0: chunk file missing"),
    Case("inspect: a deleted small chunk", inspect(damaged_store("prepared", "image_ptr")), r"image_ptr/c\.0: chunk file missing"),
    Case("evaluate: a deleted features shard", evaluate(extra="--features " + damaged_store("features", "normals")
                                                       + " --depth {depth} --device cpu"), r"normals/c\.0\.0\.0\.0: chunk file missing"),
    Case("evaluate: features computed otherwise", evaluate(extra="--features " + features_computed_with(
        normalize_regional=False) + " --depth {depth} --device cpu"),
         r"val\.zarr: computed with other features than the model was trained on .*normalize_regional False here, True"),
    Case("inspect: a garbage shard", inspect(damaged_store("prepared", "images", "garbage")), r"val\.zarr: .*images"),
    Case("bounds: store missing", bounds("{tmp}/nope.zarr"), r"nope\.zarr: prepared store not found"),
    Case("bounds: a depth store", bounds("{depth}"), r"val\.zarr: not a prepared store: missing arrays"),
    # params files (issue 20 point 2: one schema, the file's real name, the dotted key)
    Case("params: quoted boolean", train(prepared="{tmp}/nope.zarr", params=other_params(
        lambda p: p["model"].update(class_agnostic_masks="false"))),
         r"other\.yaml.*model\.class_agnostic_masks"),
    Case("params: quoted boolean in features", features("{tmp}/nope.zarr", extra="--workers 0 --params " + other_params(
        lambda p: p["features"]["normals"].update(normalize_kernel="no"))),
         r"other\.yaml.*features\.normals\.normalize_kernel"),
    Case("params: unknown top-level key", train(prepared="{tmp}/nope.zarr", params=other_params(
        lambda p: p.update(trian={"iterations": 4}))), r"other\.yaml.*trian"),
    Case("params: unknown nested key", features("{tmp}/nope.zarr", extra="--workers 0 --params " + other_params(
        lambda p: p["features"].update(bogus=1))), r"other\.yaml.*features\.bogus"),
    Case("params: misspelt key", features("{tmp}/nope.zarr", extra="--workers 0 --params " + other_params(
        lambda p: p["features"]["regional"].update(offset=4))),
         r"other\.yaml: unknown key features\.regional\.offset \(did you mean features\.regional\.offsets\?\)"),
    Case("params: quoted number", train(prepared="{tmp}/nope.zarr", params=other_params(
        lambda p: p["train"].update(iterations="4"))), r"other\.yaml.*train\.iterations"),
    Case("params: out-of-range value", train(prepared="{tmp}/nope.zarr", params=other_params(
        lambda p: p["train"].update(grad_clip=-1))), r"other\.yaml.*train\.grad_clip"),
] + [Case(f"rasterize: {name}", rasterize_kins(edit, release), rf"annotations\.json: {match}") for name, edit, release, match in KINS]


@pytest.fixture(scope="session")
def corpus(tiny_features: dict, tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    """The tiny dataset and its stores (conftest), a model, BTS and shape checkpoints, a poisoned one."""
    from daisnet.data.torch_dataset import AmodalDataset
    from daisnet.depth.bts import BtsConfig, BtsModel
    from daisnet.depth.checkpoint import save_bts
    from daisnet.shape.autoencoder import ShapeAutoencoder, save_autoencoder
    from daisnet.train.loop import train as train_model
    from stages.train import feature_meta

    root = tmp_path_factory.mktemp("corpus")
    raw = tiny_features["raw"]
    image = sorted((raw / "val" / "image_2").glob("*.png"))[0]
    named = {"raw": raw, "ann": raw / "annotations" / "val.json", "images": raw / "val" / "image_2", "image": image,
             "depth_pngs": raw / "val" / "depth", "prepared": tiny_features["val"],
             "prepared_train": tiny_features["train"], "depth": tiny_features["depth_val"],
             "depth_train": tiny_features["depth_train"],
             "depth_dir": tiny_features["depth_val"].parent, "features": tiny_features["features_val"]}
    dataset = AmodalDataset(tiny_features["train"], DEPTH_MODEL, tiny_features["features_train"],
                            tiny_features["depth_train"])
    named["model"] = root / "model.pt"
    train_model(DEPTH_MODEL, replace(TINY_TRAIN, iterations=1), dataset, named["model"], root / "work",
                meta_extra=feature_meta(tiny_features["features_train"]))
    named["bts"] = root / "bts.pt"
    save_bts(named["bts"], BtsModel(BtsConfig(encoder="resnet18_bts", num_features=32)))
    named["shape_ae"] = root / "shape_ae.pt"
    save_autoencoder(named["shape_ae"], ShapeAutoencoder("all"), {})
    named["evil"] = root / "evil"  # a checkpoint whose unpickling would run a shell command
    named["evil"].mkdir()
    torch.save({"model": {"w": torch.ones(1)}, "meta": _RunsCode(named["evil"] / "code-ran")},
               named["evil"] / "checkpoint.pt")
    named["evil_file"] = named["evil"] / "checkpoint.pt"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"].update(inputs=["rgb"], min_size=64, max_size=128, mask_head_width=16, representation_size=32,
                           rpn_pre_nms_top_n=[100, 50], rpn_post_nms_top_n=[50, 25], box_batch_size_per_image=32,
                           fpn_channels=32)
    params["train"].update(iterations=2, batch_size=1, checkpoint_every=1, log_every=1)
    named["tiny_params"] = root / "tiny.yaml"
    named["tiny_params"].write_text(yaml.safe_dump(params))
    return Fixtures(root, named)


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_hostile_input(case: Case, corpus: Fixtures, tmp_path: Path) -> None:
    check(case, corpus, tmp_path)


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
