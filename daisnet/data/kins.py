"""Reading KINS annotation files, both releases, into one validated record per instance.

The two releases (shared/REFERENCE.md) are told apart by their annotation keys:

| release | amodal mask / box | visible mask / box | occlusion order |
|---|---|---|---|
| 2019 (`instances_{train,val}.json`) | `segmentation` (polygons), `bbox` | `inmodal_seg` (RLE), `inmodal_bbox` | none |
| 2020 (`update_{train,test}_2020.json`) | `a_segm`, `a_bbox` | `i_segm`, `i_bbox` (polygons) | `oco_id`, `ico_id` |

Either mask may be COCO polygons (a list; several polygons are unioned) or a COCO RLE dict
(compressed `counts` string or uncompressed list). Boxes are COCO xywh.

Everything that would make a mask wrong or ambiguous stops the run with one `InputError` naming
the file, the record and the problem (docs/rasterize.md lists them). Degenerate but well-formed
instances are not errors: the rasterizer skips and counts them. Those are an empty mask, and the
anomalies of the visible part that real KINS has (fully hidden objects): a visible box of negative
or zero width or height, no visible polygon or only empty ones (`[]`, `[[]]`, read as `[]`).
The declared areas (`area`, `a_area`, `i_area`) are kept for the rasterizer to compare with the
decoded masks (daisnet/data/anomalies.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal

from daisnet.errors import InputError, is_int, is_number

Release = Literal["2019", "2020"]
Segmentation = list | dict  # polygons [[x0, y0, x1, y1, ...], ...] or an RLE dict

# Which annotation key holds what, per release.
KEYS: dict[str, dict[str, str]] = {
    "2019": {"amodal": "segmentation", "amodal_bbox": "bbox", "visible": "inmodal_seg",
             "visible_bbox": "inmodal_bbox"},
    "2020": {"amodal": "a_segm", "amodal_bbox": "a_bbox", "visible": "i_segm", "visible_bbox": "i_bbox"},
}
# A polygon vertex may lie outside the image (amodal outlines of truncated objects do, slightly),
# but not by more than this fraction of the image size: beyond that the coordinates belong to
# another image or are in the wrong units, and clipping would silently hide it.
OUTSIDE_TOLERANCE = 0.5
# Declared areas and the mask each describes. `area` is COCO's (amodal in KINS: what COCO
# evaluation's area ranges use); either release may carry any of them.
AREA_FIELDS: dict[str, str] = {"area": "amodal", "a_area": "amodal", "i_area": "visible"}


@dataclass(frozen=True)
class ImageRecord:
    id: int
    file_name: str
    height: int
    width: int
    focal: float = math.nan  # px; the synthetic set has it, KINS does not


@dataclass(frozen=True)
class InstanceRecord:
    """One KINS instance, release-independent."""

    id: int
    image_id: int
    category_id: int
    amodal: Segmentation
    visible: Segmentation
    amodal_bbox: tuple[float, float, float, float]  # xywh
    visible_bbox: tuple[float, float, float, float]  # xywh
    iscrowd: int = 0
    oco_id: int = -1  # occlusion cluster (2020); -1 when the release has none
    ico_id: int = -1  # order inside the cluster (2020; 0 = overlaps nothing); -1 when none
    areas: tuple[tuple[str, float], ...] = ()  # (AREA_FIELDS key, declared value) of those present


@dataclass
class KinsAnnotations:
    path: Path
    release: Release
    images: list[ImageRecord]  # in file order
    categories: dict[int, str]
    instances: dict[int, list[InstanceRecord]] = field(default_factory=dict)  # by image id, file order

    def instances_of(self, image_id: int) -> list[InstanceRecord]:
        return self.instances.get(image_id, [])

    @property
    def instance_count(self) -> int:
        return sum(len(v) for v in self.instances.values())


def load_kins(path: str | Path) -> KinsAnnotations:
    """Read and validate a KINS annotation file (either release); raise `InputError` on bad input."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            payload = json.load(f)
    except FileNotFoundError:
        raise InputError("annotation file not found", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a KINS annotation JSON file", path=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", path=path) from None
    return parse_kins(payload, path)


