"""User-facing errors: one clear line naming the file, the record and the problem."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user: reported as one line by the CLI, with a non-zero exit."""

    def __init__(self, problem: str, *, path: object = None, record: object = None) -> None:
        self.problem = problem
        self.path = path
        self.record = record
        super().__init__(self.message())

    def message(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.record is not None:
            where.append(str(self.record))
        prefix = ": ".join(where)
        return f"{prefix}: {self.problem}" if prefix else self.problem
