"""The report's section "Occlusion edges and the shape prior" (issue 33): which part limits each claim.

For each of the two components the paper credits most, three rows of the study (ground-truth depth,
random weights): R, the learned component (R+O, R+S) and its oracle (R+O*, R+S*: the same model fed
the ground truth of the part it learns; daisnet/model/oracle.py). The oracle bounds what a better
learned part could give; the learned row measures what it gives now; the edge head's own F1
(daisnet/evaluate/edges.py) says how far it is from its target. The diagnosis follows from the
verdicts of the study's rule (run_stats.verdict):
- the oracle beats R clearly and the learned row does not: the learned part limits;
- the oracle does not beat R: what reads the part (the refinement, the fusion) or the schedule limits,
  since even the truth does not help;
- both beat R: the claim holds, and the oracle's margin over the learned row is what is left.
The `long` runs' curves then say whether the schedule is the limit: the learned row's (or a variant's)
best gain over R at 1000, 2000 or 3000 iterations, and whether the seed ranges are apart there.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from daisnet.atomic import atomic_output
from daisnet.pipeline.report_tables import with_spread
from daisnet.pipeline.run_stats import RowStats, verdict

DEPTH = "ground_truth"


@dataclass(frozen=True)
class Part:
    claim: str
    learned: str  # the study row with the learned part
    oracle: str  # the same row with the part's ground truth
    part: str  # the learned part, in words
    reader: str  # what reads it
    variants: tuple[str, ...] = ()  # rows that change the learned part (issue 33, point 4), shown beside it


PARTS = (
    Part("occlusion edges help: R+O > R", "R+O", "R+O*", "edge head", "occlusion refinement", ("R+OW",)),
    Part("the 3D shape prior helps: R+S > R", "R+S", "R+S*", "shape retrieval (the codewords of the coarse mask)",
         "prior's fusion"),
)


def _row(stats: Mapping[tuple[str, str, str], RowStats], name: str) -> RowStats | None:
    return stats.get(("random", DEPTH, name))


def _delta(a: RowStats | None, b: RowStats | None) -> str:
    return "–" if a is None or b is None else with_spread(a, b)


def _edge_f1(row: RowStats | None) -> str:
    value = None if row is None else row.metric("edge", "f1")
    return "–" if value is None else f"{value:.3f}"


def _mask_ceiling(row: RowStats | None, key: str) -> str:
    """Mean amodal AP of the row's runs re-evaluated with their detections' ground-truth amodal masks
    (the study's `mask_ceiling`: `amodal_AP` everywhere, `hidden_amodal_AP` only behind occluders;
    runs recorded before it have none)."""
    values = [] if row is None else [r["mask_ceiling"][key] for r in row.records if key in r.get("mask_ceiling", {})]
    if not values:
        return "–"
    seeds = "" if len(values) == row.n else f" ({len(values)} of {row.n} seeds)"
    return f"{statistics.fmean(values):.2f}{seeds}"


def ceiling_gains(records: Sequence[Mapping[str, Any]]) -> tuple[int, float, float] | None:
    """Over every run of `records` measured both ways: (runs, mean AP gain with perfect amodal masks, mean
    gain with perfect masks only in the hidden part), each against the run's own AP."""
    runs = [r for r in records if {"amodal_AP", "hidden_amodal_AP"} <= set(r.get("mask_ceiling", {}))]
    if not runs:
        return None
    own = [r["metrics"]["amodal"]["AP"] for r in runs]
    return (len(runs), statistics.fmean(r["mask_ceiling"]["amodal_AP"] - ap for r, ap in zip(runs, own)),
            statistics.fmean(r["mask_ceiling"]["hidden_amodal_AP"] - ap for r, ap in zip(runs, own)))


def ceiling_summary(gains: tuple[int, float, float] | None) -> list[str]:
    if gains is None:
        return []
    n, gain_all, gain_hidden = gains
    return ["", f"Mask ceiling, over the {n} run(s) above measured both ways: perfect amodal masks would add "
            f"{gain_all:+.1f} AP to the same detections; perfect masks only behind occluders (the hidden part, "
            f"what the edge refinement and the shape prior complete) {gain_hidden:+.1f}. A part that completes "
            f"the hidden part can add at most that second figure here, however good it is."]