def parse_kins(payload: Any, path: str | Path = "<annotations>") -> KinsAnnotations:
    """Validate an already-parsed KINS payload and turn it into records."""
    path = Path(path)
    if not isinstance(payload, dict):
        raise InputError(f"expected a JSON object at the top level, found {type(payload).__name__}", path=path)
    for key in ("images", "annotations", "categories"):
        if key not in payload:
            raise InputError(f"missing top-level key {key!r}", path=path)
        if not isinstance(payload[key], list):
            raise InputError(f"top-level {key!r} must be a list", path=path)
    categories = _categories(payload["categories"], path)
    images = [_image(entry, index, path) for index, entry in enumerate(payload["images"])]
    by_id: dict[int, ImageRecord] = {}
    for image in images:
        if image.id in by_id:
            raise InputError("duplicate image id", path=path, record=f"image {image.id}")
        by_id[image.id] = image
    release = detect_release(payload["annotations"], categories, path)
    result = KinsAnnotations(path=path, release=release, images=images, categories=categories)
    seen: set[int] = set()
    for index, entry in enumerate(payload["annotations"]):
        record = _instance(entry, index, release, categories, by_id, path)
        if record.id in seen:
            raise InputError("duplicate annotation id", path=path, record=f"annotation {record.id}")
        seen.add(record.id)
        result.instances.setdefault(record.image_id, []).append(record)
    return result


def detect_release(annotations: list, categories: dict[int, str], path: Path) -> Release:
    """'2020' when annotations carry `a_segm`, '2019' when they carry `segmentation`/`inmodal_seg`.

    With no annotations at all the categories decide: only the 2020 release lists id 3 (rider).
    """
    for index, entry in enumerate(annotations):
        if not isinstance(entry, dict):
            raise InputError(f"expected an object, found {type(entry).__name__}", path=path,
                             record=f"annotation #{index}")
        if "a_segm" in entry or "i_segm" in entry:
            return "2020"
        if "segmentation" in entry or "inmodal_seg" in entry:
            return "2019"
        raise InputError("neither KINS-2020 keys (a_segm, i_segm) nor KINS-2019 keys (segmentation, "
                         "inmodal_seg)", path=path, record=_annotation_name(entry, index))
    return "2020" if 3 in categories else "2019"


def _annotation_name(entry: dict, index: int) -> str:
    ann_id = entry.get("id") if isinstance(entry, dict) else None
    return f"annotation {ann_id}" if is_int(ann_id) else f"annotation #{index}"


def _categories(entries: list, path: Path) -> dict[int, str]:
    categories: dict[int, str] = {}
    for index, entry in enumerate(entries):
        record = f"category #{index}"
        if not isinstance(entry, dict) or not is_int(entry.get("id")) or not isinstance(entry.get("name"), str):
            raise InputError("a category needs an integer 'id' and a string 'name'", path=path, record=record)
        if entry["id"] in categories:
            raise InputError("duplicate category id", path=path, record=f"category {entry['id']}")
        categories[entry["id"]] = entry["name"]
    return categories


