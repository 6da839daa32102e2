"""Progress on a terminal: a bar rewritten in place on stderr while it is a terminal;
nothing when stderr is a file or a pipe, where a log keeps whole lines only."""

from __future__ import annotations

import sys
import time

# Redrawn at most this often: a bar drawn at every batch would cost more than the batch.
REDRAW_SECONDS = 0.1
BAR_WIDTH = 24


def on_terminal(stream=None) -> bool:
    """Whether ``stream`` (stderr by default) is a terminal."""
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def clock(seconds: float) -> str:
    """``1:02:03`` or ``2:03``."""
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressBar:
    """``epoch 2/5 [#########---------------] 120/300 batches, 31.2/s, 0:48 left, loss 1.92``

    Args:
        label: what is progressing.
        total: how many ``unit`` make it whole (an estimate may be passed: the bar stops
            at full and the count goes on).
        unit: what is counted.
        after: how many more of ``unit`` follow this bar's (later epochs), for the time
            left. Defaults to 0.
        stream: where it is drawn. Defaults to stderr, read when drawing.
    """

    def __init__(self, label: str, total: int, unit: str, after: int = 0, stream=None):
        self.label, self.total, self.unit, self.after = label, max(1, total), unit, after
        self.stream = stream
        self.start = time.perf_counter()
        self.drawn_at = 0.0
        self.width = 0

    def update(self, done: int, note: str = "") -> None:
        now = time.perf_counter()
        if now - self.drawn_at < REDRAW_SECONDS and done < self.total:
            return
        self.drawn_at = now
        filled = min(BAR_WIDTH, BAR_WIDTH * done // self.total)
        rate = done / max(now - self.start, 1e-9)
        parts = [
            f"{self.label} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] "
            f"{done:,}/{self.total:,} {self.unit}",
            f"{rate:,.1f}/s",
        ]
        if rate > 0:
            parts.append(f"{clock((max(0, self.total - done) + self.after) / rate)} left")
        if note:
            parts.append(note)
        self._write(", ".join(parts))

    def close(self, line: str = "") -> None:
        """Clears the bar; ``line``, when given, takes its place for good."""
        self._write(line)
        if line:
            print(file=self._stream(), flush=True)

    def _stream(self):
        return sys.stderr if self.stream is None else self.stream

    def _write(self, text: str) -> None:
        padding = " " * max(0, self.width - len(text))
        print(f"\r{text}{padding}", end="", file=self._stream(), flush=True)
        self.width = len(text)


def counted(items, label: str, unit: str, minimum: int = 1000, stream=None):
    """``items`` (a sized iterable), with a progress bar while they are gone through when
    there are ``minimum`` or more and stderr is a terminal; as they are otherwise."""
    if len(items) < minimum or not on_terminal(stream):
        yield from items
        return
    bar = ProgressBar(label, len(items), unit, stream=stream)
    done = 0
    for item in items:
        yield item
        done += 1
        bar.update(done)
    bar.close()
