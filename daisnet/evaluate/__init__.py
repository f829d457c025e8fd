"""Evaluation (issue 7): COCO metrics of amodal and visible masks, samples, and the ablation report.

- coco.py: ground truth from a prepared store and model outputs as COCO dicts / results files.
- metrics.py: COCOeval with the paper's Table 1 columns, per-class AP, AP by occlusion level.
- samples.py: sample images, ground truth vs prediction.
- run.py: `evaluate_predictions`, the entry point of the `evaluate` stage.
- experiments.py, report.py: `dvc exp show --json` to the Table 1 comparison with the paper.
"""

from daisnet.evaluate.run import evaluate_predictions

__all__ = ["evaluate_predictions"]
