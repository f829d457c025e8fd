"""The ablation report, rebuilt from reports/ablation/runs.jsonl alone: rows, claims and a chart.

Nothing else is read but the paper's Table 1 (paper_table1.json), so the report is the same bytes
on any machine that has the committed runs file. Per row (weights, depth source): the mean amodal AP
over the training seeds, their sample standard deviation and range, the change against the row's
baseline with the standard error of that difference, and the paper's AP beside it. Then the claims
of the paper (§5) that this setting can test, each with the paper's effect, ours and a verdict.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from daisnet.atomic import atomic_output
from daisnet.errors import InputError
from daisnet.evaluate.metrics import OCCLUSION_BUCKETS
from daisnet.pipeline.ablation import ROWS
from daisnet.pipeline.depth_quality import BASELINE, depth_quality_section, draw_quality_chart, quality_points

PAPER_TABLE = Path(__file__).with_name("paper_table1.json")
DEFAULT_ROW = "R+DN+N"  # the pipeline's default inputs (params.yaml model.inputs)


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


@dataclass(frozen=True)
class Claim:
    """`row` against `against`: the paper says `row` is better (`expect` +1), worse (-1) or either (0)."""

    text: str
    row: str
    against: str
    expect: int
    paper_weights: str = "random"  # the Table 1 block the paper's effect is read from
    note: str = ""


CLAIMS: tuple[Claim, ...] = (
    Claim("regional depth helps RGB: R+D > R", "R+D", "R", +1),
    Claim("log depth instead of regional maps: R+DN vs R+D", "R+DN", "R+D", 0),
    Claim("depth alone is worse than RGB: D < R", "D", "R", -1),
    Claim("normals alone vs RGB: N vs R", "N", "R", -1, note="N is a placed row (docs/fidelity.md, row 27)"),
    Claim("depth and normals without RGB vs RGB: D+N vs R", "D+N", "R", -1, note="D+N is a placed row"),
    Claim("normals beat regional depth: R+N > R+D", "R+N", "R+D", +1, "imagenet",
          "the paper has R+N only with ImageNet weights"),
    Claim("a 21-px normal kernel is worse: R+NM < R+N", "R+NM", "R+N", -1, "imagenet"),
    Claim("a 71-px normal kernel is worse: R+NL < R+N", "R+NL", "R+N", -1, "imagenet"),
    Claim("normals on top of regional depth: R+D+N vs R+D", "R+D+N", "R+D", 0),
    Claim("occlusion edges give the largest gain: R+O > R", "R+O", "R", +1),
    Claim("occlusion edges on top of depth: R+D+O vs R+D", "R+D+O", "R+D", +1),
    Claim("the 3D shape prior helps: R+S > R", "R+S", "R", +1, "imagenet",
          "the paper's ImageNet block has no R row: its effect is R+S against R+D"),
    Claim("visible-only depth in the shape code is worse: R+SV < R+S", "R+SV", "R+S", -1, "imagenet"),
    Claim("one regional map instead of four: R+D1 vs R+D", "R+D1", "R+D", -1, "imagenet"),
    Claim("a 1 m regional step instead of 3 m: R+DS1 vs R+D", "R+DS1", "R+D", -1, "imagenet"),
)
# With BTS-predicted depth: how much of each gain survives a depth network's errors.
BTS_CLAIMS: tuple[Claim, ...] = (
    Claim("R+D > R with BTS depth", "R+D", "R", +1),
    Claim("R+N > R with BTS depth", "R+N", "R", +1, "imagenet",
          "the paper has R+N only with ImageNet weights, and no ImageNet R: its effect is R+N vs R+D"),
    Claim("R+O > R with BTS depth", "R+O", "R", +1),
    Claim(f"the default {DEFAULT_ROW} > R with BTS depth", DEFAULT_ROW, "R", +1,
          note="the paper has no DN+N row"),
)
# Claims against R whose row the paper ran with ImageNet weights only: its ImageNet baseline is R+D.
PAPER_FALLBACK = {("R+S", "R", "imagenet"): ("R+S", "R+D"), ("R+N", "R", "imagenet"): ("R+N", "R+D")}

VERDICT_RULE = (
    "Verdict rule: the paper's direction is the sign of its effect when that is at least 0.5 AP (else "
    "the paper claims no clear difference). Our two rows' seed ranges (min-max of amodal AP over their "
    "training seeds) are compared: if they overlap, the difference is **within noise**; if not, the "
    "claim **holds** when our difference has the paper's direction and is **reversed** when it has the "
    "other; a clear difference where the paper has none **differs**. A row without runs: **not run**; "
    "a row with one seed: **too few seeds** (no spread to judge by). "
    "± is the standard error of the difference of the means, sqrt(s_a²/n_a + s_b²/n_b), with s the "
    "sample standard deviation over seeds.")


@dataclass
class RowStats:
    row: str
    depth_source: str
    weights: str
    aps: list[float]
    records: list[Mapping[str, Any]]

    @property
    def n(self) -> int:
        return len(self.aps)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.aps)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.aps) if self.n > 1 else 0.0

    def metric(self, *path: str) -> float | None:
        values = []
        for record in self.records:
            node: Any = record["metrics"]
            for key in path:
                node = node.get(key) if isinstance(node, Mapping) else None
            if isinstance(node, (int, float)):
                values.append(float(node))
        return statistics.fmean(values) if values else None


def group(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, str], RowStats]:
    """Records by (weights, depth source, row), seeds in order."""
    grouped: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r["weights"], r["depth_source"], r["row"], r["seed"])):
        grouped[(record["weights"], record["depth_source"], record["row"])].append(record)
    return {key: RowStats(key[2], key[1], key[0], [float(r["metrics"]["amodal"]["AP"]) for r in rs], rs)
            for key, rs in grouped.items()}


def _with_spread(a: RowStats, b: RowStats) -> str:
    """The difference of the means, ± its standard error when both rows have 2 seeds or more."""
    diff, se = difference(a, b)
    return f"{diff:+.1f} ± {se:.1f}" if min(a.n, b.n) > 1 else f"{diff:+.1f} (one seed: no spread)"


def difference(a: RowStats, b: RowStats) -> tuple[float, float]:
    """(mean a - mean b, standard error of that difference)."""
    return a.mean - b.mean, math.sqrt(a.sd ** 2 / a.n + b.sd ** 2 / b.n)


def verdict(a: RowStats | None, b: RowStats | None, expect: int) -> str:
    """`expect`: the sign the paper's effect claims (+1, -1; 0 when it claims no clear difference)."""
    if a is None or b is None:
        return "not run"
    if min(a.n, b.n) < 2:
        return "too few seeds"
    if min(a.aps) <= max(b.aps) and min(b.aps) <= max(a.aps):
        return "within noise"
    if expect == 0:
        return "differs"
    return "holds" if (a.mean > b.mean) == (expect > 0) else "reversed"


