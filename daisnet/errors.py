"""User-facing errors: one clear line naming the file, the record and the problem."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def is_int(value: object) -> bool:
    """A whole number as JSON or YAML gives it (a bool is not one, though Python says it is an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite int or float, bools excluded."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class InputError(Exception):
    """Bad input from the user: reported as one line by the CLI, with a non-zero exit."""

    def __init__(self, problem: str = "", *, path: object = None, record: object = None,
                 message: str | None = None) -> None:
        if message is not None:
            # torch's DataLoader re-raises a worker's error as `InputError(message=<traceback>)`:
            # keep the one line the worker's error said (the traceback's last line).
            problem = message.rstrip().splitlines()[-1].removeprefix(f"{__name__}.InputError: ")
        self.problem = problem
        self.path = path
        self.record = record
        super().__init__(self.message())

    def __reduce__(self) -> tuple:
        # Keep path and record when the error crosses a process boundary (Dask workers).
        return (_rebuild_input_error, (self.problem, self.path, self.record))

    def message(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.record is not None:
            where.append(str(self.record))
        prefix = ": ".join(where)
        return f"{prefix}: {self.problem}" if prefix else self.problem


class TrainingDiverged(RuntimeError):
    """A training loss turned non-finite: the message names the iteration, the term and what to change.

    Not the user's input, but reported the same way (one line, no traceback): the fix is a param.
    """


def _rebuild_input_error(problem: str, path: object, record: object) -> InputError:
    return InputError(problem, path=path, record=record)


@contextmanager
def exit_on_input_error() -> Iterator[None]:
    """A stage's (or a training process's) InputError: one `error: ...` line on stderr, exit 2.

    A diverged training run: one line too, exit 1 (the input was valid; the settings were not).
    """
    try:
        yield
    except InputError as exc:
        print(f"error: {exc.message()}", file=sys.stderr)
        sys.exit(2)
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
