"""The training application built on the core library: what turns layers into a trained model.

Nothing in the core (:mod:`nnfs.backend`, :mod:`nnfs.layers`, :mod:`nnfs.net`,
:mod:`nnfs.optim`, ...) imports this package; it only uses the core.

- :mod:`nnfs.app.loop`: one epoch of training or evaluation (one process or data parallel).
- :mod:`nnfs.app.guard`: stop a run whose loss is no longer finite.
- :mod:`nnfs.app.resume`: continue a run from its checkpoint exactly.
- :mod:`nnfs.app.progress`: the progress bar.
- :mod:`nnfs.app.metrics`: per-class accuracy, precision, recall and the confusion matrix.
- :mod:`nnfs.app.plot`: loss and accuracy curves and the confusion matrix as PNGs.
- :mod:`nnfs.app.inference`: classify image files with a saved model.
- :mod:`nnfs.app.models`: ready-made networks (the reference CNN, a small residual network)
  and the training recipe of each.
- :mod:`nnfs.app.cli`: the command-line programs (train, predict) and their option types.
"""
