"""User-facing errors: one clear line naming the file, the record and the problem."""

from __future__ import annotations

import errno
import math
import os
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


# OSErrors that are the machine's state, not a bug: a full disk, a quota, a size limit, a read-only
# folder. EFBIG (a file over the file system's or `ulimit -f`'s limit) is handled as a full disk.
_OS_PROBLEMS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large: the file system's or `ulimit -f` size limit was reached",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
}


class OutputNotWritten(OSError):
    """An output could not be written (full disk, read-only folder); its temporary was removed.

    Raised by `daisnet.atomic` with the output's path, not the temporary's that the system named.
    """


def output_not_written(exc: OSError, target: object) -> OSError:
    """`exc` naming `target` when it is one of the machine-state errors above, else `exc` itself."""
    if exc.errno not in _OS_PROBLEMS or isinstance(exc, OutputNotWritten):
        return exc
    return OutputNotWritten(exc.errno, os.strerror(exc.errno), str(target))


def user_error_line(exc: BaseException) -> tuple[str, int] | None:
    """The one line and exit status for an error the user can act on; None for a bug (traceback).

    The one place where errors become messages: stages, training processes and the CLI use it.
    """
    if isinstance(exc, InputError):
        return exc.message(), 2
    if isinstance(exc, TrainingDiverged):
        return str(exc), 1  # the input was valid; the settings were not
    if isinstance(exc, OSError) and exc.errno in _OS_PROBLEMS:
        problem = _OS_PROBLEMS[exc.errno]
        if isinstance(exc, OutputNotWritten):
            why = " (the folder is read-only for this user)" if exc.errno == errno.EACCES else ""
            problem = f"cannot write the output: {problem}{why}; nothing was left behind"
        return (f"{exc.filename}: {problem}" if exc.filename else problem), 2
    return None


@contextmanager
def exit_on_input_error() -> Iterator[None]:
    """A user's mistake or the machine's state (`user_error_line`): one `error: ...` line on stderr
    and its exit status (2; 1 for a diverged training run), never a traceback."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - anything else is re-raised as it is
        reported = user_error_line(exc)
        if reported is None:
            raise
        print(f"error: {reported[0]}", file=sys.stderr)
        sys.exit(reported[1])