MIN_SEEDS, OVERLAP_SEEDS, LOW_AP = 2, 3, 10.0


def seeds_owed(stats: Mapping[tuple[str, str, str], RowStats]) -> dict[tuple[str, str], int]:
    """How many seeds each claim's row still needs, by the study's rule (issue 23, point 4): every row 2;
    3 for both rows of a claim whose seed ranges overlap, and for a row under 10 AP, so that "worse than R"
    rests on 3 seeds. Keys (depth source, row), values the seed count to reach; rows already there are left out."""
    target: dict[tuple[str, str], int] = {}
    shared = _with_shared_baseline(stats)
    for claims, depth, table in ((CLAIMS, "ground_truth", stats),
                                 *((BTS_CLAIMS, source, shared) for source in bts_sources(stats))):
        for claim in claims:
            rows = {name: table.get(("random", depth, name)) for name in (claim.row, claim.against)}
            # R reads no depth: the BTS claims share its ground-truth runs.
            keys = {name: ("ground_truth" if name == BASELINE else depth, name) for name in rows}
            need = {name: MIN_SEEDS for name in rows}
            a, b = rows[claim.row], rows[claim.against]
            if verdict(a, b, 0) == "within noise":
                need = {name: OVERLAP_SEEDS for name in rows}
            for name, row in rows.items():
                if row is not None and row.n >= MIN_SEEDS and row.mean < LOW_AP:
                    need[name] = OVERLAP_SEEDS
            for name, count in need.items():
                target[keys[name]] = max(target.get(keys[name], 0), count)
    have = {(depth, name): row.n for (weights, depth, name), row in stats.items() if weights == "random"}
    return {key: count for key, count in target.items() if have.get(key, 0) < count}


