"""Progress on anything long, also when stderr is not a terminal.

On a terminal :func:`progress_bar` is a tqdm bar. In a log file, CI or under ``nohup`` a bar
redraws with carriage returns that nobody sees until the end, so there it prints one plain line at
most every ``interval_s`` seconds (and one at the end)::

    retrain cpu-knee: 45% (27/60 step) 0:41 elapsed, ETA 0:50, epoch=2/5 loss=0.812

The object answers the part of tqdm's interface slimforge uses: ``update``, ``set_postfix``,
``set_postfix_str``, ``set_description``, ``n``, ``total``, ``close`` and the context manager.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

__all__ = ["LineProgress", "progress_bar"]

#: seconds between two plain progress lines (``$SLIMFORGE_PROGRESS_INTERVAL_S`` overrides it).
LINE_INTERVAL_S = 10.0


def _interval_s() -> float:
    try:
        value = float(os.environ.get("SLIMFORGE_PROGRESS_INTERVAL_S", LINE_INTERVAL_S))
    except ValueError:
        return LINE_INTERVAL_S
    return value if value >= 0 else LINE_INTERVAL_S


def progress_bar(
    total: float | None = None,
    desc: str = "",
    unit: str = "it",
    *,
    enabled: bool = True,
    leave: bool = False,
    file: IO[str] | None = None,
    interval_s: float | None = None,
    **tqdm_options: Any,
) -> Any:
    """A tqdm bar on a terminal, :class:`LineProgress` elsewhere, or a silent one when not ``enabled``."""
    interval_s = _interval_s() if interval_s is None else interval_s
    stream = file if file is not None else sys.stderr
    if enabled and _is_terminal(stream):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=stream, **tqdm_options)
    return LineProgress(total, desc, unit, file=stream, interval_s=interval_s, enabled=enabled)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class LineProgress:
    """Plain progress lines with percentage and ETA, at most one per ``interval_s`` seconds."""

    def __init__(
        self,
        total: float | None,
        desc: str,
        unit: str = "it",
        *,
        file: IO[str] | None = None,
        interval_s: float = LINE_INTERVAL_S,
        enabled: bool = True,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n: float = 0
        self.postfix = ""
        self._file = file if file is not None else sys.stderr
        self._interval_s = interval_s
        self._enabled = enabled
        self._start = time.monotonic()
        self._last = self._start
        self._closed = False
        self._printed = False

    # -- tqdm's interface ------------------------------------------------------------------

    def update(self, n: float = 1) -> None:
        """Advance by ``n`` and print a line if ``interval_s`` has passed since the last one."""
        self.n += n
        self._maybe_print()

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        """Extra ``key=value`` fields shown after the counts."""
        items = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Extra text shown after the counts."""
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        """Change the label."""
        self.desc = desc or ""

    def refresh(self) -> None:
        """Print a line now if the interval has passed (tqdm redraws; lines are rate-limited)."""
        self._maybe_print()

    def close(self) -> None:
        """Print the final line (if anything ran for more than one interval) and stop."""
        if self._closed:
            return
        self._closed = True
        if self._enabled and self._printed:
            self._print(time.monotonic())

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lines -----------------------------------------------------------------------------

    def _maybe_print(self) -> None:
        now = time.monotonic()
        if self._enabled and not self._closed and now - self._last >= self._interval_s:
            self._print(now)

    def _print(self, now: float) -> None:
        self._last = now
        self._printed = True
        elapsed = now - self._start
        count = f"{_num(self.n)}/{_num(self.total)} {self.unit}" if self.total else f"{_num(self.n)} {self.unit}"
        parts = [f"{self.desc}: " if self.desc else ""]
        if self.total:
            parts.append(f"{min(100.0, 100.0 * self.n / self.total):3.0f}% ({count}) ")
        else:
            parts.append(f"{count} ")
        parts.append(f"{_clock(elapsed)} elapsed")
        if self.total and 0 < self.n < self.total:
            parts.append(f", ETA {_clock(elapsed * (self.total - self.n) / self.n)}")
        if self.postfix:
            parts.append(f", {self.postfix}")
        try:
            print("".join(parts), file=self._file, flush=True)
        except (OSError, ValueError):
            self._enabled = False  # a closed log must not stop the work


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
