"""Shared fixtures: tiny data made by the tests themselves (nothing is downloaded)."""

from __future__ import annotations

import os

# Deterministic, and polite to the 2-core machine the suite runs on.
os.environ.setdefault("OMP_NUM_THREADS", "1")
