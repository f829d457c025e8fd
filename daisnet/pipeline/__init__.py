"""The application layer: the `daisnet` command and everything that knows DVC.

The command line (`cli.py`, which calls the stage functions of `stages/`), the dvclive logger of
the train stage (`live.py`), and the ablation study's use of `dvc exp` (`ablation.py`,
`experiments.py`, `report.py`). Nothing else in `daisnet` imports this package
(tests/test_layering.py): the core library runs without DVC.
"""
