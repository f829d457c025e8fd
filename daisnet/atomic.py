"""Write outputs to a temporary sibling and move them into place only when complete.

A killed or failed stage then never leaves a half artifact that looks whole (shared/DESIGN.md).
The temporary folder's name carries the writer's process id: a later run removes the leftovers of
writers that are gone (a SIGKILL runs no cleanup) and leaves those of live ones alone.
Also here: the checks that keep a command from destroying its own inputs or a user's folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from daisnet.errors import InputError, output_not_written


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove `.<name>.<pid>-*.tmp` siblings of `target` whose writing process no longer exists."""
    removed = []
    for candidate in target.parent.glob(f".{target.name}.*.tmp"):
        pid_text = candidate.name[len(target.name) + 2 :].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def refuse_overlap(outputs: Iterable[str | os.PathLike | None], inputs: Iterable[str | os.PathLike | None]) -> None:
    """An output may not be, contain, or sit inside an input: replacing it would destroy the input.
    Nor may it go to a folder this process cannot write (read-only): found now, not after the work.

    Raises an InputError naming both paths (or an OSError naming the output), before any work is done.
    """
    # A missing input cannot be destroyed: its own check reports it.
    ins = [(Path(i), Path(i).resolve()) for i in inputs if i is not None and Path(i).exists()]
    outs = [Path(out) for out in outputs if out is not None]
    for out in outs:
        out_resolved = out.resolve()
        for given, resolved in ins:
            if out_resolved == resolved:
                problem = "is"
            elif out_resolved in resolved.parents:
                problem = "contains"
            elif resolved in out_resolved.parents and resolved.is_dir():
                problem = "sits inside"
            else:
                continue
            raise InputError(f"the output {problem} the input {given}: writing it would destroy that input; "
                             "choose another output path", path=out)
    for out in outs:
        refuse_unwritable(out)


def refuse_unwritable(target: str | os.PathLike) -> None:
    """An OSError (EROFS, EACCES) naming `target` when its folder, or the nearest existing folder
    above it, cannot be written: the output would fail only at the end of the work."""
    folder = Path(target).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return  # a file where a folder should be: creating the output reports it
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        raise output_not_written(OSError(errno.EROFS, os.strerror(errno.EROFS)), target)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise output_not_written(OSError(errno.EACCES, os.strerror(errno.EACCES)), target)


MARKER = ".daisnet-output"


def refuse_foreign_folder(out: str | os.PathLike, command: str) -> None:
    """An existing output folder is replaced only if this command wrote it (it holds our marker).

    Anything else there (the user's files) would be deleted by the replacement: refused instead.
    """
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"exists and is not a folder; `{command}` writes a folder here", path=out)
    if any(out.iterdir()) and not (out / MARKER).is_file():
        raise InputError(f"holds files that `{command}` did not write and replacing it would delete them; "
                         "give a new or empty folder (nothing was changed)", path=out)


def mark_output_folder(folder: Path, command: str) -> None:
    """Mark a folder as written by `command` (so that a later run may replace it)."""
    (folder / MARKER).write_text(f"written by daisnet {command}; replaced as a whole by its next run\n")


def _missing_folders(folder: Path) -> list[Path]:
    """The folders that creating `folder` would make, outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing[::-1]


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target`, on error it is removed.

    Works for files and directories (Zarr stores): whatever the body creates at the yielded path
    is what lands. A full disk or a read-only folder (`daisnet.errors.OutputNotWritten`) names
    `target`, not the temporary the system would name.
    """
    target = Path(target)
    created = _missing_folders(target.parent)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        translated = output_not_written(exc, target)
        if translated is not exc:
            raise translated from exc
        raise
    tmp = tmp_dir / target.name
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{target}: nothing was written")
        old = None
        if target.exists() or target.is_symlink():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            _remove(old)
    except OSError as exc:
        # Errors of writing only: a write() that failed (no file name) or one of our paths; an
        # input that cannot be read keeps its own name.
        if exc.filename is None or str(exc.filename).startswith((str(tmp_dir), str(target))):
            translated = output_not_written(exc, target)
            if translated is not exc:
                raise translated from exc
        raise
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if not target.exists():  # failed: the folders made for it go too
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()
