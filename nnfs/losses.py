"""Losses: callable as ``loss(predictions, targets)``, returning a scalar; ``backward()``
returns the gradient with respect to the predictions.

The scalar lives on the predictions' device (a NumPy scalar on the CPU, a 0-d CuPy array on
the GPU): ``float(loss)`` turns it into a Python float, which on a GPU waits for
the device, so do that once per logging step rather than per batch.

Class labels and where they are checked
---------------------------------------
Labels must lie in ``[0, n_classes)``. NumPy raises IndexError for any other index, but
CuPy does not check indices on the device: it wraps them around (``i % n_classes``), so
labels ``[0, 1, 2, 5]`` with 3 classes would silently give the loss and gradient of
``[0, 1, 2, 2]``. :class:`CrossEntropyLoss` therefore checks every label itself:

- **Host labels** (NumPy arrays, what :class:`~nnfs.data.DataLoader` yields) are checked on
  the host before they are moved, and a bad one raises ValueError at once.
- **Device labels** (already on the GPU) cannot be read without waiting for the device,
  which a training step must not do. Each batch is checked on the device instead: a batch
  with a label outside the range gets a NaN loss (so the running loss, ``float(loss)`` and
  :class:`~nnfs.app.guard.FiniteGuard` all see that something is wrong), and the loss
  records the first such batch, the label's position and its value, still on the device.
  :meth:`CrossEntropyLoss.check_labels` reads that record back (one synchronisation) and
  raises a ValueError naming the batch; the training loops of :mod:`nnfs.app.loop` call it
  where they read their running metrics anyway (progress-bar redraws, the end of an epoch).
  The gradient of such a batch is the one of the wrapped labels: the step is wrong, but
  at most until the next check.
- **A whole dataset** moved to the device once can be checked once with
  :func:`check_labels` (one synchronisation for the whole set).
"""

from nnfs.backend import backend_of, check_real, get_array_module, host_array, is_host_array, to_numpy
from nnfs.layers.base import Layer, cached


def log_softmax(logits, axis=-1):
    """``log(softmax(logits))``, stable for any finite logits (the row maximum is subtracted first)."""
    _check_logits("log_softmax", logits)
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(logits, axis=-1):
    """Class probabilities from raw scores: rows that sum to one.

    Shape:
        - Input: ``(N, D)`` logits (any shape, normalised along ``axis``)
        - Output: the same shape
    """
    _check_logits("softmax", logits)
    return get_array_module(logits).exp(log_softmax(logits, axis=axis))


def _check_logits(owner, logits):
    if not hasattr(logits, "shape") or not hasattr(logits, "dtype"):  # a list failed on .max
        raise TypeError(f"{owner}: expected an array of logits, got {type(logits).__name__}; convert it with "
                        "numpy.asarray (net.predict_proba(X) gives probabilities for any input)")


