"""Per-image depth for the pipeline: ground truth (synthetic data) or BTS predictions (§3.3)."""
