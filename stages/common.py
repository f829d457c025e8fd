"""What every stage script shares: params.yaml, and user errors as one line and exit status 2."""

from __future__ import annotations

from collections.abc import Callable

from daisnet.errors import exit_on_input_error
from daisnet.params import load_params


def run_stage(main: Callable[[dict], None], params_path: str = "params.yaml") -> None:
    with exit_on_input_error():
        main(load_params(params_path))