class Loss:
    """Base class: caches what ``backward`` needs during the call.

    A subclass defines ``forward(prediction, target)`` (the scalar, on the predictions'
    device), ``backward()`` (dLoss/dPrediction, of the predictions' shape and dtype) and
    ``get_config()``. The targets arrive as the caller gave them (``Net.loss`` does not move
    them): ``forward`` checks them and moves them to the predictions' device itself.
    """

    def __init__(self):
        self.cache = {}

    def __call__(self, prediction, target):
        value = self.forward(prediction, target)
        # One number for the batch: per-sample losses (a forgotten .mean()) went through Net.loss
        # without a word and failed later, in the epoch loop or a float(), naming neither the
        # loss nor what it should return.
        if hasattr(value, "shape"):
            scalar = tuple(value.shape) == ()
        else:  # a Python number is one too (None is a forgotten return)
            scalar = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not scalar:
            got = f"an array of shape {tuple(value.shape)}" if hasattr(value, "shape") else type(value).__name__
            raise TypeError(f"{type(self).__name__}.forward: returned {got}, not a scalar: a loss returns one "
                            "number for the batch (the mean of the per-sample losses, say)")
        return value

    def forward(self, prediction, target):
        raise NotImplementedError(f"{type(self).__name__} defines no forward(prediction, target): a loss of "
                                  "one's own needs forward(prediction, target) and backward()")

    def backward(self):
        """The gradient of the last loss value with respect to the predictions."""
        raise NotImplementedError(f"{type(self).__name__} defines no backward(): a loss of one's own needs "
                                  "forward(prediction, target) and backward()")

    def local_grad(self, prediction, target):
        """The gradient with respect to the predictions at (prediction, target).

        The loss is left as it was (its cache, and any counter or record its forward keeps),
        so the backward of a pending step still works and nothing counts this call.

        Shape:
            - prediction: ``(N, D)``; ``"X"``: the same shape
        """
        pending = _loss_states(self)
        try:
            self.forward(prediction, target)
            return {"X": self.backward()}
        finally:
            for loss, state in pending:
                vars(loss).clear()
                vars(loss).update(state)

    def from_cache(self, *names):
        return cached(self, names, "the loss was computed")

    def get_config(self):
        """The constructor arguments, enough to rebuild the loss (used by checkpoints)."""
        return {}

    __repr__ = Layer.__repr__  # "Name(key=value, ...)" from get_config(), as for a layer


def _loss_states(loss, seen=None):
    """``[(loss, its attributes)]`` for ``loss`` and every loss it holds as an attribute (a loss
    that delegates to a CrossEntropyLoss of its own), each cache copied: forward writes into
    the dict itself."""
    seen = set() if seen is None else seen
    seen.add(id(loss))
    state = dict(vars(loss))
    if isinstance(state.get("cache"), dict):
        state["cache"] = dict(state["cache"])
    states = [(loss, state)]
    for value in vars(loss).values():
        if isinstance(value, Loss) and id(value) not in seen:
            states += _loss_states(value, seen)
    return states


