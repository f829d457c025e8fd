"""Per-annotation anomalies the rasterizer skips or flags, counted with their first examples.

Real KINS is messier than a synthetic set: fully hidden objects come with no visible polygon or a
visible box of negative size (public readers of the 2020 release drop `min(i_bbox) < 0`). Such a
record is not a reason to stop a split of 7,000 images: it is skipped, counted by reason, and its
(image id, annotation id) listed among the first `EXAMPLES` of that reason, so a user can look it
up. Structural errors (bad JSON, wrong types, unknown ids, paths) stay fatal (daisnet.data.kins).

The declared areas (`area`, `a_area`, `i_area`) are compared with the decoded masks. They are
never used (the masks are what the store holds), but a large difference says the file is read
wrongly (another image size, swapped coordinates, another release's meaning) or annotated wrongly.
Tolerance: `AREA_RELATIVE` of the larger area + the decoded mask's box width + height +
`AREA_SLACK_PX`. Rasterizing a polygon errs on its boundary pixels, so the rounding grows with the
outline, not the area: on 20,000 random KINS-like outlines (1 to 150 px radii, thin slivers
included) |polygon area - pycocotools' pixel count| exceeded 10% + 4 px for 1.1% of them (small or
elongated) and this tolerance for 0.03% (masks of at most 16 px): benchmarks/bench_area_tolerance.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pycocotools import mask as mask_utils

from daisnet.data.kins import AREA_FIELDS, InstanceRecord

# Why an annotation gets no row in the store, in the order they are tried (one reason each).
SKIP_RULES: dict[str, str] = {
    "crowd": "iscrowd = 1: a crowd region is not one instance",
    "negative_visible_box": "the visible box has a negative width or height (how KINS marks some fully hidden "
                            "objects)",
    "empty_amodal": "the amodal mask covers no pixel",
    "empty_visible": "the visible mask covers no pixel, or there is no visible polygon (nothing visible to learn "
                     "or evaluate)",
    "empty_visible_box": "the visible box has zero width or height although its mask has pixels: the visible "
                         "annotation contradicts itself",
}
# The store's attrs keep the list they were first written with: a new entry would change the bytes
# of every prepared store (pinned by dvc.lock) for no reader; the report lists every rule.
STORE_SKIP_RULES = ["crowd", "empty_amodal", "empty_visible"]
KEPT_WITH_WARNING = ("visible_outside_amodal", "amodal_box_mismatch", "visible_box_mismatch")
EXAMPLES = 5  # examples listed per anomaly in the report
AREA_RELATIVE = 0.10
AREA_SLACK_PX = 4
# A declared box agrees with its mask when each edge is within this many px + this share of the mask's
# extent along that axis (a float box around integer pixels rounds by up to a pixel per edge).
BOX_SLACK_PX = 2.0
BOX_RELATIVE = 0.10


@dataclass
class Tally:
    """Counts and first examples of every anomaly, of one planning task or of the whole split."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*SKIP_RULES, *KEPT_WITH_WARNING), 0))
    area_checked: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AREA_FIELDS, 0))
    area_mismatch: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AREA_FIELDS, 0))
    examples: dict[str, list[dict]] = field(default_factory=dict)  # by skip rule or area field

    def add(self, name: str, inst: InstanceRecord, **extra: float) -> None:
        """Count one skip or warning `name` of `inst` (an area field: one mismatch)."""
        target = self.area_mismatch if name in AREA_FIELDS else self.counts
        target[name] += 1
        listed = self.examples.setdefault(name, [])
        if len(listed) < EXAMPLES:
            listed.append({"image_id": inst.image_id, "annotation_id": inst.id, **extra})

    def merge(self, other: Tally) -> None:
        """Add `other`, which comes later in file order (its examples go after ours)."""
        for mine, theirs in ((self.counts, other.counts), (self.area_checked, other.area_checked),
                             (self.area_mismatch, other.area_mismatch)):
            for key, value in theirs.items():
                mine[key] += value
        for name, listed in other.examples.items():
            mine = self.examples.setdefault(name, [])
            mine += listed[:EXAMPLES - len(mine)]


def skip_before_decoding(inst: InstanceRecord) -> str | None:
    """The skip rule decided by the record alone (no mask needed), or None."""
    if inst.iscrowd:
        return "crowd"
    if inst.visible_bbox[2] < 0 or inst.visible_bbox[3] < 0:
        return "negative_visible_box"
    return None


def skip_after_decoding(inst: InstanceRecord, amodal_area: int, visible_area: int) -> str | None:
    """The skip rule that needs the decoded masks' areas, or None (the instance is kept)."""
    if amodal_area == 0:
        return "empty_amodal"
    if visible_area == 0:
        return "empty_visible"
    if inst.visible_bbox[2] == 0 or inst.visible_bbox[3] == 0:
        return "empty_visible_box"
    return None


