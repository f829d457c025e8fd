"""DAISnet: depth-aware amodal instance segmentation, as a reproducible pipeline.

The library knows nothing of DVC: `stages/` reads params.yaml and calls it; `daisnet.cli` exposes
every stage as a command with explicit paths.
"""

__version__ = "0.1.0"
