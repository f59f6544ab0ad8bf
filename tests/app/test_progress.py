"""The progress bar of the training program."""

import io

from nnfs.app.progress import ProgressBar


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
