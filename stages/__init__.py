"""DVC stage scripts: one per stage of dvc.yaml. Each reads params.yaml and calls the library."""
