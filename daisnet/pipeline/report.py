"""The ablation report: our DVC experiments next to the paper's Table 1, as markdown and a bar chart.

For every row the paper identifies (paper_table1.json), the report prints the paper's numbers and
ours (the newest experiment whose params give that row, experiments.py), or "not run" when no
experiment gives it: nothing is ever filled in. Each row also gets its relative change in AP
against the baseline of its weight setting (R for random weights; R+D for ImageNet, because the
paper prints no ImageNet R row and calls R+D its ImageNet baseline), computed within each source:
paper rows against the paper's baseline, our rows against our baseline run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from daisnet.pipeline.experiments import Run, pick_rows
from daisnet.evaluate.metrics import OCCLUSION_BUCKETS

PAPER_TABLE = Path(__file__).with_name("paper_table1.json")
COLUMNS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100")
WEIGHTS = ("random", "imagenet", "checkpoint")
NOT_RUN = "not run"


def load_paper_table(path: Path = PAPER_TABLE) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def component_marks(label: str) -> dict[str, str]:
    """Table 1's mark per component column (R, D, N, O, S): ✓ or the variant letter(s)."""
    marks = dict.fromkeys("RDNOS", "")
    for part in label.split("+"):
        if part == "R":
            marks["R"] = "✓"
        elif part.startswith("D"):
            # As Table 1 prints them: D1 is marked "O1" (offset interval 1), DS1 "S1", DN "N".
            marks["D"] = {"D": "✓", "D1": "O1", "DS1": "S1", "DN": "N"}.get(part, part[1:].strip("[]"))
        elif part.startswith("N"):
            marks["N"] = "✓" if part == "N" else part[1:]
        elif part.startswith("O"):
            marks["O"] = "✓" if part == "O" else part[1:].strip("[]")
        elif part.startswith("S"):
            marks["S"] = "✓" if part == "S" else part[1:]
    return marks


def relative(value: float | None, baseline: float | None) -> float | None:
    """Relative change in %, None when either side is missing."""
    if value is None or baseline is None or baseline == 0:
        return None
    return (value / baseline - 1.0) * 100.0


@dataclass
class Row:
    """One line of the comparison: a (weights, label) row with the paper's and our numbers."""

    weights: str
    label: str
    paper: Mapping[str, Any] | None  # the paper's row (values, suspect notes), None if not in the paper
    run: Run | None  # our run, None if not run
    paper_delta: float | None = None
    our_delta: float | None = None

    def ours(self, column: str) -> float | None:
        if self.run is None or self.run.metrics is None:
            return None
        value = (self.run.metrics.get("amodal") or {}).get(column)
        return float(value) if isinstance(value, (int, float)) else None


def build_rows(runs: list[Run], paper: Mapping[str, Any], include_workspace: bool = False) -> list[Row]:
    """Paper rows in the paper's order (with ours or not run), then our rows the paper does not have."""
    chosen = pick_rows(runs, include_workspace)
    identified = [r for r in paper["rows"] if r.get("label")]
    rows = [Row(r["weights"], r["label"], r, chosen.get((r["weights"], r["label"]))) for r in identified]
    known = {(r.weights, r.label) for r in rows}
    extra = sorted((key for key in chosen if key not in known), key=lambda k: (WEIGHTS.index(k[0]), k[1]))
    rows += [Row(w, label, None, chosen[(w, label)]) for w, label in extra]
    rows.sort(key=lambda r: WEIGHTS.index(r.weights))  # stable: the paper's order within a weight setting
    for row in rows:
        base = paper["baselines"].get(row.weights, "R")
        base_paper = next((r for r in identified if (r["weights"], r["label"]) == (row.weights, base)), None)
        base_run = chosen.get((row.weights, base))
        if row.paper is not None and base_paper is not None:
            row.paper_delta = relative(row.paper["AP"], base_paper["AP"])
        if row.run is not None and base_run is not None:
            row.our_delta = relative(row.ours("AP"), Row(row.weights, base, None, base_run).ours("AP"))
    return rows


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _delta(row: Row, value: float | None, is_baseline: bool, has_baseline: bool) -> str:
    if is_baseline:
        return "baseline"
    if value is None:
        return "baseline not run" if not has_baseline else "–"
    return f"{value:+.1f}%"


