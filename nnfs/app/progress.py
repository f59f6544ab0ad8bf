"""A one-line progress bar on stderr, redrawn at most a few times a second."""

import sys
import time


class ProgressBar:
    """``label [#######.....]  70/141  loss 0.4123  acc 87.2%`` redrawn in place.

    It draws only on a terminal (or when ``enabled=True``), so logs and pipes stay
    clean. :meth:`due` says when a redraw would happen: a training loop asks it
    before reading running values back from the GPU, which keeps that read (a
    device synchronisation) down to a few per second.

    Args:
        total: number of steps (batches).
        label: text before the bar, e.g. ``"epoch 3/10"``.
        stream: where to draw; default ``sys.stderr``.
        enabled: force drawing on or off; default: only when ``stream`` is a terminal.
        interval: seconds between redraws.
    """

    def __init__(self, total, label="", stream=None, enabled=None, interval=0.25, width=28):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = bool(enabled)
        self.interval = interval
        self.width = width
        self._last = time.monotonic()
        self._drawn = False

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
        filled = int(self.width * min(done, self.total) / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        shown = "  ".join(
            f"{name} {100 * value:.1f}%" if name == "acc" else f"{name} {value:.4f}"
            for name, value in metrics.items())
        self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total}  {shown}\x1b[K")
        self.stream.flush()
        self._drawn = True

    def close(self):
        """Erase the bar, so the next line printed starts clean."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
