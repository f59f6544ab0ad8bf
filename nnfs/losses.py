"""Losses: callable as ``loss(predictions, targets)``, returning a scalar; ``backward()``
returns the gradient with respect to the predictions.

The scalar lives on the predictions' device (a NumPy scalar on the CPU, a 0-d CuPy array on
the GPU): ``float(loss)`` turns it into a Python float, which on a GPU waits for
the device, so do that once per logging step rather than per batch.
"""

from nnfs.backend import backend_of, get_array_module, is_host_array
from nnfs.layers.base import cached


def log_softmax(logits, axis=-1):
    """``log(softmax(logits))``, stable for any finite logits (the row maximum is subtracted first)."""
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(logits, axis=-1):
    """Class probabilities from raw scores: rows that sum to one.

    Shape:
        - Input: ``(N, D)`` logits (any shape, normalised along ``axis``)
        - Output: the same shape
    """
    return get_array_module(logits).exp(log_softmax(logits, axis=axis))


class Loss:
    """Base class: caches what ``backward`` needs during the call."""

    def __init__(self):
        self.cache = {}

    def __call__(self, prediction, target):
        return self.forward(prediction, target)

    def forward(self, prediction, target):
        raise NotImplementedError

    def backward(self):
        """The gradient of the last loss value with respect to the predictions."""
        raise NotImplementedError

    def local_grad(self, prediction, target):
        """The gradient with respect to the predictions at (prediction, target).

        The cache of a pending step is put back afterwards, so its backward still works.
        """
        pending = dict(self.cache)
        try:
            self.forward(prediction, target)
            return {"X": self.backward()}
        finally:
            self.cache = pending

    def from_cache(self, *names):
        return cached(self, names, "the loss was computed")

    def get_config(self):
        return {}

    def __repr__(self):
        return f"{type(self).__name__}()"


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
    logits into class probabilities.

    Shape:
        - Predictions: ``(N, D)`` logits
        - Targets: ``(N,)``, ``(N, 1)`` integers in ``[0, D)``, or ``(N, D)`` floats
        - Output: a scalar on the predictions' device

    Attributes:
        target: the targets of the last call, validated and on the predictions' device:
            ``(N,)`` class indices, or ``(N, D)`` rows for one-hot or soft targets.
    """

    def forward(self, prediction, target):
        _check_predictions("CrossEntropyLoss", prediction)
        N, D = prediction.shape
        target = _as_targets(prediction, target)
        log_p = log_softmax(prediction)
        if target.ndim == 1:
            xp = get_array_module(prediction)
            total = xp.take_along_axis(log_p, target[:, None], axis=1).sum()
        else:
            total = (target * log_p).sum()
        loss = -total * _inverse(N)
        self.cache["log_p"], self.cache["target"] = log_p, target
        return loss

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
    if not hasattr(target, "shape"):
        raise TypeError(f"CrossEntropyLoss: targets must be an array, got {type(target).__name__}")
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
        if on_host and N and (target.min() < 0 or target.max() >= D):
            raise ValueError(
                f"CrossEntropyLoss: labels must be in [0, {D}), got values in "
                f"[{target.min()}, {target.max()}]")
        return device.asarray(target)
    if target.shape == (N, D):
        return device.asarray(target, dtype=prediction.dtype)
    raise ValueError(
        f"CrossEntropyLoss: targets must have shape ({N},), ({N}, 1) or ({N}, {D}), "
        f"got {tuple(target.shape)}")


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
        if not hasattr(target, "shape"):
            raise TypeError(f"MeanSquareLoss: targets must be an array, got {type(target).__name__}")
        if target.ndim == 1 and prediction.shape[1] == 1:
            target = target.reshape(-1, 1)
        if tuple(target.shape) != tuple(prediction.shape):
            raise ValueError(
                f"MeanSquareLoss: targets of shape {tuple(target.shape)} do not match "
                f"predictions of shape {tuple(prediction.shape)}")
        target = backend_of(prediction).asarray(target, dtype=prediction.dtype)
        diff = prediction - target
        self.cache["diff"] = diff
        return (diff * diff).sum() * _inverse(diff.size)

    def backward(self):
        diff = self.from_cache("diff")
        return diff * (2.0 / max(diff.size, 1))  # an empty batch has an empty gradient


__all__ = ["Loss", "CrossEntropyLoss", "MeanSquareLoss", "softmax", "log_softmax"]
