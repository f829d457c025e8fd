"""The README's headline states the committed result: the amodal AP of reports/eval/metrics.json, and
which depth produced it (the default run uses the synthetic ground truth, an oracle)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_headline_ap_is_the_committed_one_and_names_its_depth() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    headline = readme.split("## ", 1)[0]  # everything before the first section
    match = re.search(r"\*\*amodal AP (\d+\.\d+)\*\*", headline)
    assert match, "the README's headline must state **amodal AP N.NN**"
    committed = json.loads((ROOT / "reports" / "eval" / "metrics.json").read_text())["amodal"]["AP"]
    assert float(match.group(1)) == round(committed, 2)
    source = yaml.safe_load((ROOT / "params.yaml").read_text())["depth"]["source"]
    words = {"ground_truth": "ground-truth depth", "bts": "BTS-predicted depth"}[source]
    assert words in headline, f"the headline must say the AP uses {words} (depth.source: {source})"
