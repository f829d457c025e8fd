"""The report's depth-quality section: how good must depth be before it helps DAISnet?

Each depth source of the study (the ground truth, BTS at some training length, the ground truth with a
controlled defect: `daisnet.depth.degrade`) has a quality measured on val against the ground truth
(abs rel, delta<1.25, the normal-angle error; recorded in each run as `depth_quality`). Per row that
reads depth and per source, the change in amodal AP against R (R reads no depth: its ground-truth
runs) is put against that quality. The break-even of a row along one family of sources is where its
gain crosses zero, linearly interpolated between the two measured sources that bracket it: the
depth quality at which depth starts to help. Everything comes from the records alone.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from daisnet.atomic import atomic_output

BASELINE = "R"  # the row every gain is measured against (the report's baseline too)
QUALITY_ROWS = ("R+D", "R+N", "R+DN+N")  # the rows whose gain over R the section puts against depth quality
GROUND_TRUTH_QUALITY = {"abs_rel": 0.0, "delta1": 1.0, "rmse": 0.0, "normal_angle": 0.0}
FAMILIES = ("ground_truth", "bts", "resolution", "noise", "scale")


@dataclass(frozen=True)
class Point:
    """One row under one depth source: its gain over R and the source's depth quality."""

    row: str
    source: str
    quality: Mapping[str, float]
    gain: float  # mean amodal AP of the row minus R's
    se: float  # standard error of that difference (0 with one seed on either side)
    n: int

    @property
    def family(self) -> str:
        return self.source.split(":")[0]


def _quality(record: Mapping[str, Any]) -> Mapping[str, float] | None:
    if record["depth_source"] == "ground_truth":
        return GROUND_TRUTH_QUALITY
    return record.get("depth_quality")


def quality_points(records: Sequence[Mapping[str, Any]]) -> list[Point]:
    """Every (row, source) of QUALITY_ROWS with a known depth quality (random weights); none when no run
    used a depth source other than the ground truth with its quality recorded, or R has no runs."""
    random = [r for r in records if r["weights"] == "random"]
    base = [float(r["metrics"]["amodal"]["AP"]) for r in random
            if r["row"] == BASELINE and r["depth_source"] == "ground_truth"]
    if not base or not any(r["depth_source"] != "ground_truth" and _quality(r) for r in random):
        return []
    aps: dict[tuple[str, str], list[float]] = defaultdict(list)
    qualities: dict[str, Mapping[str, float]] = {}
    for record in random:
        quality = _quality(record)
        if record["row"] in QUALITY_ROWS and quality is not None:
            aps[(record["row"], record["depth_source"])].append(float(record["metrics"]["amodal"]["AP"]))
            qualities[record["depth_source"]] = quality
    base_mean, base_var = statistics.fmean(base), (statistics.variance(base) if len(base) > 1 else 0.0)
    points = []
    for (row, source), values in aps.items():
        var = statistics.variance(values) if len(values) > 1 else 0.0
        se = math.sqrt(var / len(values) + base_var / len(base)) if min(len(values), len(base)) > 1 else 0.0
        points.append(Point(row, source, qualities[source], statistics.fmean(values) - base_mean, se, len(values)))
    return sorted(points, key=lambda p: (FAMILIES.index(p.family) if p.family in FAMILIES else 99,
                                         p.quality["abs_rel"], p.source, QUALITY_ROWS.index(p.row)))


def break_even(points: Sequence[Point]) -> str:
    """Where one row's gain crosses zero along one family (ground truth included), in words."""
    ordered = sorted(points, key=lambda p: p.quality["abs_rel"])
    if len(ordered) < 2:
        return "one depth quality measured: no trend"
    if ordered[0].gain <= 0:
        return f"no gain even at the best depth measured (abs rel {ordered[0].quality['abs_rel']:.3f})"
    for better, worse in zip(ordered, ordered[1:]):
        if better.gain > 0 >= worse.gain:
            t = better.gain / (better.gain - worse.gain)

            def at(key: str) -> float:
                return better.quality[key] + t * (worse.quality[key] - better.quality[key])

            return (f"break-even at abs rel ≈ {at('abs_rel'):.3f}, normal angle ≈ {at('normal_angle'):.1f}° "
                    f"(between {better.source} {better.gain:+.1f} and {worse.source} {worse.gain:+.1f} AP)")
    last = ordered[-1]
    return f"helps at every depth measured, up to abs rel {last.quality['abs_rel']:.3f} ({last.source} {last.gain:+.1f} AP)"


