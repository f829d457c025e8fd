"""What every stage script shares: params.yaml, and user errors as one line and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from daisnet.errors import InputError
from daisnet.params import load_params


def run_stage(main: Callable[[dict], None], params_path: str = "params.yaml") -> None:
    try:
        main(load_params(params_path))
    except InputError as exc:
        print(f"error: {exc.message()}", file=sys.stderr)
        sys.exit(2)