@dataclass(frozen=True)
class SchedulePoint:
    """A learned row's best point against R on the `long` runs' curves."""
    row: str
    iterations: int
    gain: float  # mean amodal AP of the row minus R's, at `iterations`
    seeds: int  # the fewer of the two rows' seed counts there
    apart: bool  # the seed ranges do not overlap (and each row has >= 2 seeds)

    def holds(self) -> bool:
        return self.apart and self.gain > 0

    def __str__(self) -> str:
        spread = "one seed" if self.seeds < 2 else f"{self.seeds} seeds, ranges {'apart' if self.apart else 'overlap'}"
        return f"{self.row} {self.gain:+.1f} AP over R at {self.iterations} iterations ({spread})"


def best_schedule_point(part: Part, curves: Mapping[str, Mapping[int, Sequence[float]]]) -> SchedulePoint | None:
    """The learned row's (or a variant's) largest mean gain over R at any iteration both have a curve point at."""
    base = curves.get("R", {})
    points = []
    for name in (part.learned, *part.variants):
        for step in sorted(set(curves.get(name, {})) & set(base)):
            a, b = curves[name][step], base[step]
            apart = min(len(a), len(b)) >= 2 and (min(a) > max(b) or min(b) > max(a))
            points.append(SchedulePoint(name, step, statistics.fmean(a) - statistics.fmean(b), min(len(a), len(b)), apart))
    return max(points, key=lambda p: (p.holds(), p.gain), default=None)


def diagnosis(part: Part, base: RowStats | None, learned: RowStats | None, oracle: RowStats | None,
              gains: tuple[int, float, float] | None = None, schedule: SchedulePoint | None = None) -> str:
    """Which part limits the claim, in one sentence, from the three rows' verdicts (and, where even
    the oracle does not help, the mask ceilings `gains` say what the hidden part is worth; the best point
    of the `long` curves, `schedule`, whether training longer is what it lacks)."""
    oracle_gain, learned_gain = verdict(oracle, base, +1), verdict(learned, base, +1)
    curves = ("; the curves (`--profile long`) are not run yet" if schedule is None
              else f"; on the curves, the best point: {schedule}")
    if oracle_gain in ("not run", "too few seeds"):
        return (f"not yet known: {part.oracle} has {0 if oracle is None else oracle.n} seed(s) "
                f"(`daisnet ablation --rows '{part.oracle}' --seeds 0,1`)")
    if schedule is not None and schedule.holds() and learned_gain != "holds":
        return (f"**the schedule limits**: at 1000 iterations the learned row gives {_delta(learned, base)} AP over R "
                f"and its oracle {_delta(oracle, base)}; trained longer, {schedule}")
    if oracle_gain == "holds" and learned_gain != "holds":
        return (f"**the {part.part} limits**: fed the ground truth, the {part.reader} gains "
                f"{_delta(oracle, base)} AP over R; the learned {part.part} gives {_delta(learned, base)}{curves}")
    if oracle_gain == "holds":
        return (f"**the claim holds**; a perfect {part.part} would add {_delta(oracle, learned)} AP more")
    limit = (f"the {part.reader} (or the schedule)" if schedule is None
             else f"the {part.reader}, not the schedule,")
    why = (f"**{limit} limits**: even the ground truth gives "
           f"{_delta(oracle, base)} AP over R ({oracle_gain}; {_delta(oracle, learned)} over {part.learned}), so no "
           f"better {part.part} can lift {part.learned} clearly above R in this setting")
    if gains is not None:
        why += (f"; what it completes, the hidden part, is worth {gains[2]:+.1f} AP to these detections when perfect "
                f"(perfect masks everywhere: {gains[1]:+.1f})")
    return why + curves


