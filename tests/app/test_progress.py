"""The progress bars: rate and time left, fitted to the terminal, silent off a terminal, and read
back from the device only when they redraw."""

import io
import re

import pytest

from nnfs.app import loop
from nnfs.app.models import reference_cnn
from nnfs.app.progress import ProgressBar


class Terminal(io.StringIO):
    """Captures what is drawn, and says it is a terminal."""

    def isatty(self):
        return True


def frames(stream):
    """The lines drawn, one per redraw (tqdm returns to the line start with \\r)."""
    return [frame for frame in stream.getvalue().split("\r") if frame.strip()]


@pytest.mark.parametrize("columns", [60, 80, 132])
def test_lines_fit_the_terminal_and_keep_rate_and_time_left(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    stream = Terminal()
    bar = ProgressBar(141, label="epoch 10/10", stream=stream, interval=0)
    for step in (1, 70, 141):
        assert bar.due(step)
        bar.update(step, loss=0.41234, acc=0.8723)
    bar.close()
    start, *drawn = frames(stream)
    assert " 0/141 " in start and len(drawn) == 3  # drawn at once, then once per update
    for frame in drawn:
        assert len(frame) <= columns, frame
        assert frame.startswith("epoch 10/10") and re.search(r"\d+(\.\d+)?(it/s|s/it)", frame), frame
    assert " 70/141 " in drawn[1] and "100%" in drawn[2]
    if columns >= 100:
        assert re.search(r"\[\d\d:\d\d<\d\d:\d\d, ", drawn[1]) and drawn[1].endswith("loss 0.4123 acc 87.2%")
    else:  # narrow: the elapsed time goes, the time left stays; the metrics only where they fit
        assert re.search(r" \d\d:\d\d left ", drawn[1])
        assert ("loss 0.4123" in drawn[1]) == (columns >= 80)
    assert stream.getvalue().endswith("\r")  # erased on close: the next line starts clean


@pytest.mark.parametrize("columns", [20, 30, 40, 80])
def test_narrow_terminals_keep_the_rate_and_time_left_and_drop_the_rest_in_turn(monkeypatch, columns):
    """The bar, the step counts, then the label give way on narrow terminals; the rate and the time
    left stay (they were cut off below 40 columns). A steady clock: 20 steps a second."""
    monkeypatch.setenv("COLUMNS", str(columns))
    stream = Terminal()
    bar = ProgressBar(141, label="epoch 10/10", stream=stream, interval=0)
    start = bar._bar.start_t
    for step in (1, 70, 140):
        bar._bar._time = lambda step=step: start + step / 20
        bar.update(step, loss=0.41234, acc=0.8723)
    drawn = frames(stream)[1:]
    bar.close()
    for frame in drawn:
        assert len(frame) <= columns, frame
        assert re.search(r"\d\d?(\.\d+)?it/s", frame) and re.search(r" \d\d:\d\d ", frame), frame
    assert ("epoch 10/10" in drawn[-1]) == (columns >= 40)
    assert ("|" in drawn[-1]) == (columns >= 80)


def test_nothing_is_drawn_off_a_terminal_and_nothing_is_due():
    stream = io.StringIO()
    bar = ProgressBar(5, label="loading", stream=stream, unit="img")
    assert not bar.enabled and not bar.due(5)
    bar.update(5)
    bar.close()
    assert stream.getvalue() == ""


def test_the_unit_names_the_rate(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    stream = Terminal()
    bar = ProgressBar(10, label="loading", stream=stream, unit="img", interval=0)
    bar.update(10)
    assert "img/s" in frames(stream)[-1] or "s/img" in frames(stream)[-1]


class CountingBar(ProgressBar):
    """Due on the steps given; counts the redraws."""

    def __init__(self, total, due_on):
        super().__init__(total, stream=io.StringIO(), enabled=False)
        self.due_on, self.drawn = set(due_on), []

    def due(self, done):
        return done in self.due_on

    def update(self, done, **metrics):
        self.drawn.append((done, sorted(metrics)))


@pytest.mark.parametrize("phase", ["train", "evaluate"])
def test_device_values_are_read_only_when_the_bar_redraws(monkeypatch, rng, phase):
    reads = []
    original = loop.RunningMetrics.read
    monkeypatch.setattr(loop.RunningMetrics, "read",
                        lambda self, **options: reads.append(1) or original(self, **options))
    net = reference_cnn(1, 8, 2, hidden=4)
    batches = [(rng.normal(size=(4, 1, 8, 8)), rng.integers(0, 2, size=4)) for _ in range(6)]
    bar = CountingBar(6, due_on=(2, 6))
    if phase == "train":
        loop.train_epoch(net, batches, lr=0.01, progress=bar)
    else:
        loop.evaluate(net, batches, progress=bar)
    assert len(reads) == 2 and bar.drawn == [(2, ["acc", "loss"]), (6, ["acc", "loss"])]


def test_progress_bar_draws_only_when_enabled():
    stream = io.StringIO()
    bar = ProgressBar(4, label="epoch 1/2", stream=stream, enabled=True, interval=3600)
    assert not bar.due(1) and bar.due(4)
    bar.update(4, loss=0.25, acc=0.5)
    bar.close()
    text = stream.getvalue()
    assert "epoch 1/2" in text and "4/4" in text and "loss 0.2500" in text and "acc 50.0%" in text
    quiet = ProgressBar(4, stream=io.StringIO())  # not a terminal: never draws
    assert not quiet.due(4)
    quiet.update(4, loss=1.0)
    assert quiet.stream.getvalue() == ""
