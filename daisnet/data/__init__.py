"""Data: KINS categories and I/O, the synthetic scenes, Zarr layouts, torch datasets."""
