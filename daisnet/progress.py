"""Progress that reads well both on a terminal and in a log.

On a terminal: tqdm's bar (on stderr). Otherwise (DVC pipes a stage's output; CI writes it to a
log) a bar is one endless line of carriage returns, so a flushed line goes to stdout instead, every
`DAISNET_PROGRESS_SECONDS` seconds (10 by default), and a last one at the end of work that took at
least that long: done/total, rate, ETA. stderr stays for errors: a failing command's last line there
is its error.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def format_seconds(seconds: float) -> str:
    """`75` -> `1m15s`; `3700` -> `1h01m`."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """`update(n)` as work gets done; `close()` at the end (prints the final line)."""

    def __init__(self, total: int | None, desc: str, unit: str = "it", bar: bool | None = None,
                 every: float | None = None, stream: Any = None) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream if stream is not None else sys.stdout
        self.bar = None
        if bar if bar is not None else sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)
        self.every = every if every is not None else float(os.environ.get("DAISNET_PROGRESS_SECONDS", "10"))
        self.done = 0
        self.start = self.last = time.perf_counter()
        self.closed = False
        self.printed = False

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.desc}: {self.done}"
        if self.total:
            text += f"/{self.total} {self.unit} ({100 * self.done / self.total:.0f}%)"
        else:
            text += f" {self.unit}"
        text += f"  {rate:.2f} {self.unit}/s  elapsed {format_seconds(elapsed)}"
        if self.total and 0 < self.done < self.total and rate > 0:
            text += f"  ETA {format_seconds((self.total - self.done) / rate)}"
        return text

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if now - self.last >= self.every and (self.total is None or self.done < self.total):
            self.last = now
            self.printed = True
            print(self.line(), file=self.stream, flush=True)

    def close(self, failed: bool = False) -> None:
        """The final line, unless the work failed (its error is what matters) or was quick."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif not failed and (self.printed or time.perf_counter() - self.start >= self.every):
            print(self.line(), file=self.stream, flush=True)


def track(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it",
          bar: bool | None = None) -> Iterator[T]:
    """Iterate over `items`, reporting progress (a bar on a terminal, lines otherwise)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    progress = Progress(total, desc, unit, bar=bar)
    failed = True
    try:
        for item in items:
            yield item
            progress.update()
        failed = False
    finally:
        progress.close(failed)
