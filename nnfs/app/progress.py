"""Progress bars on stderr (tqdm), redrawn a few times a second, fitted to the terminal's width."""

import os
import sys
import time

from tqdm import tqdm

# The full line, and the ones for narrower terminals, richest first: the first that fits is
# drawn. The elapsed time goes first (under WIDE columns), then the bar, then the step counts,
# then the label; the rate and the time left stay to the last.
WIDE_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"
NARROW_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {remaining} left {rate_fmt}"
NARROWER_FORMATS = ("{desc} {percentage:3.0f}% {n_fmt}/{total_fmt} {remaining} left {rate_fmt}",
                    "{desc} {percentage:3.0f}% {remaining} left {rate_fmt}",
                    "{percentage:3.0f}% {remaining} left {rate_fmt}",
                    "{percentage:3.0f}% {remaining} {rate_fmt}")
WIDE = 100
#: The bar itself gets at least this many columns; the running metrics go first when they do not fit.
MIN_BAR = 8


def terminal_columns(stream):
    """The width of the terminal ``stream`` draws on: ``COLUMNS`` if set, else the terminal's, else 80."""
    try:
        return max(int(os.environ["COLUMNS"]), 20)
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 80


class ProgressBar:
    """``epoch 3/10  45%|####      | 70/141 [00:03<00:04, 21.3it/s] loss 0.4123 acc 87.2%``.

    A `tqdm <https://tqdm.github.io>`_ bar with rate and time left. It draws only on a
    terminal (or when ``enabled=True``), so logs and pipes stay clean, and never runs
    past the terminal's width: on a narrow one (60 columns) the elapsed time and then
    the running metrics give way, on narrower ones the bar, the step counts and the label
    (20 columns: `` 45% 00:04 left 21.3it/s``), never the rate and the time left.

    :meth:`due` says when a redraw would happen: a training loop asks it before
    reading running values back from the GPU, which keeps that read (a device
    synchronisation) down to a few per second; the steps in between cost nothing.

    Args:
        total: number of steps (batches, or files when loading).
        label: text before the bar, e.g. ``"epoch 3/10"``.
        stream: where to draw; default ``sys.stderr``.
        enabled: force drawing on or off; default: only when ``stream`` is a terminal.
        interval: seconds between redraws.
        unit: what a step is, for the rate (``"it"``: ``21.3it/s``; ``"img"`` when loading).
    """

    def __init__(self, total, label="", stream=None, enabled=None, interval=0.25, unit="it"):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = bool(enabled)
        self.interval = interval
        self._last = time.monotonic()
        self._bar = None
        if self.enabled:
            # Redrawn only when update() is called (at the cadence due() sets), and erased on close.
            self._bar = tqdm(total=self.total, desc=label, file=self.stream, unit=unit, leave=False,
                             mininterval=0, miniters=0, dynamic_ncols=False, ncols=terminal_columns(self.stream),
                             bar_format=WIDE_FORMAT)

    def due(self, done):
        """True when step ``done`` should be drawn (always for the last step, if enabled)."""
        if not self.enabled:
            return False
        return done >= self.total or time.monotonic() - self._last >= self.interval

    def update(self, done, **metrics):
        """Redraw for ``done`` steps with ``name=value`` metrics (floats; ``acc`` shown in %)."""
        if not self.enabled:
            return
        self._last = time.monotonic()
        bar = self._bar
        width = terminal_columns(self.stream)
        bar.ncols = width
        line = self._fitting(done, width)
        shown = " ".join(f"{name} {100 * value:.1f}%" if name == "acc" else f"{name} {value:.4f}"
                         for name, value in metrics.items())
        if shown and "{bar}" in line and self._length(line, done) + 2 + len(shown) + MIN_BAR <= width:
            line += "  " + shown.replace("{", "{{").replace("}", "}}")  # literal text in the format
        bar.bar_format = line
        bar.update(min(done, self.total) - bar.n)  # the rate and time left come from these counts

    def _fitting(self, done, width):
        """The richest line that fits ``width`` columns at ``done`` steps (a bar with room for
        :data:`MIN_BAR` columns); the last, shortest one where none does (tqdm then cuts it)."""
        lines = (WIDE_FORMAT, NARROW_FORMAT) if width >= WIDE else (NARROW_FORMAT,)
        for line in lines + NARROWER_FORMATS:
            room = MIN_BAR if "{bar}" in line else 0
            if self._length(line, done) + room <= width:
                return line
        return NARROWER_FORMATS[-1]

    def _length(self, line, done):
        """Columns ``line`` takes without its bar, at ``done`` steps."""
        state = dict(self._bar.format_dict, n=done, ncols=None, bar_format=line.replace("{bar}", ""))
        return len(tqdm.format_meter(**state))

    def close(self):
        """Erase the bar, so the next line printed starts clean."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self.enabled = False
