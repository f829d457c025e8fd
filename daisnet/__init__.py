"""DAISnet: depth-aware amodal instance segmentation, as a reproducible pipeline.

The core library (everything here but `daisnet.pipeline`) knows nothing of DVC: `stages/` reads
params.yaml and calls it. `daisnet.pipeline` is the application layer: the `daisnet` command and the
code that uses DVC (docs/architecture.md; tests/test_layering.py keeps it so).
"""

__version__ = "0.1.0"
