"""The application layer: the `daisnet` command and everything that knows DVC.

The command line (`cli.py`, which calls the stage functions of `stages/`), the dvclive logger of
the train stage (`live.py`), and the ablation study (`ablation.py`, `experiments.py`, `study.py`)
with its report (`report.py`, built from `claims.py` the paper's side, `run_stats.py` ours,
`report_tables.py`, `report_chart.py` and `depth_quality.py`). Nothing else in `daisnet` imports this package
(tests/test_layering.py): the core library runs without DVC.
"""
