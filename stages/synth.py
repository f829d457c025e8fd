"""Stage `synth`: render the synthetic KINS-format dataset into data/raw/synth."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from daisnet.data.synth.dataset import config_from_params, format_histogram, generate
from stages.common import run_stage

OUT = "data/raw/synth"
REPORT = Path("reports/synth.json")


def main(params: dict) -> None:
    config = config_from_params(params["synth"], seed=params["seed"])
    report = generate(config, OUT, progress=sys.stderr.isatty())
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2))
    for split in ("train", "val"):
        print(f"{split}: {report[split]['images']} images, {report[split]['instances']} instances, "
              f"per class {report[split]['per_class']}")
        print(format_histogram(report[split]["occlusion"]))


if __name__ == "__main__":
    run_stage(main)