def depth_quality_section(records: Sequence[Mapping[str, Any]], chart_link: str | None = None) -> list[str]:
    """The markdown lines of the section (none when no run measured another depth source)."""
    points = quality_points(records)
    if not points:
        return []
    rows = [r for r in QUALITY_ROWS if any(p.row == r for p in points)]
    by_source: dict[str, dict[str, Point]] = defaultdict(dict)
    for point in points:
        by_source[point.source][point.row] = point
    lines = ["## How good must depth be (depth quality against the gain over R)", "",
             "Each depth source's quality is measured on val against the ground truth (abs rel, δ<1.25, and the "
             "median angle between normal maps from it and from the ground truth, at the features stage's "
             "kernel: docs/depth.md). Degraded sources are the ground truth with one defect "
             "(`noise:σ` per-pixel log-normal, `resolution:f` block means over f x f px then bilinear up, "
             "`scale:σ` one log-normal factor per image; daisnet/depth/degrade.py). The gain is the row's mean "
             "amodal AP minus R's (ground-truth runs: R reads no depth) ± the standard error of that difference.",
             "", "| depth source | abs rel | δ<1.25 | normal angle (°) | " +
             " | ".join(f"{r} − R (n)" for r in rows) + " |", "|---|---|---|---|" + "---|" * len(rows)]
    for source, cells in by_source.items():
        quality = next(iter(cells.values())).quality
        gains = [f"{cells[r].gain:+.1f} ± {cells[r].se:.1f} ({cells[r].n})" if r in cells else "–" for r in rows]
        lines.append(f"| {source} | {quality['abs_rel']:.3f} | {quality['delta1']:.3f} | "
                     f"{quality['normal_angle']:.1f} | " + " | ".join(gains) + " |")
    lines += ["", "Break-even per row and family of sources (the ground truth is every family's best point):", ""]
    families = [f for f in FAMILIES if f != "ground_truth" and any(p.family == f for p in points)]
    for row in rows:
        for family in families:
            members = [p for p in points if p.row == row and p.family in ("ground_truth", family)]
            if any(p.family == family for p in members):
                lines.append(f"- {row}, {family}: {break_even(members)}")
    if chart_link:
        lines += ["", f"![gain over R against depth abs rel and normal angle, per row and source]({chart_link})"]
    return lines + [""]


# -- chart (Pillow: the same bytes everywhere) -----------------------------------------------------

ROW_COLOURS = {"R+D": (214, 39, 40), "R+N": (44, 160, 44), "R+DN+N": (31, 119, 180)}
PANEL_W, PANEL_H, MARGIN = 320, 240, 40


def draw_quality_chart(records: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Two panels, gain over R (y) against abs rel and against the normal angle (x); a line per row and
    family, from the ground truth through the family's levels; markers by family."""
    points = quality_points(records)
    gains = [p.gain for p in points] + [0.0]
    low, high = min(gains) - 1, max(gains) + 1
    image = Image.new("RGB", (2 * (PANEL_W + MARGIN) + MARGIN, PANEL_H + 3 * MARGIN), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for panel, (key, title) in enumerate((("abs_rel", "depth abs rel"), ("normal_angle", "normal angle (deg)"))):
        left, top = MARGIN + panel * (PANEL_W + MARGIN), MARGIN
        right = max([p.quality[key] for p in points] + [1e-6]) * 1.05

        def xy(point: Point, key: str = key, left: int = left) -> tuple[int, int]:
            return (int(left + point.quality[key] / right * PANEL_W),
                    int(top + (high - point.gain) / (high - low) * PANEL_H))

        draw.rectangle([left, top, left + PANEL_W, top + PANEL_H], outline=(0, 0, 0))
        zero = int(top + high / (high - low) * PANEL_H)
        draw.line([(left, zero), (left + PANEL_W, zero)], fill=(150, 150, 150))
        draw.text((left + 2, zero - 12), "R (no depth)", fill=(120, 120, 120))
        draw.text((left, top + PANEL_H + 4), f"0 .. {right:.3g}: {title}", fill=(0, 0, 0))
        draw.text((left, top - 14), f"gain over R (AP) {low:.0f} .. {high:.0f}", fill=(0, 0, 0))
        for row in ROW_COLOURS:
            for family in FAMILIES[1:]:
                line = sorted((p for p in points if p.row == row and p.family in ("ground_truth", family)),
                              key=lambda p: p.quality[key])
                if any(p.family == family for p in line):
                    draw.line([xy(p) for p in line], fill=ROW_COLOURS[row], width=1)
            for point in (p for p in points if p.row == row):
                x, y = xy(point)
                draw.rectangle([x - 3, y - 3, x + 3, y + 3], fill=ROW_COLOURS[row])
                draw.text((x + 4, y - 5), point.source if point.family != "ground_truth" else "GT", fill=(60, 60, 60))
    for k, (row, colour) in enumerate(ROW_COLOURS.items()):
        draw.rectangle([MARGIN + k * 90, PANEL_H + 2 * MARGIN + 4, MARGIN + k * 90 + 8, PANEL_H + 2 * MARGIN + 12],
                       fill=colour)
        draw.text((MARGIN + k * 90 + 12, PANEL_H + 2 * MARGIN + 2), f"{row} - R", fill=(0, 0, 0))
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")
