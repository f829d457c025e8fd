"""The ablation report, rebuilt from reports/ablation/runs.jsonl alone: rows, claims and a chart.

Nothing else is read but the paper's Table 1 (paper_table1.json), so the report is the same bytes
on any machine that has the committed runs file. Per row (weights, depth source): the mean amodal AP
over the training seeds, their sample standard deviation and range, the change against the row's
baseline with the standard error of that difference, and the paper's AP beside it. Then the claims
of the paper (§5) that this setting can test, each with the paper's effect, ours and a verdict.

This module assembles the document section by section and writes it; its parts live beside it: the
paper's table and claims (claims.py), the runs' statistics and the verdict rule (run_stats.py), the
tables (report_tables.py), the chart (report_chart.py), the depth-quality section (depth_quality.py) and the
oracle rows' section (edges_and_prior.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daisnet.atomic import atomic_output
from daisnet.errors import InputError
from daisnet.pipeline.ablation import ROWS
from daisnet.pipeline.chart_paths import chart_beside
from daisnet.pipeline.claims import BTS_CLAIMS, CLAIMS, load_paper_table
from daisnet.pipeline.depth_quality import depth_quality_section, draw_quality_chart, quality_points
from daisnet.pipeline.edges_and_prior import curves_section, draw_curves_chart, edges_and_prior_section
from daisnet.pipeline.report_chart import draw_chart
from daisnet.pipeline.report_tables import claims_table, occlusion_table, rows_table, runs_table
from daisnet.pipeline.run_stats import (VERDICT_RULE, RowStats, bts_sources, group, owed_commands, row_order,
                                        seeds_owed, separate_depth_models, with_shared_baseline)

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


def bts_description(records: Sequence[Mapping[str, Any]], source: str) -> str:
    """The BTS model of a source in words: its val depth quality, from the runs' records."""
    quality = next((r["depth_quality"] for r in records if r["depth_source"] == source and "depth_quality" in r), None)
    if quality is None:
        return "BTS trained by the pipeline"
    return (f"val abs rel {quality['abs_rel']:.3f}, δ<1.25 {quality['delta1']:.3f}, "
            f"normal angle {quality['normal_angle']:.1f}°")


def owed_section(stats: Mapping[tuple[str, str, str], RowStats]) -> list[str]:
    """The seeds the study's rule still asks for, as the commands that run them."""
    owed = seeds_owed(stats)
    lines = ["## Seeds still owed", ""]
    if owed:
        lines += ["By the study's rule (every claim's rows 2 seeds; 3 where a claim's two rows' ranges overlap or "
                  "a row is under 10 AP), these runs are still to do; each command skips what is recorded:", "",
                  "```", *owed_commands(owed, [r.name for r in ROWS]), "```", ""]
    else:
        lines += ["None: every claim's rows have the seeds the study's rule asks for.", ""]
    return lines


def markdown(records: Sequence[Mapping[str, Any]], paper: Mapping[str, Any], runs_file: str, chart: str | None,
             quality_chart: str | None = None, curve_records: Sequence[Mapping[str, Any]] = (),
             curves_chart: str | None = None) -> str:
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
                  *claims_table(BTS_CLAIMS, with_shared_baseline(stats), source, paper), ""]
    lines += ["## Rows, ground-truth depth", "", *rows_table(stats, "ground_truth", paper, order), ""]
    for source in bts_sources(stats):
        lines += [f"## Rows, BTS-predicted depth (`{source}`)", "", *rows_table(stats, source, paper, order), ""]
    lines += depth_quality_section(records, chart_link=quality_chart)
    lines += edges_and_prior_section(stats, curve_records)
    lines += curves_section(curve_records, curves_chart)
    lines += owed_section(stats)
    lines += ["## Amodal AP by occlusion level (means over seeds)", "", *occlusion_table(stats, order)]
    lines += ["", "## Every run", "", *runs_table(records, order)]
    if chart:
        lines += ["", f"![amodal AP per row, mean and range over seeds, paper beside]({chart})"]
    return "\n".join(lines) + "\n"


def write_report(records: Sequence[Mapping[str, Any]], out: Path, chart: Path | None, runs_file: str,
                 paper: Mapping[str, Any] | None = None) -> None:
    """The report and its chart, each landing whole or not at all (the report is built before either is written)."""
    if chart is not None and out.resolve() == chart.resolve():
        raise InputError("the report and the chart are the same file: give `--chart` another path", path=out)
    paper = paper or load_paper_table()
    records = separate_depth_models(records)
    # Runs that kept their models along the way (the `long` profile) are curves, not rows: a 3000-iteration
    # run is never averaged with the 1000-iteration runs of its row.
    curve_records = [r for r in records if r.get("curve")]
    records = [r for r in records if not r.get("curve")]
    link = None if chart is None else (chart.name if chart.parent == out.parent else str(chart))
    quality = None if chart is None or not quality_points(records) else chart_beside(chart, "depth_quality")
    quality_link = None if quality is None else (quality.name if quality.parent == out.parent else str(quality))
    curves = None if chart is None or not curve_records else chart_beside(chart, "curves")
    curves_link = None if curves is None else (curves.name if curves.parent == out.parent else str(curves))
    text = markdown(records, paper, runs_file, link, quality_link, curve_records, curves_link)
    if chart is not None:
        draw_chart(records, paper, chart)
    if quality is not None:
        draw_quality_chart(records, quality)
    if curves is not None:
        draw_curves_chart(curve_records, curves)
    with atomic_output(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
