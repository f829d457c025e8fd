"""The paper's side of the ablation report: its Table 1 (paper_table1.json) and the claims of its §5.

A claim sets one row against another with the direction the paper gives it; the paper's own effect is
read from the Table 1 block of the claim's weights (with a stated fallback where that block lacks a row).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
