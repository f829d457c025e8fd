"""torch.save and torch.load for every checkpoint of the project, with errors a user can act on.

- Loading unpickles only tensors and plain containers (`weights_only=True`, plus the globals a
  caller allows). A file that refers to any other Python object is refused as what it is: not a
  plain checkpoint, not loaded because loading it could run code. torch's own advice (to load
  with `weights_only=False`) is never passed on.
- The checkpoints this project writes are told apart by their metadata (`kind_of`), so a file
  given in the wrong place is named for what it is ("this is a DAISnet model checkpoint, not a
  BTS depth checkpoint").
- Saving goes through `atomic_output`; a write that fails on a full disk raises the OSError that
  says so (torch's writer reports only "unexpected pos ..." or "file write failed").
"""

from __future__ import annotations

import io
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from daisnet.atomic import atomic_output
from daisnet.errors import InputError

DAISNET_MODEL = "a DAISnet model checkpoint"
RESUME_POINT = "a DAISnet training resume point (last.pt)"
BTS_DEPTH = "a BTS depth checkpoint"
SHAPE_AE = "a shape-autoencoder checkpoint"


def kind_of(obj: object) -> str | None:
    """Which of this project's checkpoints `obj` (a loaded file) is, by its metadata; None if none."""
    if not isinstance(obj, dict):
        return None
    meta = obj.get("meta")
    if not isinstance(meta, dict):
        return None
    if isinstance(meta.get("model_config"), dict):
        return DAISNET_MODEL
    if "run_id" in meta and "optimizer" in obj:
        return RESUME_POINT
    if isinstance(meta.get("bts"), dict):
        return BTS_DEPTH
    if "code_dim" in meta and "crop" in meta:  # daisnet.shape.autoencoder.ARCHITECTURE
        return SHAPE_AE
    return None


def refuse_other_kind(obj: object, expected: str, path: str | os.PathLike) -> None:
    """An InputError when `obj` is another of our checkpoint kinds than `expected`."""
    found = kind_of(obj)
    if found is not None and found != expected:
        raise InputError(f"this is {found}, not {expected}", path=path)


def _unsafe_global(message: str) -> str | None:
    """The Python object a weights-only load refused (`posix.system`, or a class such as numpy's
    object dtype that only an allow-list could admit), from torch's message."""
    match = re.search(r"GLOBAL ([\w.]+)", message) or re.search(r"add_safe_globals`, but got <class '([\w.]+)'>", message)
    return match.group(1) if match else None


def _detail(message: str) -> str:
    """torch's reason without its advice: the first line that does not mention `weights_only`."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    useful = [ln for ln in lines if "weights_only" not in ln and not ln.startswith("Check the documentation")]
    return (useful[0] if useful else "unreadable")[:200]


def load(path: str | os.PathLike, safe_globals: list[Any] | tuple[Any, ...] = ()) -> Any:
    """torch.load with weights_only=True (and `safe_globals` allowed); every failure is an InputError.

    The caller checks that the file exists (its message says where such a file comes from).
    """
    path = Path(path)
    try:
        # torch warns about pickle protocols on stderr: a second line beside our one-line error.
        with warnings.catch_warnings(), torch.serialization.safe_globals(list(safe_globals)):
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _unsafe_global(str(exc))
        if refused is not None:
            raise InputError(f"not a plain checkpoint: it refers to Python code or objects ({refused}) and was not "
                             "loaded, because loading it could run code; only tensors and plain values are read",
                             path=path) from None
        raise InputError(f"not a readable checkpoint (truncated or corrupted? {_detail(str(exc))})",
                         path=path) from None
    except Exception as exc:  # noqa: BLE001 - arbitrary bytes make torch.load fail in arbitrary ways
        raise InputError(f"not a readable checkpoint (truncated or corrupted? {type(exc).__name__}: "
                         f"{_detail(str(exc))})", path=path) from None


class _RecordingWriter(io.RawIOBase):
    """A file torch writes through, keeping the OSError of a failed write (torch's writer drops it)."""

    def __init__(self, file: io.BufferedWriter) -> None:
        super().__init__()
        self.file = file
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            return self.file.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise


def _write_error(obj: Any, path: Path) -> OSError | None:
    """Why writing `obj` to `path` fails: the same bytes written again through Python's file object."""
    try:
        with open(path, "wb") as file:
            writer = _RecordingWriter(file)
            try:
                torch.save(obj, writer)
            except RuntimeError:
                pass
    except OSError as exc:  # open, or the buffer flushed at close
        return exc
    return writer.error


def save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to `path` atomically: a kill or a failed write leaves the old file (or none) and
    no temporary; a full disk or a size limit raises its OSError, naming `path`."""
    with atomic_output(path) as tmp:
        try:
            torch.save(obj, tmp)  # to a path: torch names the archive inside after the file (bytes as before)
        except RuntimeError as exc:
            cause = _write_error(obj, tmp)
            if cause is None:
                raise
            raise cause from exc