def safe_relative_path(file_name: Any) -> str | None:
    """The problem with an untrusted `file_name`, or None: it must stay under the images folder."""
    if not isinstance(file_name, str) or not file_name:
        return "file_name must be a non-empty string"
    if "\x00" in file_name:
        return "file_name contains a NUL character"
    posix, windows = PurePosixPath(file_name), PureWindowsPath(file_name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or file_name.startswith(("\\", "/")):
        return f"file_name {file_name!r} is absolute; it must be relative to the images folder"
    if ".." in posix.parts or ".." in windows.parts:
        return f"file_name {file_name!r} contains '..'; it must stay inside the images folder"
    return None


def _image(entry: Any, index: int, path: Path) -> ImageRecord:
    if not isinstance(entry, dict):
        raise InputError(f"expected an object, found {type(entry).__name__}", path=path, record=f"image #{index}")
    record = f"image {entry['id']}" if is_int(entry.get("id")) else f"image #{index}"
    for key in ("id", "file_name", "height", "width"):
        if key not in entry:
            raise InputError(f"missing key {key!r}", path=path, record=record)
    if not is_int(entry["id"]):
        raise InputError(f"id must be an integer, found {entry['id']!r}", path=path, record=record)
    for key in ("height", "width"):
        if not is_int(entry[key]) or not 0 < entry[key] <= 65535:
            raise InputError(f"{key} must be a positive integer, found {entry[key]!r}", path=path, record=record)
    problem = safe_relative_path(entry["file_name"])
    if problem:
        raise InputError(problem, path=path, record=record)
    focal = entry.get("focal", math.nan)
    if focal is None:
        focal = math.nan
    if not isinstance(focal, (int, float)) or isinstance(focal, bool) or (math.isfinite(focal) and focal <= 0):
        raise InputError(f"focal must be a positive number, found {focal!r}", path=path, record=record)
    return ImageRecord(entry["id"], entry["file_name"], entry["height"], entry["width"], float(focal))


def _instance(entry: Any, index: int, release: Release, categories: dict[int, str],
              images: dict[int, ImageRecord], path: Path) -> InstanceRecord:
    if not isinstance(entry, dict):
        raise InputError(f"expected an object, found {type(entry).__name__}", path=path,
                         record=f"annotation #{index}")
    record = _annotation_name(entry, index)
    keys = KEYS[release]
    for key in ("id", "image_id", "category_id", *keys.values()):
        if key not in entry:
            raise InputError(f"missing key {key!r} (KINS-{release} annotation)", path=path, record=record)
    if not is_int(entry["id"]):
        raise InputError(f"id must be an integer, found {entry['id']!r}", path=path, record=record)
    image = images.get(entry["image_id"]) if is_int(entry["image_id"]) else None
    if image is None:
        raise InputError(f"image_id {entry['image_id']!r} is not in 'images'", path=path, record=record)
    if not is_int(entry["category_id"]) or entry["category_id"] not in categories:
        raise InputError(f"unknown category_id {entry['category_id']!r} (known: {sorted(categories)})",
                         path=path, record=record)
    iscrowd = entry.get("iscrowd", 0)  # absent from the 2020 release: pycocotools' default
    if iscrowd not in (0, 1) or isinstance(iscrowd, bool):
        raise InputError(f"iscrowd must be 0 or 1, found {iscrowd!r}", path=path, record=record)
    masks = {key: _no_polygon(entry[keys[key]]) for key in ("amodal", "visible")}
    for key, segm in masks.items():
        _check_segmentation(segm, keys[key], image, path, record)
    # A visible box of negative size is how some fully hidden objects come: the rasterizer skips them.
    boxes = {"amodal_bbox": _check_box(entry[keys["amodal_bbox"]], keys["amodal_bbox"], path, record),
             "visible_bbox": _check_box(entry[keys["visible_bbox"]], keys["visible_bbox"], path, record,
                                        negative_size=True)}
    order = {}
    for key in ("oco_id", "ico_id"):
        value = entry.get(key, -1)
        if release == "2020" and key in entry and (not is_int(value) or value < 0):
            raise InputError(f"{key} must be a non-negative integer, found {value!r}", path=path, record=record)
        order[key] = value if release == "2020" and key in entry else -1
    return InstanceRecord(
        id=entry["id"], image_id=image.id, category_id=entry["category_id"],
        amodal=masks["amodal"], visible=masks["visible"],
        amodal_bbox=boxes["amodal_bbox"], visible_bbox=boxes["visible_bbox"],
        iscrowd=iscrowd, oco_id=order["oco_id"], ico_id=order["ico_id"], areas=_areas(entry, path, record),
    )


def _no_polygon(segm: Any) -> Any:
    """`[]` for a polygon list holding only empty polygons (`[[]]`): an empty mask, as `[]` is."""
    # segm[0] first: this runs on every record, in the serial part of the stage.
    if isinstance(segm, list) and segm and segm[0] == [] and all(polygon == [] for polygon in segm):
        return []
    return segm


def _areas(entry: dict, path: Path, record: str) -> tuple[tuple[str, float], ...]:
    """The declared areas present: a wrong type is an error, a wrong value only a counted mismatch."""
    areas = []
    for key in AREA_FIELDS:
        if key in entry:
            if not is_number(entry[key]):
                raise InputError(f"{key} must be a finite number, found {entry[key]!r}", path=path, record=record)
            areas.append((key, float(entry[key])))
    return tuple(areas)


def _check_box(box: Any, key: str, path: Path, record: str,
               negative_size: bool = False) -> tuple[float, float, float, float]:
    """4 finite numbers; a negative width or height only where `negative_size` allows it."""
    if not isinstance(box, list) or len(box) != 4 or not all(is_number(v) for v in box):
        raise InputError(f"{key} must be 4 finite numbers [x, y, w, h], found {box!r}", path=path, record=record)
    if not negative_size and (box[2] < 0 or box[3] < 0):
        raise InputError(f"{key} has a negative width or height: {box}", path=path, record=record)
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _check_segmentation(segm: Any, key: str, image: ImageRecord, path: Path, record: str) -> None:
    """Polygons or RLE, consistent with the image: anything pycocotools would misread is refused."""
    h, w = image.height, image.width
    if isinstance(segm, dict):
        size, counts = segm.get("size"), segm.get("counts")
        if not (isinstance(size, list) and len(size) == 2 and all(is_int(v) for v in size)):
            raise InputError(f"{key}: RLE needs 'size' [height, width], found {size!r}", path=path, record=record)
        if size != [h, w]:
            raise InputError(f"{key}: RLE size {size} differs from the image size [{h}, {w}] "
                             f"(image {image.id})", path=path, record=record)
        if isinstance(counts, list):
            if not all(is_int(v) and v >= 0 for v in counts) or sum(counts) != h * w:
                raise InputError(f"{key}: uncompressed RLE counts must be non-negative integers summing to "
                                 f"{h} * {w} = {h * w}", path=path, record=record)
        elif isinstance(counts, str):
            _check_compressed_counts(counts, h * w, key, path, record)
        else:
            raise InputError(f"{key}: RLE 'counts' must be a string or a list", path=path, record=record)
        return
    if not isinstance(segm, list):
        raise InputError(f"{key}: expected polygons (a list) or an RLE dict, found {type(segm).__name__}",
                         path=path, record=record)
    if not segm:
        return  # no polygon: an empty mask, skipped and counted by the rasterizer
    lo_x, hi_x = -OUTSIDE_TOLERANCE * w, (1 + OUTSIDE_TOLERANCE) * w
    lo_y, hi_y = -OUTSIDE_TOLERANCE * h, (1 + OUTSIDE_TOLERANCE) * h
    for number, polygon in enumerate(segm, start=1):
        where = f"{key}: polygon {number}"
        if not isinstance(polygon, list):
            raise InputError(f"{where} must be a flat list [x0, y0, x1, y1, ...]", path=path, record=record)
        if len(polygon) % 2:
            raise InputError(f"{where} has an odd number of coordinates ({len(polygon)})", path=path, record=record)
        if len(polygon) < 6:
            raise InputError(f"{where} has {len(polygon) // 2} points; a polygon needs at least 3",
                             path=path, record=record)
        # Checked per type set and one sum, not per coordinate: this runs over every vertex of the
        # split, in the one serial part of the stage. (bool is a subclass of int: its type is not.)
        if not set(map(type, polygon)) <= {int, float} or not math.isfinite(sum(polygon)):
            raise InputError(f"{where} has a coordinate that is not a finite number", path=path, record=record)
        xs, ys = polygon[0::2], polygon[1::2]
        if min(xs) < lo_x or max(xs) > hi_x or min(ys) < lo_y or max(ys) > hi_y:
            raise InputError(
                f"{where} reaches ({min(xs):g}..{max(xs):g}, {min(ys):g}..{max(ys):g}), far outside the "
                f"{w} x {h} image (image {image.id})", path=path, record=record)


def _check_compressed_counts(counts: str, pixels: int, key: str, path: Path, record: str) -> None:
    from daisnet.data.rle import decode_counts

    if not counts.isascii() or any(not 48 <= ord(c) < 48 + 64 for c in counts) or (counts and ord(counts[-1]) - 48 >= 32):
        raise InputError(f"{key}: RLE 'counts' is not a valid compressed COCO RLE string", path=path, record=record)
    runs = decode_counts(counts)
    if (runs < 0).any() or int(runs.sum()) != pixels:
        raise InputError(f"{key}: RLE runs cover {int(runs.sum())} pixels, the image has {pixels}",
                         path=path, record=record)