def edges_and_prior_section(stats: Mapping[tuple[str, str, str], RowStats],
                            curve_records: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    base, curves = _row(stats, "R"), curve_means(curve_records)
    lines = ["## Occlusion edges and the shape prior", "",
             "Each learned part beside its oracle: the same model fed that part's ground truth, at training and at "
             "test (`model.oracle`; docs/ablation.md, \"Oracle rows\"). Ground-truth depth, means over seeds; edge F1: "
             "the edge head's pixels against its own target on val (docs/metrics.md); ceilings: the same "
             "detections evaluated with their ground-truth amodal masks, everywhere or only in the hidden part "
             "(`daisnet evaluate --mask-ceiling`; docs/ablation.md, \"The mask ceiling\").", "",
             "| row | seeds | amodal AP: mean | min-max | Δ vs R ± s.e. | Δ vs the learned row | edge F1 | "
             "ceiling: all | ceiling: hidden part |",
             "|---|---|---|---|---|---|---|---|---|"]
    shown: list[RowStats] = []
    for part in PARTS:
        learned, oracle = _row(stats, part.learned), _row(stats, part.oracle)
        variants = [(name, _row(stats, name), learned) for name in part.variants]
        for name, row, against in [(part.learned, learned, None), *variants, (part.oracle, oracle, learned)]:
            if row is None:
                lines.append(f"| {name} | – | not run | – | – | – | – | – | – |")
                continue
            lines.append(f"| {name} | {row.n} | {row.mean:.2f} | {min(row.aps):.1f}-{max(row.aps):.1f} | "
                         f"{_delta(row, base)} | {'–' if against is None else _delta(row, against)} | {_edge_f1(row)} | "
                         f"{_mask_ceiling(row, 'amodal_AP')} | {_mask_ceiling(row, 'hidden_amodal_AP')} |")
            shown.append(row)
    gains = ceiling_gains([r for row in shown for r in row.records])
    lines += ceiling_summary(gains)
    lines += ["", "| claim | verdict (ours, vs R) | which part limits |", "|---|---|---|"]
    for part in PARTS:
        learned, oracle = _row(stats, part.learned), _row(stats, part.oracle)
        why = diagnosis(part, base, learned, oracle, gains, best_schedule_point(part, curves))
        lines.append(f"| {part.claim} | {verdict(learned, base, +1)} | {why} |")
    return lines + [""]


CURVE_COLOURS = {"R": (90, 90, 90), "R+O": (214, 39, 40), "R+OW": (227, 119, 194), "R+S": (44, 160, 44),
                 "R+DN+N": (31, 119, 180), "R+O*": (255, 127, 14), "R+S*": (148, 103, 189)}
OTHER_COLOUR = (140, 86, 75)


def curve_means(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, list[float]]]:
    """Per row, the amodal APs of its seeds at each iteration a run recorded (`curve` of the `long` profile)."""
    curves: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record["depth_source"] != DEPTH or record["weights"] != "random":
            continue
        for point in record.get("curve", ()):
            curves[record["row"]][int(point["iterations"])].append(float(point["amodal_AP"]))
    return {row: dict(points) for row, points in curves.items()}


def _end_ceiling(runs: Sequence[Mapping[str, Any]], key: str) -> str:
    """Mean mask ceiling `key` over the runs that measured it at their end, with the count if not all did."""
    values = [r["mask_ceiling"][key] for r in runs if key in (r.get("mask_ceiling") or {})]
    if not values:
        return "–"
    return f"{statistics.fmean(values):.2f}" + ("" if len(values) == len(runs) else f" ({len(values)} of {len(runs)})")


