"""The ablation report's markdown tables: the claims with their verdicts, the rows beside the paper's,
amodal AP by occlusion level, and every run. Each returns its lines, header first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daisnet.evaluate.metrics import OCCLUSION_BUCKETS
from daisnet.pipeline.claims import DEFAULT_ROW, Claim, component_marks, expected_sign, paper_cells, paper_effect
from daisnet.pipeline.depth_quality import BASELINE
from daisnet.pipeline.run_stats import RowStats, difference, verdict


def with_spread(a: RowStats, b: RowStats) -> str:
    """The difference of the means, ± its standard error when both rows have 2 seeds or more."""
    diff, se = difference(a, b)
    return f"{diff:+.1f} ± {se:.1f}" if min(a.n, b.n) > 1 else f"{diff:+.1f} (one seed: no spread)"


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
            ours = f"{with_spread(a, b)} ({a.n} vs {b.n})"
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
            "–" if base is None else with_spread(row, base))
        p_text, p_delta = paper_cells(paper, name)
        cells = [name, *(marks[c] for c in "RDNOS"), _seeds(row), f"{row.mean:.2f}", f"{row.sd:.2f}" if row.n > 1 else "–",
                 f"{min(row.aps):.1f}-{max(row.aps):.1f}", delta, p_text, p_delta,
                 _cell(row.metric("amodal", "AP50")), _cell(row.metric("amodal", "AP75")),
                 _cell(row.metric("visible", "AP"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def occlusion_table(stats: Mapping[tuple[str, str, str], RowStats], order: Sequence[str]) -> list[str]:
    """Each row's amodal AP per occlusion level, means over seeds."""
    lines = ["| row | depth | " + " | ".join(OCCLUSION_BUCKETS) + " |", "|---|---|" + "---|" * len(OCCLUSION_BUCKETS)]
    for (weights, depth, name), row in sorted(stats.items(), key=lambda kv: (kv[0][1], order.index(kv[0][2]))):
        values = [_cell(row.metric("occlusion", "amodal", bucket, "AP")) for bucket in OCCLUSION_BUCKETS]
        lines.append(f"| {name} | {depth} | " + " | ".join(values) + " |")
    return lines


def runs_table(records: Sequence[Mapping[str, Any]], order: Sequence[str]) -> list[str]:
    """One line per run: its row, depth source, seed, APs, schedule and commit."""
    lines = ["| row | depth | seed | amodal AP | visible AP | iterations | training s | commit |",
             "|---|---|---|---|---|---|---|---|"]
    for record in sorted(records, key=lambda r: (r["depth_source"], order.index(r["row"]), r["seed"])):
        lines.append(f"| {record['row']} | {record['depth_source']} | {record['seed']} | "
                     f"{record['metrics']['amodal']['AP']:.2f} | {record['metrics']['visible']['AP']:.2f} | "
                     f"{record['iterations']} | {record['train_seconds']:.0f} | {record['commit'][:12]} |")
    return lines
