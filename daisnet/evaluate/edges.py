"""The occlusion-edge head's quality on a split (issue 33): how well it predicts its own target.

The RoI heads, given the split's ground truth at test (daisnet/model/oracle.py), compare each
detection's edge map with the eq. 24-25 target of the instance it matches (box IoU >= 0.5), in
the 28 x 28 RoI grid the head predicts and the loss trains: a pixel is an edge where the
probability, and where the target, is >= 0.5. Each image's output carries its counts
(`edge_counts`: true positives, false positives, false negatives); this module adds them up over
the split. Unmatched detections are not counted: they have no target.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from daisnet.model.occlusion_edge import edge_scores

COMPARED = ("precision", "recall", "f1")  # registered in metrics.json; the counts go to details.json


class EdgeTally:
    """Adds up the `edge_counts` of the outputs that pass through `observe`."""

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None

    def observe(self, predictions: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        for output in predictions:
            counts = output.get("edge_counts") if isinstance(output, Mapping) else None
            if counts is not None:
                counts = np.asarray(counts.detach().cpu() if hasattr(counts, "detach") else counts, dtype=np.int64)
                self.counts = counts if self.counts is None else self.counts + counts
            yield output

    def metrics(self) -> dict[str, Any] | None:
        """metrics.json's `edge` section: precision, recall and F1 of the edge pixels, and the counts;
        None when no output carried counts (no edge head, or no ground truth given)."""
        if self.counts is None:
            return None
        tp, fp, fn = (int(c) for c in self.counts)
        scores = {k: round(v, 4) for k, v in edge_scores([tp, fp, fn]).items()}
        return {**scores, "true_positives": tp, "false_positives": fp, "false_negatives": fn}