def owed_commands(owed: Mapping[tuple[str, str], int], order: Sequence[str]) -> list[str]:
    """One `daisnet ablation` line per (depth source, seed count); it skips the runs already recorded."""
    rank = {name: i for i, name in enumerate(order)}
    lines = []
    for depth in sorted({d for d, _ in owed}, key=lambda d: (d != "ground_truth", d)):
        for count in sorted({c for (d, _), c in owed.items() if d == depth}):
            rows = sorted((n for (d, n), c in owed.items() if d == depth and c == count),
                          key=lambda n: (rank.get(n, len(rank)), n))
            lines.append(f"daisnet ablation --rows {','.join(rows)} --depth {depth} "
                         f"--seeds {','.join(map(str, range(count)))}")
    return lines


def expected_sign(claim: Claim, effect: float | None) -> int:
    """The paper's direction: the sign of its effect when that is at least 0.5 AP, else none (0);
    the claim's own when the paper has no number for it."""
    if effect is None:
        return claim.expect
    return (1 if effect > 0 else -1) if abs(effect) >= 0.5 else 0


def paper_ap(paper: Mapping[str, Any], weights: str, label: str) -> float | None:
    for row in paper["rows"]:
        if row.get("label") == label and row["weights"] == weights:
            return float(row["AP"])
    return None


def paper_effect(paper: Mapping[str, Any], claim: Claim) -> tuple[float | None, str]:
    row, against = PAPER_FALLBACK.get((claim.row, claim.against, claim.paper_weights), (claim.row, claim.against))
    a, b = paper_ap(paper, claim.paper_weights, row), paper_ap(paper, claim.paper_weights, against)
    if a is None or b is None:
        return None, "–"
    return a - b, f"{a - b:+.2f} ({row} {a:.2f} vs {against} {b:.2f}, {claim.paper_weights})"


