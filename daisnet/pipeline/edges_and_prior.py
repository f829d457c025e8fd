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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from daisnet.pipeline.run_stats import RowStats, difference, verdict

DEPTH = "ground_truth"


@dataclass(frozen=True)
class Part:
    claim: str
    learned: str  # the study row with the learned part
    oracle: str  # the same row with the part's ground truth
    part: str  # the learned part, in words
    reader: str  # what reads it


PARTS = (
    Part("occlusion edges help: R+O > R", "R+O", "R+O*", "edge head", "occlusion refinement"),
    Part("the 3D shape prior helps: R+S > R", "R+S", "R+S*", "shape retrieval (the codewords of the coarse mask)",
         "prior's fusion"),
)


def _row(stats: Mapping[tuple[str, str, str], RowStats], name: str) -> RowStats | None:
    return stats.get(("random", DEPTH, name))


def _delta(a: RowStats | None, b: RowStats | None) -> str:
    if a is None or b is None:
        return "–"
    diff, se = difference(a, b)
    return f"{diff:+.1f} ± {se:.1f}" if min(a.n, b.n) > 1 else f"{diff:+.1f} (one seed)"


def _edge_f1(row: RowStats | None) -> str:
    value = None if row is None else row.metric("edge", "f1")
    return "–" if value is None else f"{value:.3f}"


def diagnosis(part: Part, base: RowStats | None, learned: RowStats | None, oracle: RowStats | None) -> str:
    """Which part limits the claim, in one sentence, from the three rows' verdicts."""
    oracle_gain, learned_gain = verdict(oracle, base, +1), verdict(learned, base, +1)
    if oracle_gain in ("not run", "too few seeds"):
        return (f"not yet known: {part.oracle} has {0 if oracle is None else oracle.n} seed(s) "
                f"(`daisnet ablation --rows '{part.oracle}' --seeds 0,1`)")
    if oracle_gain == "holds" and learned_gain != "holds":
        return (f"**the {part.part} limits**: fed the ground truth, the {part.reader} gains "
                f"{_delta(oracle, base)} AP over R; the learned {part.part} gives {_delta(learned, base)}")
    if oracle_gain == "holds":
        return (f"**the claim holds**; a perfect {part.part} would add {_delta(oracle, learned)} AP more")
    return (f"**the {part.reader} (or the schedule) limits**: even the ground truth gives "
            f"{_delta(oracle, base)} AP over R ({oracle_gain}), so no better {part.part} can help in this setting")


def edges_and_prior_section(stats: Mapping[tuple[str, str, str], RowStats]) -> list[str]:
    base = _row(stats, "R")
    lines = ["## Occlusion edges and the shape prior", "",
             "Each learned part beside its oracle: the same model fed that part's ground truth, at training and at "
             "test (`model.oracle`; docs/ablation.md, \"Oracle rows\"). Ground-truth depth, means over seeds; edge F1: "
             "the edge head's pixels against its own target on val (docs/metrics.md).", "",
             "| row | seeds | amodal AP: mean | min-max | Δ vs R ± s.e. | Δ vs the learned row | edge F1 |",
             "|---|---|---|---|---|---|---|"]
    for part in PARTS:
        learned, oracle = _row(stats, part.learned), _row(stats, part.oracle)
        for name, row, against in ((part.learned, learned, None), (part.oracle, oracle, learned)):
            if row is None:
                lines.append(f"| {name} | – | not run | – | – | – | – |")
                continue
            lines.append(f"| {name} | {row.n} | {row.mean:.2f} | {min(row.aps):.1f}-{max(row.aps):.1f} | "
                         f"{_delta(row, base)} | {'–' if against is None else _delta(row, against)} | {_edge_f1(row)} |")
    lines += ["", "| claim | verdict (ours, vs R) | which part limits |", "|---|---|---|"]
    for part in PARTS:
        learned, oracle = _row(stats, part.learned), _row(stats, part.oracle)
        lines.append(f"| {part.claim} | {verdict(learned, base, +1)} | {diagnosis(part, base, learned, oracle)} |")
    return lines + [""]