def curves_section(records: Sequence[Mapping[str, Any]], chart_link: str | None) -> list[str]:
    """AP against iterations per row, from the runs that kept their models along the way."""
    curves = curve_means(records)
    if not curves:
        return []
    order = [r for r in CURVE_COLOURS if r in curves] + sorted(set(curves) - set(CURVE_COLOURS))
    steps = sorted({i for points in curves.values() for i in points})
    lines = ["### AP against iterations", "",
             "Runs of the `long` profile (3000 iterations, cosine to 0 at the end), each evaluated at 1000 and 2000 "
             "iterations from the models it kept on the way (`train.snapshot_every`) and at its end: the points of one "
             "run share its schedule, so the middle ones are at a higher learning rate than a run of that length "
             "would end with. Amodal AP, mean (min-max) over seeds; these runs are not in the tables above. At the "
             "end, where a row's gain comes from: its visible AP (the visible-mask head), and the same detections "
             "with perfect amodal masks everywhere (what the detections are worth) or only in the hidden part (the "
             "gap to the row's own AP is what its hidden part still misses).", "",
             "| row | seeds | " + " | ".join(f"{i} it" for i in steps) + " | end: visible AP | end: ceiling all | "
             "end: ceiling hidden part |", "|---|---|" + "---|" * (len(steps) + 3)]
    for row in order:
        points = curves[row]
        seeds = max(len(v) for v in points.values())
        cells = [f"{statistics.fmean(points[i]):.2f} ({min(points[i]):.1f}-{max(points[i]):.1f})" if i in points
                 else "–" for i in steps]
        ends = [r for r in records if r["row"] == row and r.get("curve") and r["depth_source"] == DEPTH
                and r["weights"] == "random"]
        visible = statistics.fmean(float(r["curve"][-1]["visible_AP"]) for r in ends)
        cells += [f"{visible:.2f}", _end_ceiling(ends, "amodal_AP"), _end_ceiling(ends, "hidden_amodal_AP")]
        lines.append(f"| {row} | {seeds} | " + " | ".join(cells) + " |")
    gains = ceiling_gains([r for r in records if r["depth_source"] == DEPTH and r["weights"] == "random"])
    if gains is not None:
        n, gain_all, gain_hidden = gains
        lines += ["", f"Mask ceiling at the end of these runs ({n} measured both ways): perfect amodal masks would add "
                  f"{gain_all:+.1f} AP to the same detections, perfect masks only in the hidden part {gain_hidden:+.1f}."]
    if chart_link:
        lines += ["", f"![amodal AP against training iterations, mean over seeds, per row]({chart_link})"]
    return lines + [""]


def draw_curves_chart(records: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Amodal AP (y) against iterations (x): a line through each row's means, its seeds' range as whiskers."""
    curves = curve_means(records)
    width, height, margin = 520, 300, 40
    steps = sorted({i for points in curves.values() for i in points}) or [1]
    values = [v for points in curves.values() for seeds in points.values() for v in seeds] or [1.0]
    top, last = max(max(values) * 1.1, 1.0), max(steps)
    image = Image.new("RGB", (width + 2 * margin + 90, height + 2 * margin), (255, 255, 255))
    draw = ImageDraw.Draw(image)

    def xy(iteration: int, ap: float) -> tuple[int, int]:
        return int(margin + iteration / last * width), int(margin + (1 - ap / top) * height)

    draw.rectangle([margin, margin, margin + width, margin + height], outline=(0, 0, 0))
    draw.text((margin, margin - 16), "amodal AP", fill=(0, 0, 0))
    for ap in range(0, int(top) + 1, 10):  # a faint line every 10 AP
        y = xy(0, ap)[1]
        draw.line([(margin, y), (margin + width, y)], fill=(225, 225, 225))
        draw.text((margin - 22, y - 6), f"{ap:>3}", fill=(0, 0, 0))
    for step in steps:
        x = xy(step, 0)[0]
        draw.line([(x, margin + height), (x, margin + height + 4)], fill=(0, 0, 0))
        draw.text((x - 12, margin + height + 6), str(step), fill=(0, 0, 0))
    draw.text((margin + width // 2 - 24, margin + height + 20), "iterations", fill=(0, 0, 0))
    for k, (row, points) in enumerate(sorted(curves.items(), key=lambda kv: list(CURVE_COLOURS).index(kv[0])
                                             if kv[0] in CURVE_COLOURS else len(CURVE_COLOURS))):
        colour = CURVE_COLOURS.get(row, OTHER_COLOUR)
        line = [xy(i, statistics.fmean(points[i])) for i in sorted(points)]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for i in sorted(points):
            x, y = xy(i, statistics.fmean(points[i]))
            draw.line([(x, xy(i, max(points[i]))[1]), (x, xy(i, min(points[i]))[1])], fill=colour, width=1)
            draw.rectangle([x - 2, y - 2, x + 2, y + 2], fill=colour)
        draw.rectangle([margin + width + 10, margin + 14 * k, margin + width + 18, margin + 14 * k + 8], fill=colour)
        draw.text((margin + width + 22, margin + 14 * k - 2), row, fill=(0, 0, 0))
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")
