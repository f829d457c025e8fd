"""Our side of the ablation report: the runs grouped per row, their statistics, and the verdict rule.

Per (weights, depth source, row): the seeds' amodal APs with their mean and sample standard deviation;
the difference of two rows with its standard error; a claim's verdict from the two rows' seed ranges;
and the seeds the study's rule still asks for.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from daisnet.pipeline.ablation import ROWS
from daisnet.pipeline.claims import BTS_CLAIMS, CLAIMS
from daisnet.pipeline.depth_quality import BASELINE

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
    shared = with_shared_baseline(stats)
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


def row_order(stats: Mapping[tuple[str, str, str], RowStats]) -> list[str]:
    known = [r.name for r in ROWS]
    names = {key[2] for key in stats}
    return [n for n in known if n in names] + sorted(names - set(known))


def with_shared_baseline(stats: Mapping[tuple[str, str, str], RowStats]) -> dict[tuple[str, str, str], RowStats]:
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
