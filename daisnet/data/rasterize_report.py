"""The report of a rasterize run: the JSON written beside the store (`report_path`).

Counts of images, annotations and kept instances, the skips and warnings of the plan's tally (by
rule, with the first few examples: daisnet/data/anomalies.py), images without instances, instances
per class, the canvas and the occlusion statistics. It is a DVC metrics file: strict JSON, so None
where a statistic has no value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from daisnet.data import anomalies
from daisnet.data.rasterize_plan import Plan


def report_path(out: Path) -> Path:
    """Where the report of a store goes: beside it, `train.zarr` -> `train.report.json`."""
    return out.with_name(out.name.removesuffix(".zarr") + ".report.json")


def make_report(plan_: Plan, out: Path) -> dict:
    kins = plan_.kins
    occlusion = plan_.fields["occlusion"]
    per_class = {kins.categories[c]: int((plan_.fields["category"] == c).sum()) for c in sorted(kins.categories)}
    return {
        "store": str(out),
        "source": str(kins.path),
        "release": kins.release,
        "images": len(kins.images),
        "annotations": kins.instance_count,
        "instances": len(plan_.amodal_rles),
        **anomalies.report_fields(plan_.tally),
        "images_without_instances": int((np.diff(plan_.image_ptr) == 0).sum()),
        "per_class": per_class,
        "canvas": list(plan_.canvas),
        # None, not NaN, when there is no instance: the report must stay strict JSON (DVC metrics).
        "occlusion_mean": round(float(occlusion.mean()), 6) if occlusion.size else None,
        "occlusion_above_0.2": round(float((occlusion > 0.2).mean()), 6) if occlusion.size else None,
    }