def _cell(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _seeds(stats: RowStats) -> str:
    return ", ".join(str(r["seed"]) for r in stats.records)


def claims_table(claims: Sequence[Claim], stats: Mapping[tuple[str, str, str], RowStats], depth_source: str,
                 paper: Mapping[str, Any]) -> list[str]:
    lines = ["| claim | paper's effect (AP) | ours: difference ± s.e. (n seeds) | our means | verdict |",
             "|---|---|---|---|---|"]
    for claim in claims:
        a = stats.get(("random", depth_source, claim.row))
        b = stats.get(("random", depth_source, claim.against))
        effect, effect_text = paper_effect(paper, claim)
        if a is not None and b is not None:
            ours = f"{_with_spread(a, b)} ({a.n} vs {b.n})"
            means = f"{claim.row} {a.mean:.1f} vs {claim.against} {b.mean:.1f}"
        else:
            ours, means = "–", "not run: " + ", ".join(r for r, s in ((claim.row, a), (claim.against, b)) if s is None)
        note = f" ({claim.note})" if claim.note else ""
        lines.append(f"| {claim.text}{note} | {effect_text} | {ours} | {means} | "
                     f"**{verdict(a, b, expected_sign(claim, effect))}** |")
    return lines


def rows_table(stats: Mapping[tuple[str, str, str], RowStats], depth_source: str, paper: Mapping[str, Any],
               order: Sequence[str]) -> list[str]:
    header = ["row", "R", "D", "N", "O", "S", "seeds", "amodal AP: mean", "sd", "min-max", "ΔAP vs R ± s.e.",
              "paper AP", "paper Δ vs its baseline", "AP50", "AP75", "visible AP"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = stats.get(("random", depth_source, BASELINE)) or stats.get(("random", "ground_truth", BASELINE))
    for name in order:
        row = stats.get(("random", depth_source, name))
        if row is None:
            continue
        marks = component_marks(name if name != DEFAULT_ROW else "R+DN+N")
        delta = "baseline" if name == BASELINE else (
            "–" if base is None else _with_spread(row, base))
        p_text, p_delta = paper_cells(paper, name)
        cells = [name, *(marks[c] for c in "RDNOS"), _seeds(row), f"{row.mean:.2f}", f"{row.sd:.2f}" if row.n > 1 else "–",
                 f"{min(row.aps):.1f}-{max(row.aps):.1f}", delta, p_text, p_delta,
                 _cell(row.metric("amodal", "AP50")), _cell(row.metric("amodal", "AP75")),
                 _cell(row.metric("visible", "AP"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def paper_cells(paper: Mapping[str, Any], name: str) -> tuple[str, str]:
    """The paper's AP of a row and its change against the baseline of its block: R for random
    weights; R+D for ImageNet (the paper prints no ImageNet R row and calls R+D its baseline)."""
    for weights in ("random", "imagenet"):
        value = paper_ap(paper, weights, name)
        if value is not None:
            base_name = paper["baselines"][weights]
            base = paper_ap(paper, weights, base_name)
            tag = "" if weights == "random" else " (ImageNet)"
            delta = "baseline" if name == base_name else ("–" if base is None else f"{value - base:+.2f} vs {base_name}")
            return f"{value:.2f}{tag}", delta
    return "–", "–"


def row_order(stats: Mapping[tuple[str, str, str], RowStats]) -> list[str]:
    known = [r.name for r in ROWS]
    names = {key[2] for key in stats}
    return [n for n in known if n in names] + sorted(names - set(known))


PREPARED_STORES = ("data/prepared/train.zarr", "data/prepared/val.zarr")


def data_state(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Which images and labels the runs trained and were scored on (dvc.lock md5 of the prepared stores):
    rows are only comparable within one state, so a mixed file is flagged rather than averaged silently."""
    states: dict[tuple[str, ...], list[str]] = {}
    for r in records:
        key = tuple(str(r.get("data", {}).get(store, "?"))[:8] for store in PREPARED_STORES)
        states.setdefault(key, []).append(f"{r['row']} seed {r['seed']}")
    names = " / ".join(PREPARED_STORES)
    if len(states) == 1:
        (key,) = states
        return [f"Every run read the same data: {names} at md5 {' / '.join(key)} (dvc.lock)."]
    lines = [f"**Warning: the runs read {len(states)} different data states** ({names}, dvc.lock md5); "
             "rows are comparable only within one state:", ""]
    for key, runs in sorted(states.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"- {' / '.join(key)}: {len(runs)} runs ({', '.join(runs)})")
    return lines


def code_line(commits: Sequence[str]) -> str:
    """The code the runs used: a few commits by name, many by count (each run's is in the last table)."""
    if len(commits) <= 3:
        return f"code {', '.join(c[:12] for c in commits) or '–'}"
    return f"code at {len(commits)} commits, each run's in the last table"


def markdown(records: Sequence[Mapping[str, Any]], paper: Mapping[str, Any], runs_file: str, chart: str | None,
             quality_chart: str | None = None) -> str:
    stats = group(records)
    order = row_order(stats)
    profiles = sorted({r["profile"] for r in records})
    commits = sorted({r["commit"] for r in records})
    iterations = sorted({int(r["iterations"]) for r in records})
    weights = sorted({r["weights"] for r in records})
    lines = [
        "# Ablation study: the paper's Table 1 claims, measured",
        "",
        f"Generated by `daisnet report` from `{runs_file}` alone ({len(records)} runs; profile "
        f"{', '.join(profiles) or '–'}; {', '.join(map(str, iterations)) or '–'} iterations; {code_line(commits)})."
        " Amodal mask AP x100 on the synthetic val split "
        f"(pycocotools segm; docs/metrics.md), {' and '.join(weights)} initial weights. The paper's numbers "
        "are its Table 1 (daisnet/pipeline/paper_table1.json), on its own data and schedule: compare effects, not levels.",
        "",
        *data_state(records),
        "",
        "## Claims (ground-truth depth)",
        "",
        *claims_table(CLAIMS, stats, "ground_truth", paper),
        "",
        VERDICT_RULE,
        "",
    ]
    for source in bts_sources(stats):
        lines += [f"## Claims with BTS-predicted depth (`{source}`: {bts_description(records, source)})", "",
                  "R uses no depth: its runs with ground-truth depth are its baseline here too.", "",
                  *claims_table(BTS_CLAIMS, _with_shared_baseline(stats), source, paper), ""]
    lines += ["## Rows, ground-truth depth", "", *rows_table(stats, "ground_truth", paper, order), ""]
    for source in bts_sources(stats):
        lines += [f"## Rows, BTS-predicted depth (`{source}`)", "", *rows_table(stats, source, paper, order), ""]
    lines += depth_quality_section(records, chart_link=quality_chart)
    owed = seeds_owed(stats)
    lines += ["## Seeds still owed", ""]
    if owed:
        lines += ["By the study's rule (every claim's rows 2 seeds; 3 where a claim's two rows' ranges overlap or "
                  "a row is under 10 AP), these runs are still to do; each command skips what is recorded:", "",
                  "```", *owed_commands(owed, [r.name for r in ROWS]), "```", ""]
    else:
        lines += ["None: every claim's rows have the seeds the study's rule asks for.", ""]
    lines += ["## Amodal AP by occlusion level (means over seeds)", "",
              "| row | depth | " + " | ".join(OCCLUSION_BUCKETS) + " |", "|---|---|" + "---|" * len(OCCLUSION_BUCKETS)]
    for (weights, depth, name), row in sorted(stats.items(), key=lambda kv: (kv[0][1], order.index(kv[0][2]))):
        values = [_cell(row.metric("occlusion", "amodal", bucket, "AP")) for bucket in OCCLUSION_BUCKETS]
        lines.append(f"| {name} | {depth} | " + " | ".join(values) + " |")
    lines += ["", "## Every run", "",
              "| row | depth | seed | amodal AP | visible AP | iterations | training s | commit |",
              "|---|---|---|---|---|---|---|---|"]
    for record in sorted(records, key=lambda r: (r["depth_source"], order.index(r["row"]), r["seed"])):
        lines.append(f"| {record['row']} | {record['depth_source']} | {record['seed']} | "
                     f"{record['metrics']['amodal']['AP']:.2f} | {record['metrics']['visible']['AP']:.2f} | "
                     f"{record['iterations']} | {record['train_seconds']:.0f} | {record['commit'][:12]} |")
    if chart:
        lines += ["", f"![amodal AP per row, mean and range over seeds, paper beside]({chart})"]
    return "\n".join(lines) + "\n"


def _with_shared_baseline(stats: Mapping[tuple[str, str, str], RowStats]) -> dict[tuple[str, str, str], RowStats]:
    """R reads no depth: its ground-truth runs are its runs under every other depth source too."""
    shared = dict(stats)
    for source in {key[1] for key in stats} - {"ground_truth"}:
        if ("random", source, BASELINE) not in shared and ("random", "ground_truth", BASELINE) in shared:
            shared[("random", source, BASELINE)] = stats[("random", "ground_truth", BASELINE)]
    return shared


def bts_sources(stats: Mapping[tuple[str, str, str], RowStats]) -> list[str]:
    """The BTS depth sources with runs (`bts:N`), shortest training first."""
    return sorted({key[1] for key in stats if key[1].startswith("bts:")},
                  key=lambda s: (int(s.split(":")[1].split("@")[0]), s))


def bts_description(records: Sequence[Mapping[str, Any]], source: str) -> str:
    """The BTS model of a source in words: its val depth quality, from the runs' records."""
    quality = next((r["depth_quality"] for r in records if r["depth_source"] == source and "depth_quality" in r), None)
    if quality is None:
        return "BTS trained by the pipeline"
    return (f"val abs rel {quality['abs_rel']:.3f}, δ<1.25 {quality['delta1']:.3f}, "
            f"normal angle {quality['normal_angle']:.1f}°")


# -- chart (Pillow: the same bytes everywhere) -----------------------------------------------------

OURS, RANGE, PAPER = (31, 119, 180), (20, 60, 100), (160, 160, 160)


def draw_chart(records: Sequence[Mapping[str, Any]], paper: Mapping[str, Any], path: Path) -> None:
    """Per row and depth source: our mean AP (bar) with the seeds' range (whisker), the paper's AP (grey)."""
    stats = group(records)
    order = row_order(stats)
    keys = sorted(stats, key=lambda k: (k[1], order.index(k[2])))
    top = max([max(stats[k].aps) for k in keys] + [p["AP"] for p in paper["rows"]] + [1.0]) * 1.1
    label_w, width, bar, gap, margin = 150, 420, 8, 6, 20
    height = margin * 2 + 24 + len(keys) * (2 * bar + gap)
    image = Image.new("RGB", (label_w + width + 2 * margin, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)

    def x(value: float) -> int:
        return int(margin + label_w + value / top * (width - 40))

    draw.rectangle([margin, 6, margin + 10, 16], fill=OURS)
    draw.text((margin + 14, 6), "ours: mean, seeds' range", fill=(0, 0, 0))
    draw.rectangle([margin + 190, 6, margin + 200, 16], fill=PAPER)
    draw.text((margin + 204, 6), "paper (random weights where it has the row)", fill=(0, 0, 0))
    for k, key in enumerate(keys):
        row = stats[key]
        y = margin + 24 + k * (2 * bar + gap)
        label = row.row + ("" if row.depth_source == "ground_truth" else f" ({row.depth_source})")
        draw.text((margin, y + 2), label, fill=(0, 0, 0))
        draw.rectangle([x(0), y, x(row.mean), y + bar - 1], fill=OURS)
        draw.line([(x(min(row.aps)), y + bar // 2), (x(max(row.aps)), y + bar // 2)], fill=RANGE, width=2)
        draw.text((x(max(row.aps)) + 4, y - 2), f"{row.mean:.1f}", fill=(60, 60, 60))
        p = paper_ap(paper, "random", row.row) or paper_ap(paper, "imagenet", row.row)
        if p is not None:
            draw.rectangle([x(0), y + bar, x(p), y + 2 * bar - 2], fill=PAPER)
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")


def separate_depth_models(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records, with a depth source whose runs used two or more different depth models (a BTS
    retrained with other settings under the same `bts:N`) named apart, `bts:N@<fingerprint>`: runs of
    different models are never averaged."""
    models: dict[str, set[str]] = defaultdict(set)
    for record in records:
        models[record["depth_source"]].add((record.get("depth_model") or {}).get("fingerprint", ""))
    mixed = {source for source, fingerprints in models.items() if len(fingerprints) > 1}

    def named(record: Mapping[str, Any]) -> Mapping[str, Any]:
        fingerprint = (record.get("depth_model") or {}).get("fingerprint", "")[:6] or "none"
        return {**record, "depth_source": f"{record['depth_source']}@{fingerprint}"}

    return [named(r) if r["depth_source"] in mixed else r for r in records]


def write_report(records: Sequence[Mapping[str, Any]], out: Path, chart: Path | None, runs_file: str,
                 paper: Mapping[str, Any] | None = None) -> None:
    """The report and its chart, each landing whole or not at all (the report is built before either is written)."""
    if chart is not None and out.resolve() == chart.resolve():
        raise InputError("the report and the chart are the same file: give `--chart` another path", path=out)
    paper = paper or load_paper_table()
    records = separate_depth_models(records)
    link = None if chart is None else (chart.name if chart.parent == out.parent else str(chart))
    # The depth-quality chart sits beside the main one: ablation.png -> ablation_depth_quality.png
    quality = None if chart is None or not quality_points(records) else chart.with_name(
        f"{chart.stem}_depth_quality{chart.suffix}")
    quality_link = None if quality is None else (quality.name if quality.parent == out.parent else str(quality))
    text = markdown(records, paper, runs_file, link, quality_link)
    if chart is not None:
        draw_chart(records, paper, chart)
    if quality is not None:
        draw_quality_chart(records, quality)
    with atomic_output(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