def _check_predictions(name, prediction):
    if not hasattr(prediction, "ndim") or prediction.ndim != 2:
        shape = getattr(prediction, "shape", type(prediction).__name__)
        raise ValueError(f"{name}: expected predictions of shape (N, D), got {shape}")


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on raw scores, averaged over the batch.

    Targets are class indices of shape ``(N,)`` or ``(N, 1)`` (any integer
    dtype), or one-hot / probability rows of shape ``(N, D)`` (the loss is then
    ``-sum(t * log_softmax(x))``, exact for rows that do not sum to one too, as in
    PyTorch). With a single class (D = 1), float ``(N, 1)`` targets are such rows,
    integer ones labels. The softmax is
    computed in log space with the row maximum subtracted, so logits of any
    finite size give a finite loss and gradient. Use :func:`softmax` to turn
    logits into class probabilities. Labels outside ``[0, D)`` raise ValueError:
    at once for host labels, at :meth:`check_labels` for labels already on the
    device, whose batch gets a NaN loss meanwhile (see :mod:`nnfs.losses`).

    Shape:
        - Predictions: ``(N, D)`` logits
        - Targets: ``(N,)``, ``(N, 1)`` integers in ``[0, D)``, or ``(N, D)`` floats
        - Output: a scalar on the predictions' device

    Attributes:
        target: the targets of the last call, validated and on the predictions' device:
            ``(N,)`` class indices, or ``(N, D)`` rows for one-hot or soft targets.
    """

    def __init__(self):
        super().__init__()
        self.batches = 0
        self._bad_labels = None

    def forward(self, prediction, target):
        _check_predictions("CrossEntropyLoss", prediction)
        N, D = prediction.shape
        self.batches += 1
        # Lists become host arrays, checked on the host like them (not recorded on the device).
        checked_on_host = is_host_array(target) or isinstance(target, (list, tuple))
        target = _as_targets(prediction, target)
        log_p = log_softmax(prediction)
        if target.ndim == 1:
            xp = get_array_module(prediction)
            total = xp.take_along_axis(log_p, target[:, None], axis=1).sum()
            if not checked_on_host and N:
                total = self._check_on_device(xp, target, D, total)
        else:
            total = (target * log_p).sum()
        loss = -total * _inverse(N)
        self.cache["log_p"], self.cache["target"] = log_p, target
        return loss

    def _check_on_device(self, xp, labels, n_classes, total):
        """Record (on the device) the first batch with a label outside ``[0, n_classes)``;
        return ``total``, or NaN for such a batch. No value leaves the device, and none
        arrives: the host numbers travel as kernel arguments."""
        wide = labels.astype("int64", copy=False)  # compared in one dtype, whatever the labels'
        outside = (wide < 0) | (wide >= n_classes)
        bad = outside.any()
        position = outside.argmax()
        found = (self.batches, position, wide[position], n_classes)
        if self._bad_labels is None:
            newly, previous = bad, (-1, -1, -1, -1)
        else:
            newly, previous = bad & (self._bad_labels[0] < 0), self._bad_labels
        self._bad_labels = tuple(xp.where(newly, new, old) for new, old in zip(found, previous))
        return xp.where(bad, float("nan"), total)

    def local_grad(self, prediction, target):
        """dLoss/dPrediction at (prediction, target), as :meth:`Loss.local_grad`.

        Integer labels already on the device are range-checked at once, as host labels are
        (one synchronisation, for an inspection): unchecked, the device would wrap a label
        outside the classes around, and the record of it would have stopped a later training
        loop at a batch it never scored.
        """
        _check_predictions("CrossEntropyLoss", prediction)
        dtype = getattr(target, "dtype", None)
        # Only what _as_targets reads as labels: integer rows (N, D) are target rows, of any values.
        labels = getattr(target, "ndim", 0) == 1 or (getattr(target, "ndim", 0) == 2 and target.shape[1] == 1)
        if dtype is not None and dtype.kind in "iu" and labels and not is_host_array(target):
            check_labels(target, prediction.shape[1], "CrossEntropyLoss: labels")
        return super().local_grad(prediction, target)

    def check_labels(self):
        """Raise ValueError if a batch of device labels had one outside the classes since the
        last check; the record is cleared either way.

        Reads one small array back from the device (a synchronisation): call it where the
        host waits anyway (when printing progress, at the end of an epoch). Host labels
        need no call: they are checked when they arrive.
        """
        record, self._bad_labels = self._bad_labels, None
        if record is None:
            return
        xp = get_array_module(record[0])
        batch, position, value, n_classes = (int(v) for v in to_numpy(xp.stack(record)))
        if batch >= 0:
            raise ValueError(
                f"CrossEntropyLoss: batch {batch} (counting every batch this loss scored) has "
                f"label {value} at position {position}, outside [0, {n_classes}); its loss was "
                "NaN. Labels already on the device are checked there, not when they arrive")

    @property
    def target(self):
        """The targets of the last call, validated and on the predictions' device (or None)."""
        return self.cache.get("target")

    def backward(self):
        log_p, target = self.from_cache("log_p", "target")
        N = log_p.shape[0]
        xp = get_array_module(log_p)
        grad = xp.exp(log_p)
        if target.ndim == 1:
            grad[xp.arange(N), target] -= 1
        else:
            # d/dx of -sum(t * log_softmax(x)) is softmax(x) * sum(t) - t per row: the row sum is
            # 1 for one-hot and probability rows, but not for every target row a user may give.
            grad *= target.sum(axis=1, keepdims=True)
            grad -= target
        grad /= N
        return grad