def markdown(rows: list[Row], runs: list[Run], paper: Mapping[str, Any], include_workspace: bool = False) -> str:
    """The report: the Table 1 comparison, unidentified paper rows, definitions, and every run considered."""
    chosen = pick_rows(runs, include_workspace)
    header = ["Weights", "R", "D", "N", "O", "S", "Source", *COLUMNS, "ΔAP vs baseline"]
    lines = [
        "# Ablation: our runs against the paper's Table 1",
        "",
        "Amodal mask metrics (x100). **Paper**: DAISnet Table 1, transcribed as printed "
        "(daisnet/pipeline/paper_table1.json); " + paper["protocol"] + ".",
        "**Ours**: `amodal.*` of each experiment's `data/results/eval/metrics.json` (pycocotools COCOeval segm; "
        "APs/APm/APl are COCO area buckets on the amodal mask area: <= 32², 32²-96², >= 96² px, "
        "not VRSP-Net/AISFormer occlusion buckets; docs/metrics.md). Our dataset, resolution and schedule are "
        "those of each run's params, not the paper's: compare the relative changes.",
        "ΔAP vs baseline: relative change in AP against the baseline row of the same weights, within each source: "
        + "; ".join(f"{w}: {b}" for w, b in paper["baselines"].items()) + ". " + paper["baseline_note"] + ".",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    footnotes: list[str] = []
    for row in rows:
        marks = component_marks(row.label)
        base = paper["baselines"].get(row.weights, "R")
        is_base = row.label == base
        first = [row.weights, *(marks[c] for c in "RDNOS")]
        if row.paper is not None:
            cells = []
            for column in COLUMNS:
                text = f"{row.paper[column]:.2f}"
                if column in row.paper.get("suspect", {}):
                    footnotes.append(f"{row.weights} {row.label} {column} = {text}: {row.paper['suspect'][column]}")
                    text += f"[^{len(footnotes)}]"
                cells.append(text)
            lines.append("| " + " | ".join([*first, "paper", *cells, _delta(row, row.paper_delta, is_base, True)]) + " |")
        else:
            lines.append("| " + " | ".join([*first, "paper", "not in the paper", *[""] * (len(COLUMNS) - 1), ""]) + " |")
        blank = [""] * 6 if row.paper is not None else first
        if row.run is None:
            lines.append("| " + " | ".join([*blank, "ours", NOT_RUN, *[""] * (len(COLUMNS) - 1), ""]) + " |")
        else:
            source = f"ours: `{row.run.name}`"
            has_base = (row.weights, base) in chosen
            cells = [_number(row.ours(c)) for c in COLUMNS]
            lines.append("| " + " | ".join([*blank, source, *cells, _delta(row, row.our_delta, is_base, has_base)]) + " |")
    lines.append("")
    lines += [f"[^{n}]: {text}" for n, text in enumerate(footnotes, 1)]
    lines += ["", "## Paper rows whose components are lost", "",
              "The text of the paper lost the column of each check mark; these rows are not named in its prose "
              "either, so they are never matched to a run.", "",
              "| Weights | marks as printed | AP | AP50 | AP75 |", "|---|---|---|---|---|"]
    for r in paper["rows"]:
        if not r.get("label"):
            lines.append(f"| {r['weights']} | {r['printed_marks']} | {r['AP']:.2f} | {r['AP50']:.2f} | {r['AP75']:.2f} |")
    lines += ["", "## Our AP by occlusion level", "",
              "Occlusion = 1 - visible / amodal area of the ground-truth instance; "
              + ", ".join(f"{n} [{lo:g}, {hi:g}{']' if n == 'heavy' else ')'}" for n, (lo, hi) in OCCLUSION_BUCKETS.items())
              + " (definitions in docs/metrics.md).", "",
              "| Weights | Row | Run | " + " | ".join(f"AP {n}" for n in OCCLUSION_BUCKETS) + " |",
              "|---|---|---|" + "---|" * len(OCCLUSION_BUCKETS)]
    if not any(row.run is not None for row in rows):
        lines.append("| – | – | no run yet | " + " | ".join("–" for _ in OCCLUSION_BUCKETS) + " |")
    for row in rows:
        if row.run is not None:
            occlusion = ((row.run.metrics or {}).get("occlusion") or {}).get("amodal") or {}
            values = [_number((occlusion.get(n) or {}).get("AP")) for n in OCCLUSION_BUCKETS]
            lines.append(f"| {row.weights} | {row.label} | `{row.run.name}` | " + " | ".join(values) + " |")
    lines += ["", "## Runs considered", "",
              "Every run of `dvc exp show`; when several give the same row, the newest is used.", "",
              "| Run | Rev | Weights | Row | AP | Dataset | Used |", "|---|---|---|---|---|---|---|"]
    used = {id(run) for run in chosen.values()}
    for run in runs:
        if run.workspace and not include_workspace:
            status = "workspace (not used: --include-workspace)"
        elif run.error:
            status = f"failed: {run.error}"
        elif run.metrics is None:
            status = "no metrics"
        else:
            status = "yes" if id(run) in used else "superseded by a newer run"
        ap = Row(run.weights, run.label, None, run).ours("AP")
        dataset = (run.params.get("data") or {}).get("dataset", "–") if isinstance(run.params.get("data"), dict) else "–"
        rev = "–" if run.workspace else run.rev[:7]
        lines.append(f"| `{run.name}` | {rev} | {run.weights} | {run.label} | {_number(ap)} | {dataset} | {status} |")
    return "\n".join(lines) + "\n"


# -- bar chart (Pillow: matplotlib is not a dependency) ------------------------------------------

PAPER_COLOUR, OURS_COLOUR = (150, 150, 150), (31, 119, 180)
BAR, GAP, LABEL_W, PANEL_W, MARGIN = 9, 8, 130, 300, 24


def _panel(draw: ImageDraw.ImageDraw, x0: int, y0: int, title: str, rows: list[Row],
           values: list[tuple[float | None, float | None]], lo: float, hi: float) -> None:
    """Horizontal bars (paper, ours) per row, axis from lo to hi, zero line, value labels."""
    scale = (PANEL_W - 40) / (hi - lo)

    def x(v: float) -> int:
        return int(x0 + (v - lo) * scale)

    draw.text((x0, y0 - 18), title, fill=(0, 0, 0))
    height = len(rows) * (2 * BAR + GAP)
    draw.line([(x(0), y0 - 4), (x(0), y0 + height)], fill=(0, 0, 0))
    for k, (paper, ours) in enumerate(values):
        y = y0 + k * (2 * BAR + GAP)
        for j, (value, colour) in enumerate(((paper, PAPER_COLOUR), (ours, OURS_COLOUR))):
            top = y + j * BAR
            if value is None:
                draw.text((x(0) + 3, top - 1), NOT_RUN if j else "–", fill=colour)
                continue
            a, b = sorted((x(0), x(value)))
            draw.rectangle([a, top, max(a + 1, b), top + BAR - 2], fill=colour)
            draw.text((max(a, b) + 3 if value >= 0 else a - 34, top - 1), f"{value:.1f}", fill=(60, 60, 60))


def draw_chart(rows: list[Row], path: Path) -> None:
    """AP and ΔAP vs baseline of every row: paper (grey) and ours (blue); 'not run' where we have none."""
    aps = [((r.paper or {}).get("AP"), r.ours("AP")) for r in rows]
    deltas = [(r.paper_delta, r.our_delta) for r in rows]
    ap_hi = max([v for pair in aps for v in pair if v is not None] + [1.0]) * 1.15
    d_values = [v for pair in deltas for v in pair if v is not None] + [0.0]
    d_lo, d_hi = min(d_values) * 1.3 - 5, max(d_values) * 1.3 + 5
    height = MARGIN * 2 + 30 + len(rows) * (2 * BAR + GAP)
    image = Image.new("RGB", (LABEL_W + 2 * PANEL_W + 3 * MARGIN, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    top = MARGIN + 30
    for k, row in enumerate(rows):
        draw.text((MARGIN, top + k * (2 * BAR + GAP) + 3), f"{row.weights[:8]} {row.label}", fill=(0, 0, 0))
    _panel(draw, MARGIN + LABEL_W, top, "amodal AP", rows, aps, 0.0, ap_hi)
    _panel(draw, 2 * MARGIN + LABEL_W + PANEL_W, top, "AP change vs baseline (%)", rows, deltas, d_lo, d_hi)
    draw.rectangle([MARGIN, 6, MARGIN + 10, 16], fill=PAPER_COLOUR)
    draw.text((MARGIN + 14, 6), "paper (Table 1)", fill=(0, 0, 0))
    draw.rectangle([MARGIN + 130, 6, MARGIN + 140, 16], fill=OURS_COLOUR)
    draw.text((MARGIN + 144, 6), "ours", fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_report(runs: list[Run], out: Path, chart: Path | None = None, include_workspace: bool = False,
                 paper: Mapping[str, Any] | None = None) -> list[Row]:
    """Write the markdown report (and the chart); return the rows for a summary."""
    paper = paper or load_paper_table()
    rows = build_rows(runs, paper, include_workspace)
    text = markdown(rows, runs, paper, include_workspace)
    if chart is not None:
        draw_chart(rows, chart)
        text += f"\n![AP and relative change, paper vs ours]({Path(chart).name if chart.parent == out.parent else chart})\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return rows
