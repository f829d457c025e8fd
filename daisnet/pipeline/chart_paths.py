"""Where the report's charts go: the main chart and the charts beside it, named after it.

Kept apart from report.py so that the CLI can name every file `daisnet report` writes (its output
guard) without loading the drawing code at start-up.
"""

from __future__ import annotations

from pathlib import Path

SIDE_CHARTS = ("depth_quality", "curves")  # ablation.png -> ablation_depth_quality.png, ablation_curves.png


def chart_beside(chart: Path, kind: str) -> Path:
    """A further chart beside the main one, `kind` one of SIDE_CHARTS."""
    if kind not in SIDE_CHARTS:
        raise ValueError(f"unknown side chart {kind!r}: one of {', '.join(SIDE_CHARTS)}")
    return chart.with_name(f"{chart.stem}_{kind}{chart.suffix}")