def _as_targets(prediction, target):
    """Validate class targets and put them on the predictions' device.

    Integer labels become ``(N,)``; one-hot rows keep ``(N, D)`` in the predictions' dtype.
    Range checks read the values, so they run where the labels are host arrays (the
    usual case); labels already on a GPU are checked for shape and dtype only, to keep
    the training step free of device-to-host synchronisation.
    """
    N, D = prediction.shape
    if isinstance(target, (list, tuple)):  # labels as a list, as a Net takes inputs as lists
        check_real("CrossEntropyLoss", target, "the targets")  # ragged lists, text
        target = host_array(target, None)
    if not hasattr(target, "shape"):
        raise TypeError(f"CrossEntropyLoss: targets must be an array or a list, got {type(target).__name__}")
    device = backend_of(prediction)
    on_host = is_host_array(target)
    # (N, 1) is a column of labels, except for float targets of a single class (D = 1),
    # which are probability rows like any other (N, D).
    if target.ndim == 2 and target.shape[1] == 1 and not (D == 1 and target.dtype.kind == "f"):
        target = target.reshape(-1)
    if target.ndim == 1:
        if target.shape[0] != N:
            raise ValueError(f"CrossEntropyLoss: {N} predictions but {target.shape[0]} labels")
        if target.dtype.kind not in "iu":
            raise TypeError(
                f"CrossEntropyLoss: class labels must be integers, got dtype {target.dtype}")
        if on_host:
            check_labels(target, D, "CrossEntropyLoss: labels")
        return device.asarray(target)
    if target.shape == (N, D):
        check_real("CrossEntropyLoss", target, "the target rows")  # cast to the predictions' dtype
        return device.asarray(target, dtype=prediction.dtype)
    raise ValueError(
        f"CrossEntropyLoss: targets must have shape ({N},), ({N}, 1) or ({N}, {D}), "
        f"got {tuple(target.shape)}")


def check_labels(labels, n_classes, what="labels"):
    """Raise ValueError unless every value of ``labels`` (any device) is in ``[0, n_classes)``.

    For labels already on a GPU this reads two numbers back (a synchronisation): use it
    once on a whole dataset moved to the device, not on every batch (the loss checks
    device batches on the device, see :mod:`nnfs.losses`).

    Args:
        labels: integer class indices, any shape.
        n_classes: the number of classes D.
        what: how to name the labels in the message.
    """
    if labels.size == 0:
        return
    low, high = (int(v) for v in to_numpy(get_array_module(labels).stack([labels.min(), labels.max()])))
    if low < 0 or high >= n_classes:
        raise ValueError(f"{what} must be in [0, {n_classes}), got values in [{low}, {high}]")


def _inverse(count):
    """``1 / count`` for a mean; NaN for an empty batch (no mean, as in PyTorch), without a warning."""
    return 1.0 / count if count else float("nan")


class MeanSquareLoss(Loss):
    """Mean of the squared differences over all elements (PyTorch's ``MSELoss()``).

    Shape:
        - Predictions: ``(N, D)``
        - Targets: ``(N, D)``, or ``(N,)`` when D is 1
        - Output: a scalar on the predictions' device
    """

    def forward(self, prediction, target):
        _check_predictions("MeanSquareLoss", prediction)
        if isinstance(target, (list, tuple)):
            check_real("MeanSquareLoss", target, "the targets")  # ragged lists, text
            target = host_array(target, None)
        if not hasattr(target, "shape"):
            raise TypeError(f"MeanSquareLoss: targets must be an array or a list, got {type(target).__name__}")
        if target.ndim == 1 and prediction.shape[1] == 1:
            target = target.reshape(-1, 1)
        if tuple(target.shape) != tuple(prediction.shape):
            raise ValueError(
                f"MeanSquareLoss: targets of shape {tuple(target.shape)} do not match "
                f"predictions of shape {tuple(prediction.shape)}")
        check_real("MeanSquareLoss", target, "the targets")  # cast to the predictions' dtype
        target = backend_of(prediction).asarray(target, dtype=prediction.dtype)
        diff = prediction - target
        self.cache["diff"] = diff
        return (diff * diff).sum() * _inverse(diff.size)

    def backward(self):
        diff = self.from_cache("diff")
        return diff * (2.0 / max(diff.size, 1))  # an empty batch has an empty gradient


__all__ = ["Loss", "CrossEntropyLoss", "MeanSquareLoss", "softmax", "log_softmax", "check_labels"]
