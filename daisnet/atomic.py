"""Write outputs to a temporary sibling and move them into place only when complete.

A killed or failed stage then never leaves a half artifact that looks whole (shared/DESIGN.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target`, on error it is removed.

    Works for files and directories (Zarr stores): whatever the body creates at the yielded path
    is what lands.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
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
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