def check_areas(inst: InstanceRecord, decoded: dict[str, tuple[int, dict]], tally: Tally) -> None:
    """Compare each declared area of `inst` with its mask's pixel count; `decoded`: {"amodal": (area, rle), ...}."""
    for key, declared in inst.areas:
        area, rle = decoded[AREA_FIELDS[key]]
        tally.area_checked[key] += 1
        difference = abs(declared - area)
        bound = AREA_RELATIVE * max(declared, area) + AREA_SLACK_PX
        if difference <= bound:  # nearly always: the box (below) is not needed
            continue
        _, _, w, h = mask_utils.toBbox(rle)
        if difference > bound + float(w + h):
            tally.add(key, inst, declared=declared, decoded=area)


def checked_box(inst: InstanceRecord, kind: str, rle: dict, tally: Tally) -> list[float]:
    """The (x0, y0, x1, y1) box to store for the `kind` ("amodal" or "visible") mask of `inst`: the
    declared box when it agrees with the mask's own box (`BOX_SLACK_PX`, `BOX_RELATIVE`), else the
    mask's box, counted as `<kind>_box_mismatch` with the example. The masks are what the store holds,
    and a detector trained on a box far from its mask (a box [-50, -50, 10, 10] whose polygon lies
    elsewhere, one covering the whole image) would learn a wrong target without anyone knowing."""
    x, y, w, h = inst.amodal_bbox if kind == "amodal" else inst.visible_bbox
    declared = [float(x), float(y), float(x + w), float(y + h)]
    mx, my, mw, mh = (float(v) for v in mask_utils.toBbox(rle))
    mask_box = [mx, my, mx + mw, my + mh]
    slack = [BOX_SLACK_PX + BOX_RELATIVE * mw, BOX_SLACK_PX + BOX_RELATIVE * mh] * 2
    if all(abs(a - b) <= s for a, b, s in zip(declared, mask_box, slack)):
        return declared
    tally.add(f"{kind}_box_mismatch", inst, declared=[round(v, 1) for v in declared], mask=mask_box)
    return mask_box


def report_fields(tally: Tally) -> dict:
    """The anomaly part of the rasterize report (strict JSON; DVC metrics shows the numbers)."""
    return {
        "skipped": {rule: tally.counts[rule] for rule in SKIP_RULES},
        "skip_rules": dict(SKIP_RULES),
        "skipped_examples": {rule: tally.examples[rule] for rule in SKIP_RULES if rule in tally.examples},
        "kept_with_warning": {name: tally.counts[name] for name in KEPT_WITH_WARNING},
        "area_checked": dict(tally.area_checked),
        "area_mismatch": dict(tally.area_mismatch),
        "area_mismatch_examples": {key: tally.examples[key] for key in AREA_FIELDS if key in tally.examples},
        "area_tolerance": f"|declared - decoded| <= {AREA_RELATIVE:g} x the larger + the decoded mask's box "
                          f"width + height + {AREA_SLACK_PX} px",
        "box_mismatch_examples": {name: tally.examples[name] for name in KEPT_WITH_WARNING
                                  if name.endswith("_box_mismatch") and name in tally.examples},
        "box_tolerance": f"each edge within {BOX_SLACK_PX:g} px + {BOX_RELATIVE:g} x the mask's extent of the mask's "
                         "own box; else the mask's box is stored",
    }


def notes(report: dict) -> list[str]:
    """One line per anomaly found (none on a clean split), with the first examples to look up."""
    lines = []
    for rule, count in report["skipped"].items():
        if count:
            lines.append(f"skipped {count} annotation(s), {rule}: {SKIP_RULES[rule]}; first: "
                         + ", ".join(f"image {e['image_id']} annotation {e['annotation_id']}"
                                     for e in report["skipped_examples"][rule]))
    for key, count in report["area_mismatch"].items():
        if count:
            lines.append(f"{key} differs from the decoded {AREA_FIELDS[key]} mask's pixel count in {count} of "
                         f"{report['area_checked'][key]} annotation(s) beyond the tolerance; first: "
                         + ", ".join(f"image {e['image_id']} annotation {e['annotation_id']} ({e['declared']:g} "
                                     f"declared, {e['decoded']} decoded)"
                                     for e in report["area_mismatch_examples"][key]))
    for name, examples in report.get("box_mismatch_examples", {}).items():
        lines.append(f"{report['kept_with_warning'][name]} {name.split('_')[0]} box(es) disagree with their mask; "
                     "the mask's box is stored; first: "
                     + ", ".join(f"image {e['image_id']} annotation {e['annotation_id']} (declared {e['declared']}, "
                                 f"mask {e['mask']})" for e in examples))
    return lines
