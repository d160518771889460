"""A rebuild's progress on the terminal: one line redrawn in place on a TTY, a plain line every few
seconds otherwise (a log file, CI)."""

from __future__ import annotations

import time
from typing import TextIO

from bus.rebuild import Progress

_WIDTH = 24


def describe(progress: Progress) -> str:
    fraction = progress.done / progress.total if progress.total else 1.0
    left = progress.remaining_seconds
    eta = "-" if left is None else _duration(left)
    return (
        f"{progress.projection} v{progress.version}: {progress.done:,}/{progress.total:,} events"
        f" ({fraction:.0%})  {progress.rate:,.0f} events/s  {eta} left"
    )


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class ProgressLine:
    def __init__(self, out: TextIO, every: float | None = None) -> None:
        self.out = out
        self.tty = out.isatty()
        self.every = every if every is not None else (0.1 if self.tty else 5.0)
        self._last = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last < self.every and not progress.swapped:
            return
        self._last = now
        if self.tty:
            fraction = min(1.0, progress.done / progress.total) if progress.total else 1.0
            bar = "#" * round(fraction * _WIDTH)
            self.out.write(f"\r\x1b[2K[{bar:<{_WIDTH}}] {describe(progress)}")
            if progress.swapped:
                self.out.write("\n")
        else:
            self.out.write(describe(progress) + "\n")
        self.out.flush()
